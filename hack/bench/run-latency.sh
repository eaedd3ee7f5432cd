#!/usr/bin/env bash
# `run` latency of /bin/true on one busybox bundle: berth vs runc vs crun, alternating in one run.
# Part 1 on the host's hybrid cgroups (berth, runc; crun 1.8 refuses hybrid mode).
# Part 2 inside a private mount namespace whose /sys/fs/cgroup is a pure cgroup2 mount, where
# crun runs with --cgroup-manager=disabled (it then makes no cgroup at all; berth and runc do).
# In both parts the floor runs too (hack/bench/floor/floor.c: clone3 with the bundle's namespaces,
# pivot_root, /proc and /dev, execve, wait); in part 2 also floor+cgroup (a cgroup2 directory made,
# cloned into with CLONE_INTO_CGROUP, removed).
# Usage: hack/bench/run-latency.sh [RUNS]   (prints markdown; docs/benchmarks.md records it)
# BASELINE=path/to/older/berth adds that binary to both parts (a regression check), e.g.
#   git worktree add /tmp/base COMMIT && (cd /tmp/base && cargo build --release -p berth)
#   BASELINE=/tmp/base/target/release/berth (or target/<triple>/release/berth) hack/bench/run-latency.sh 150
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-100}
. hack/lib.sh
need_packages busybox-static jq runc crun gcc libc6-dev
cargo build --release -p berth >&2
berth=$(cargo_out release)/berth
work=$(mktemp -d /tmp/berth-bench-XXXXXX)
trap 'for r in berth baseline runc crun; do rm -rf "$work/root-$r"; done; rm -rf "$work"' EXIT
BERTH=$berth hack/make-rootfs.sh "$work/bundle" /bin/true
# crun 1.8 rejects ociVersion 1.2.0; 1.0.2 is accepted by all three.
jq '.ociVersion="1.0.2" | .linux.cgroupsPath="/berth-bench/ctr"' "$work/bundle/config.json" > "$work/c" && mv "$work/c" "$work/bundle/config.json"
b=$work/bundle
hack/bench/floor/build.sh "$work/floor"
floor="$work/floor -n $(jq -r '[.linux.namespaces[].type] | join(",")' "$b/config.json") $b/rootfs"
base=()
if [ -n "${BASELINE:-}" ]; then
  base=(berth-baseline "$(realpath "$BASELINE") --root $work/root-baseline run -b $b bench")
fi
echo "### run latency, hybrid cgroups (host)"
echo
python3 hack/bench/latency.py --runs "$runs" --label "run /bin/true" -- \
  berth "$berth --root $work/root-berth run -b $b bench" "${base[@]}" \
  runc "runc --root $work/root-runc run -b $b bench" \
  floor "$floor"
echo
echo "### run latency, private cgroup2 namespace (crun: --cgroup-manager=disabled)"
echo
unshare -m --propagation private sh -c "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && \
  python3 hack/bench/latency.py --runs $runs --label 'run /bin/true' -- \
  berth '$berth --root $work/root-berth run -b $b bench' \
  ${BASELINE:+berth-baseline '$(realpath "${BASELINE:-.}") --root $work/root-baseline run -b $b bench'} \
  runc 'runc --root $work/root-runc run -b $b bench' \
  'berth --cgroup-manager=disabled' '$berth --cgroup-manager=disabled --root $work/root-berth run -b $b bench' \
  crun 'crun --cgroup-manager=disabled --root $work/root-crun run -b $b bench' \
  floor '$floor' \
  floor+cgroup '${floor/ -n / -c /sys/fs/cgroup/berth-bench-floor -n }'"
rmdir /sys/fs/cgroup/*/berth-bench 2>/dev/null || true
