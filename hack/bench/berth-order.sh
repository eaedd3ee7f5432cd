#!/usr/bin/env bash
# Regenerates runtime/hot-functions.txt: the functions of the berth binary that `run`,
# `create`, `start`, `exec`, `state`, `kill` and `delete` run, in the order they are first
# needed, for lld's --symbol-ordering-file (runtime/build.rs; docs/design.md, "Memory of
# `berth run`"). The same method as hack/bench/shim-order.sh: a profiling build (symbols kept,
# every Rust function aligned to 64 KiB) runs from hack/bench/cold-fs.sh's file system, where a
# page is mapped only when the program touched it (hack/bench/hot-order.py turns the pages into
# functions, glibc's included). A berth command is short-lived, so its pages are read
# under gdb: the command's own process at its exit_group, and the forked child (the container's
# init, or exec's process) at its execve, before the new program replaces its memory. Phase 1
# is `run` (parent, then its init) on the host's hybrid cgroups and in a private mount namespace
# whose /sys/fs/cgroup is the cgroup2 hierarchy (the view hack/bench/all.sh compares berth
# with crun in; its cgroup code is another path), phase 2 the rest. glibc's functions are not listed (they
# cannot be aligned). The plain release build is relinked at the end.
# Usage: hack/bench/berth-order.sh
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
. hack/lib.sh
need_packages busybox-static jq python3 binutils gdb e2fsprogs
. hack/bench/cold-fs.sh
work=$(mktemp -d /tmp/berth-order-XXXXXX)
prof=$work/prof
root=$work/root
cg=${work##*/}
cleanup() {
  for id in $(ls "$root" 2>/dev/null); do "$prof/berth" --root "$root" delete -f "$id" >/dev/null 2>&1; done
  for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/unified/"$cg"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  cold_fs_umount
  rm -rf "$work"
}
trap cleanup EXIT
cargo rustc --release -p berth --bin berth -- -C strip=none -C llvm-args=-align-all-functions=16 >&2
BERTH=$(cargo_out release)/berth hack/make-rootfs.sh "$work/run" /bin/true
BERTH=$(cargo_out release)/berth hack/make-rootfs.sh "$work/long" sleep 1000
# After the bundles: `berth spec` run from the cold file system would cache pages of its own.
mkdir "$prof"
cold_fs_mount "$prof"
cold_fs_put "$(cargo_out release)/berth"
for b in run long; do   # a cgroup parent of our own
  jq --arg p "/$cg/$b" '.linux.cgroupsPath = $p' "$work/$b/config.json" > "$work/c.json"
  mv "$work/c.json" "$work/$b/config.json"
done
# prof MODE OUT ARGS...: runs berth ARGS under gdb and appends to OUT the pages of the binary
# mapped in berth's own process at exit (MODE parent) or in its first forked child before that
# child's execve (MODE child). With CG2=1 in a private mount namespace on the cgroup2 hierarchy.
in_cgroup2_ns=(unshare -m --propagation private sh -c
  'umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' sh)
prof() {
  local mode=$1 out=$2 ff catch pre=(); shift 2
  [ "${CG2:-0}" = 1 ] && pre=("${in_cgroup2_ns[@]}")
  if [ "$mode" = parent ]; then ff=parent catch=exit_group; else ff=child catch=execve; fi
  "${pre[@]}" gdb -q -batch -nx -ex 'set startup-with-shell off' -ex "set follow-fork-mode $ff" \
    -ex "catch syscall $catch" -ex run \
    -ex "python import gdb, subprocess; subprocess.run(['python3', 'hack/bench/mapped-pages.py', str(gdb.selected_inferior().pid), '$out', '/berth'], check=True)" \
    -ex delete -ex continue --args "$prof/berth" --root "$root" "$@" >"$work/gdb.log" 2>&1 ||
    { cat "$work/gdb.log" >&2; return 1; }
  [ -s "$out" ] || { echo "berth-order.sh: no pages read for $mode $*" >&2; cat "$work/gdb.log" >&2; return 1; }
}
prof parent "$work/phase1" run -b "$work/run" r1
CG2=1 prof parent "$work/phase1" run -b "$work/run" r3
prof child "$work/phase1" run -b "$work/run" r2
CG2=1 prof child "$work/phase1" run -b "$work/run" r4
prof parent "$work/phase2" create -b "$work/long" c1
prof parent "$work/phase2" start c1
prof parent "$work/phase2" state c1
prof parent "$work/phase2" exec c1 /bin/true
prof child "$work/phase2" exec c1 /bin/true
prof parent "$work/phase2" kill c1 KILL
sleep 0.2
prof parent "$work/phase2" delete c1
python3 hack/bench/hot-order.py "$prof/berth" runtime/hot-functions.txt "$work/phase1" "$work/phase2"
cargo build --release -p berth >&2
echo "runtime/hot-functions.txt: $(wc -l < runtime/hot-functions.txt) functions" >&2
