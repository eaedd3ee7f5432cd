#!/usr/bin/env bash
# Starts a private containerd (root, state and socket under DIR; cri plugin off) with
# localhost/busybox:latest imported, runs COMMAND with CTR="ctr --address DIR/containerd.sock
# --namespace NS", then removes what is left (tasks, containers), stops containerd by PID and
# removes its mounts. Nothing of the machine's containerd is touched.
# The berth shim (containerd-shim-berth-v2) is found on containerd's PATH: the workspace's
# target/<triple>/debug unless SHIM_DIR names another directory. CONTAINERD_NAMESPACE (default: default)
# is the namespace CTR uses and the image is imported to. COMMAND can restart containerd (same
# config, state and socket) with "$RESTART_CONTAINERD" (or "$STOP_CONTAINERD", then
# "$START_CONTAINERD").
# CONTAINERD_CRI=1 enables the CRI plugin instead: runtimes `runc` (io.containerd.runc.v2,
# cgroupfs) and `berth` (io.containerd.berth.v2), sandbox image localhost/pause:latest (made
# locally), CNI bridge `berthcni0` on 10.99.0.0/24 with Debian's plugins, both images imported
# into the k8s.io namespace. Run it inside a network namespace of your own (unshare -n): the
# bridge is created in containerd's network namespace. BERTH_RUNTIME_CONFIG=FILE gives the
# berth runtime `options` with ConfigPath = FILE (the shim's runtime options as TOML);
# BERTH_CRI_RUNTIME_SNIPPET=FILE appends FILE (an installed berth-runtime.toml) to the config
# instead of defining the berth runtime here.
# Usage: hack/with-containerd.sh DIR -- sh -c '$CTR run --rm --runc-binary /path/berth localhost/busybox:latest id echo hi'
#        hack/with-containerd.sh --restart|--stop|--start DIR   (what $RESTART_CONTAINERD etc. run)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

start_containerd() {
  local dir=$1
  local shim_dir
  shim_dir=$(realpath -m "${SHIM_DIR:-$(. "$here/lib.sh"; cargo_out debug)}")
  PATH="$shim_dir:$PATH" setsid containerd --config "$dir/config.toml" >> "$dir/containerd.log" 2>&1 < /dev/null &
  echo $! > "$dir/containerd.pid"
  for _ in $(seq 100); do
    ctr --address "$dir/containerd.sock" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "with-containerd.sh: containerd did not come up; see $dir/containerd.log" >&2
  return 1
}

stop_containerd() {
  local dir=$1 pid
  pid=$(cat "$dir/containerd.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/containerd.pid"
}

case "${1:-}" in
  --restart|--stop|--start)
    dir=$(realpath -m "${2:?DIR}")
    [ "$1" = --start ] || stop_containerd "$dir"
    [ "$1" = --stop ] || start_containerd "$dir"
    exit 0 ;;
esac

dir=$(realpath -m "${1:?DIR}"); shift
[ "${1:-}" = "--" ] && shift
mkdir -p "$dir"
if [ "${CONTAINERD_CRI:-0}" = 1 ]; then
  mkdir -p "$dir/cni"
  cat > "$dir/cni/10-berth.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "berth-test", "plugins": [
  {"type": "bridge", "bridge": "berthcni0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/24"}]], "dataDir": "$dir/cni-ipam"}}]}
CNI
  cat > "$dir/config.toml" <<CONF
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$dir/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:latest"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
$(if [ -z "${BERTH_CRI_RUNTIME_SNIPPET:-}" ]; then
  printf '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]\n      runtime_type = "io.containerd.berth.v2"\n'
  if [ -n "${BERTH_RUNTIME_CONFIG:-}" ]; then printf '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]\n        ConfigPath = "%s"\n' "$BERTH_RUNTIME_CONFIG"; fi
fi)
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni"
CONF
  # An installed runtime table (dist/containerd/berth-runtime.toml) as a user appends it.
  if [ -n "${BERTH_CRI_RUNTIME_SNIPPET:-}" ]; then cat "$BERTH_CRI_RUNTIME_SNIPPET" >> "$dir/config.toml"; fi
else
  cat > "$dir/config.toml" <<CONF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
CONF
fi
export CTR="ctr --address $dir/containerd.sock --namespace ${CONTAINERD_NAMESPACE:-default}"
export CONTAINERD_STATE="$dir/state"
export RESTART_CONTAINERD="$here/with-containerd.sh --restart $dir"
export STOP_CONTAINERD="$here/with-containerd.sh --stop $dir" START_CONTAINERD="$here/with-containerd.sh --start $dir"
clean_ns() {
  local c="ctr --address $dir/containerd.sock --namespace $1" t
  for t in $($c task ls -q 2>/dev/null); do
    $c task kill -s KILL "$t" >/dev/null 2>&1 || true
    for _ in $(seq 20); do $c task ls 2>/dev/null | grep -q "^$t .*STOPPED" && break; sleep 0.1; done
    $c task delete -f "$t" >/dev/null 2>&1 || true
  done
  for t in $($c container ls -q 2>/dev/null); do $c container delete "$t" >/dev/null 2>&1 || true; done
}
cleanup() {
  # Tasks and containers the command left behind (a failed test): kill, delete, then stop.
  if [ -f "$dir/containerd.pid" ]; then
    clean_ns "${CONTAINERD_NAMESPACE:-default}"
    [ "${CONTAINERD_CRI:-0}" = 1 ] && clean_ns k8s.io
  fi
  stop_containerd "$dir"
  grep -q " $dir/" /proc/self/mountinfo 2>/dev/null && awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
trap cleanup EXIT
start_containerd "$dir"
if ! $CTR images ls -q | grep -qx localhost/busybox:latest; then
  "$here/make-busybox-image.sh" "$dir/image" localhost/busybox:latest >/dev/null
  tar -C "$dir/image" -cf "$dir/busybox.tar" .
  $CTR images import "$dir/busybox.tar" >/dev/null
fi
if [ "${CONTAINERD_CRI:-0}" = 1 ]; then
  K8S="ctr --address $dir/containerd.sock --namespace k8s.io"
  if ! $K8S images ls -q | grep -qx localhost/pause:latest; then
    IMAGE_CMD='["sleep","2147483647"]' "$here/make-busybox-image.sh" "$dir/pause" localhost/pause:latest >/dev/null
    tar -C "$dir/pause" -cf "$dir/pause.tar" .
    $K8S images import "$dir/pause.tar" >/dev/null
    $K8S images import "$dir/busybox.tar" >/dev/null
  fi
fi
"$@"
