#!/usr/bin/env bash
# Kubernetes' path: pod start latency through containerd's CRI plugin, berth's shim
# (io.containerd.berth.v2, the binary hack/build-shim.sh makes) vs containerd's runc shim
# (io.containerd.runc.v2 with Debian's runc), alternating pod by pod in one run. A pod start is
# RunPodSandbox + CreateContainer + StartContainer (busybox `sleep`), timed by the CRI v1 client
# the shim tests use (shim/examples/cri-pods.rs, k8s-cri over gRPC); each pod is then stopped and
# removed (timed apart). containerd is private (hack/with-containerd.sh with CONTAINERD_CRI=1: CNI
# bridge, pause image made locally) and runs in a network namespace of its own. Afterwards the
# script checks that no shim and no container cgroup is left, and fails if one is.
# Usage: hack/bench/cri.sh [--write] [PODS]   (PODS per handler, default 100; prints markdown,
# with --write replaces the section between <!-- bench:cri:start/end --> in docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
write=0
if [ "${1:-}" = --write ]; then write=1; shift; fi
pods=${1:-100}
[[ $pods =~ ^[1-9][0-9]*$ ]] || { echo "cri.sh: PODS must be a positive integer" >&2; exit 2; }
. hack/lib.sh
need_packages busybox-static jq containerd runc containernetworking-plugins protobuf-compiler
shim_dir=$(hack/build-shim.sh)
cargo build -p containerd-shim-berth-v2 --example cri-pods >&2
client=$(cargo_out debug)/examples/cri-pods
work=$(mktemp -d /tmp/berth-bench-cri-XXXXXX)
tag=$(basename "$work")
cleanup() {
  local d
  for d in /sys/fs/cgroup/*/"$tag" /sys/fs/cgroup/unified/"$tag"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rmdir /run/containerd/berth/k8s.io 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
printf 'Root = "%s"\n' "$work/berth-root" > "$work/berth-options.toml"
load=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
# Inside containerd's network namespace: the client, then wait for the shims to go.
inner='"$CLIENT" --socket "$DIR/containerd.sock" --pods "$PODS" --cgroup-parent "/$TAG" --logs "$LOGS" berth runc
n=0
for _ in $(seq 50); do
  n=$(ps -eo args | awk -v s="$DIR/containerd.sock" "/^[^ ]*containerd-shim-/ { for (i = 1; i < NF; i++) if (\$i == \"-address\" && \$(i + 1) == s) c++ } END { print c + 0 }")
  [ "$n" = 0 ] && break
  sleep 0.1
done
echo
echo "Shims left after the last pod was removed: $n."
[ "$n" = 0 ]'
unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
  env CONTAINERD_CRI=1 BERTH_RUNTIME_CONFIG="$work/berth-options.toml" SHIM_DIR="$shim_dir" \
  CLIENT="$client" DIR="$work/containerd" PODS="$pods" TAG="$tag" LOGS="$work/logs" \
  hack/with-containerd.sh "$work/containerd" -- sh -c "$inner" > "$work/table.md"
left=$(find /sys/fs/cgroup/*/"$tag" /sys/fs/cgroup/unified/"$tag" -mindepth 1 -type d 2>/dev/null | wc -l)
out=$work/section.md
{
  echo "## Pod start through containerd's CRI: berth shim vs runc shim"
  echo
  echo "Command: \`hack/bench/cri.sh --write $pods\` ($(date -u '+%Y-%m-%d %H:%M UTC'), took $(( $(date +%s) - started )) s,"
  echo "$(nproc) cores, shared machine: load average $load at the start)."
  echo
  echo "containerd $(containerd --version | awk '{print $3}') with its CRI plugin (private instance, CNI bridge, cgroupfs), handler"
  echo "\`berth\` = io.containerd.berth.v2 (\`hack/build-shim.sh\`'s binary), handler \`runc\` ="
  echo "io.containerd.runc.v2 with $(runc --version | head -1). Client: shim/examples/cri-pods.rs"
  echo "(debug build; the same for both handlers)."
  echo
  cat "$work/table.md"
  echo "Container cgroups left under the pods' parent: $left."
} > "$out"
[ "$left" = 0 ] || { cat "$out"; echo "cri.sh: $left container cgroups left behind" >&2; exit 1; }
if [ $write = 1 ]; then write_section cri "$out"; else cat "$out"; fi
