#!/usr/bin/env bash
# `run` latency of the current berth against an older berth binary (a regression check), with
# runc (hybrid host) and crun (private cgroup2 view) alongside, alternating in one run.
# Usage: hack/bench/run-latency-vs.sh BASELINE_BERTH [RUNS]
#   e.g. git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release -p berth)
#        hack/bench/run-latency-vs.sh /tmp/base/target/release/berth 100
set -euo pipefail
cd "$(dirname "$0")/../.."
base=$(realpath "${1:?usage: run-latency-vs.sh BASELINE_BERTH [RUNS]}")
runs=${2:-100}
. hack/lib.sh
need_packages busybox-static jq runc crun
cargo build --release -p berth >&2
berth=$PWD/target/release/berth
work=$(mktemp -d /tmp/berth-bench-XXXXXX)
trap 'rm -rf "$work"; rmdir /sys/fs/cgroup/*/berth-bench-vs/* /sys/fs/cgroup/*/berth-bench-vs 2>/dev/null || true' EXIT
BERTH=$berth hack/make-rootfs.sh "$work/bundle" /bin/true
jq '.ociVersion="1.0.2" | .linux.cgroupsPath="/berth-bench-vs/ctr"' "$work/bundle/config.json" > "$work/c" && mv "$work/c" "$work/bundle/config.json"
b=$work/bundle
echo "### run latency, hybrid cgroups (host): berth now vs $base"
echo
python3 hack/bench/latency.py --runs "$runs" --label "run /bin/true" -- \
  berth "$berth --root $work/root-a run -b $b bench" \
  berth-baseline "$base --root $work/root-b run -b $b bench" \
  runc "runc --root $work/root-c run -b $b bench"
echo
echo "### run latency, private cgroup2 namespace (crun: --cgroup-manager=disabled)"
echo
unshare -m --propagation private sh -c "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && \
  python3 hack/bench/latency.py --runs $runs --label 'run /bin/true' -- \
  berth '$berth --root $work/root-a run -b $b bench' \
  berth-baseline '$base --root $work/root-b run -b $b bench' \
  crun 'crun --cgroup-manager=disabled --root $work/root-d run -b $b bench'"
