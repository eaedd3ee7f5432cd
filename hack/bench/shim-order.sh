#!/usr/bin/env bash
# Regenerates shim/hot-functions.txt: the shim's functions a container's life runs, in the
# order they are first needed, for hack/build-shim.sh's link order.
# How: a profiling build of the shim (symbols kept, every Rust function aligned to 64 KiB with
# LLVM -align-all-functions=16, so no two share a page) runs from hack/bench/cold-fs.sh's file
# system, where a page is mapped into the shim only when the shim touched it (no readahead, and
# fault-around maps only cached pages): glibc's functions, which cannot be aligned, are then
# placed too. A private containerd (hack/with-containerd.sh) drives the shim through
# run -d (phase 1: start-up, Create, Start, the state a one-container shim sits in), then exec,
# ps, metrics, pause/resume, a second and third container in one shim, kill, delete and a tty
# exec (phase 2); after each phase the shim's mapped pages (/proc/PID/pagemap) are read and
# turned into the functions starting there (nm of the profiling build; hack/bench/hot-order.py). Phase 1
# functions come first. Names are mangled symbols: they stay valid across edits of the code, a
# function missing from the list only loses its place.
# Usage: hack/bench/shim-order.sh
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
. hack/lib.sh
need_packages busybox-static jq containerd python3 binutils e2fsprogs
cargo build --release -p berth >&2
. hack/bench/cold-fs.sh
work=$(mktemp -d /tmp/berth-shim-order-XXXXXX)
prof=$work/prof
ns=$(basename "$work")
trap 'cold_fs_umount; rm -rf "$work"; rm -rf "/run/containerd/berth/$ns"; for b in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do rmdir "$b$ns" 2>/dev/null || true; done' EXIT
dir=$(hack/build-shim.sh -C strip=none -C llvm-args=-align-all-functions=16)
mkdir "$prof"
cold_fs_mount "$prof"
cold_fs_put "$dir/containerd-shim-berth-v2"
pages() { # PID OUT: the present pages of the shim binary's mappings (hack/bench/mapped-pages.py)
  python3 "$ROOT/hack/bench/mapped-pages.py" "$1" "$2" containerd-shim-berth-v2
}
export -f pages
export ROOT=$PWD SHIM_DIR=$prof CONTAINERD_NAMESPACE=$ns NS=$ns OUT=$work
hack/with-containerd.sh "$work/containerd" -- bash -c '
set -euo pipefail
IMG=localhost/busybox:latest R="--runtime io.containerd.berth.v2" G="--annotation io.kubernetes.cri.sandbox-id=grp"
shim_pid() { ps -eo pid,args | awk -v m="-namespace $NS -id $1 " "index(\$0, m) && !/awk/ {print \$1}"; }
$CTR run -d $R $IMG one sleep 1000 >/dev/null; sleep 0.3
p=$(shim_pid one)
pages "$p" "$OUT/phase1"
$CTR task exec --exec-id e1 one sh -c "echo hi" >/dev/null
$CTR task ps one >/dev/null; $CTR task metrics one >/dev/null
$CTR task pause one; $CTR task resume one; $CTR task ls >/dev/null
pages "$p" "$OUT/phase2a"
$CTR run -d $R $G $IMG g1 sleep 1000 >/dev/null
$CTR run -d $R $G $IMG g2 sleep 1000 >/dev/null
$CTR task kill -s KILL g2; sleep 0.2; $CTR task delete g2 >/dev/null; $CTR container delete g2 >/dev/null
$CTR task exec --exec-id e2 g1 sh -c "exit 3" || true
script -qc "$CTR task exec -t --exec-id e3 g1 sh -c \"stty size\"" /dev/null < /dev/null >/dev/null || true
sleep 0.2
pages "$(shim_pid g1)" "$OUT/phase2b"
for c in one g1; do $CTR task kill -s KILL $c; done; sleep 0.3
for c in one g1; do $CTR task delete $c >/dev/null; $CTR container delete $c >/dev/null; done
'
python3 hack/bench/hot-order.py "$prof/containerd-shim-berth-v2" shim/hot-functions.txt \
  "$work/phase1" "$work/phase2a" "$work/phase2b"
echo "shim/hot-functions.txt: $(wc -l < shim/hot-functions.txt) functions; rebuild with hack/build-shim.sh" >&2
