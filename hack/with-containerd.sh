#!/usr/bin/env bash
# Starts a private containerd (root, state and socket under DIR; cri plugin off) with
# localhost/busybox:latest imported, runs COMMAND with CTR="ctr --address DIR/containerd.sock",
# then stops containerd and removes its mounts. Nothing of the machine's containerd is touched.
# Usage: hack/with-containerd.sh DIR -- sh -c '$CTR run --rm --runc-binary /path/berth localhost/busybox:latest id echo hi'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(realpath -m "${1:?DIR}"); shift
[ "${1:-}" = "--" ] && shift
mkdir -p "$dir"
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
# The berth shim (containerd-shim-berth-v2) is found on containerd's PATH: the workspace's
# target/debug unless SHIM_DIR names another directory.
shim_dir=${SHIM_DIR:-$here/../target/debug}
PATH="$(realpath -m "$shim_dir"):$PATH" containerd --config "$dir/config.toml" > "$dir/containerd.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -q " $dir/" /proc/self/mountinfo 2>/dev/null && awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
trap cleanup EXIT
# CONTAINERD_NAMESPACE (default: default) is the namespace CTR uses and the image is imported to.
export CTR="ctr --address $dir/containerd.sock --namespace ${CONTAINERD_NAMESPACE:-default}"
for _ in $(seq 100); do $CTR version >/dev/null 2>&1 && break; sleep 0.1; done
if ! $CTR images ls -q | grep -qx localhost/busybox:latest; then
  "$here/make-busybox-image.sh" "$dir/image" localhost/busybox:latest >/dev/null
  tar -C "$dir/image" -cf "$dir/busybox.tar" .
  $CTR images import "$dir/busybox.tar" >/dev/null
fi
"$@"
