#!/usr/bin/env bash
# `exec /bin/true` latency into a running busybox container (`sleep`): berth vs runc on the host's
# hybrid cgroups, and berth vs crun (--cgroup-manager=disabled) vs runc in a private mount
# namespace whose /sys/fs/cgroup is a pure cgroup2 mount, alternating in one run. Each runtime
# execs into a container of its own, made with the same bundle.
# Usage: hack/bench/exec-latency.sh [RUNS]   (prints markdown; docs/benchmarks.md records it)
# BASELINE=path/to/older/berth adds that binary (exec'ing into berth's container) to both parts.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-100}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "exec-latency.sh: RUNS must be a positive integer" >&2; exit 2; }
. hack/lib.sh
need_packages busybox-static jq runc crun
cargo build --release -p berth >&2
work=$(mktemp -d /tmp/berth-bench-exec-XXXXXX)
tag=$(basename "$work")
# Both berth binaries run from copies made the same way: how a binary's file was written (the
# linker's writes or one cp) changes its page-cache folios and so its start-up by a few percent,
# as much as a small cut.
berth=$work/berth
cp "$(cargo_out release)/berth" "$berth"
cleanup() {
  set +e
  "$berth" --root "$work/root-berth" delete -f bench >/dev/null 2>&1
  runc --root "$work/root-runc" delete -f bench >/dev/null 2>&1
  unshare -m --propagation private sh -c "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && \
    { '$berth' --root '$work/ns-berth' delete -f bench; runc --root '$work/ns-runc' delete -f bench; \
      crun --cgroup-manager=disabled --root '$work/ns-crun' delete -f bench; find /sys/fs/cgroup/$tag -depth -type d -exec rmdir {} +; }" >/dev/null 2>&1
  for d in /sys/fs/cgroup/*/"$tag"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
BERTH=$berth hack/make-rootfs.sh "$work/bundle" sleep 100000
# One bundle per runtime (its own cgroup, the one rootfs). crun 1.8 rejects ociVersion 1.2.0;
# 1.0.2 is accepted by all three.
for rt in berth runc crun; do
  mkdir "$work/b-$rt"
  jq --arg cg "/$tag/$rt" --arg r "$work/bundle/rootfs" '.ociVersion="1.0.2" | .linux.cgroupsPath=$cg | .root.path=$r' \
    "$work/bundle/config.json" > "$work/b-$rt/config.json"
done
base_host=() base_ns=
if [ -n "${BASELINE:-}" ]; then
  base=$work/berth-baseline
  cp "$BASELINE" "$base"
  base_host=(berth-baseline "$base --root $work/root-berth exec bench /bin/true")
  base_ns="berth-baseline '$base --root $work/ns-berth exec bench /bin/true'"
fi
echo "### exec latency, hybrid cgroups (host)"
echo
"$berth" --root "$work/root-berth" run -d -b "$work/b-berth" bench </dev/null >/dev/null 2>&1
runc --root "$work/root-runc" run -d -b "$work/b-runc" bench </dev/null >/dev/null 2>&1
python3 hack/bench/latency.py --runs "$runs" --label "exec /bin/true" -- \
  berth "$berth --root $work/root-berth exec bench /bin/true" "${base_host[@]}" \
  runc "runc --root $work/root-runc exec bench /bin/true"
"$berth" --root "$work/root-berth" delete -f bench
runc --root "$work/root-runc" delete -f bench
echo
echo "### exec latency, private cgroup2 namespace (crun: --cgroup-manager=disabled)"
echo
unshare -m --propagation private sh -c "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && \
  '$berth' --root '$work/ns-berth' run -d -b '$work/b-berth' bench </dev/null >/dev/null 2>&1 && \
  runc --root '$work/ns-runc' run -d -b '$work/b-runc' bench </dev/null >/dev/null 2>&1 && \
  crun --cgroup-manager=disabled --root '$work/ns-crun' run -d -b '$work/b-crun' bench </dev/null >/dev/null 2>&1 && \
  python3 hack/bench/latency.py --runs $runs --label 'exec /bin/true' -- \
    berth '$berth --root $work/ns-berth exec bench /bin/true' $base_ns \
    crun 'crun --cgroup-manager=disabled --root $work/ns-crun exec bench /bin/true' \
    runc 'runc --root $work/ns-runc exec bench /bin/true'; rc=\$?; \
  '$berth' --root '$work/ns-berth' delete -f bench; runc --root '$work/ns-runc' delete -f bench; \
  crun --cgroup-manager=disabled --root '$work/ns-crun' delete -f bench; find /sys/fs/cgroup/$tag -depth -type d -exec rmdir {} + 2>/dev/null; exit \$rc"
