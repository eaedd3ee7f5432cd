#!/usr/bin/env bash
# Where `berth run` of /bin/true spends its time: the median of each phase over N runs
# (BERTH_TRACE marks, runtime/src/trace.rs), next to the whole-run medians of crun and runc
# measured alternately in the same loop. Part 1 on the host's hybrid cgroups (berth, runc);
# part 2 in a private mount namespace whose /sys/fs/cgroup is a pure cgroup2 mount (crun runs
# there with --cgroup-manager=disabled; berth and runc make their cgroup). Beside them, the floor
# (hack/bench/floor/floor.c: clone3 with the bundle's namespaces, pivot_root, /proc and /dev,
# execve, wait, nothing else), and in the cgroup2 view also the floor with a cgroup of its own
# (mkdir, CLONE_INTO_CGROUP, rmdir).
# Usage: hack/bench/breakdown.sh [--write] [RUNS]   (prints markdown; with --write, replaces the
# section between <!-- bench:breakdown:start/end --> in docs/benchmarks.md)
# STATE_TMPFS=1 puts every runtime's state root on a private tmpfs (as /run is on most hosts;
# here /run and /tmp are ext4, where making and removing a state directory costs milliseconds);
# with --write its section is bench:breakdown-tmpfs.
set -euo pipefail
cd "$(dirname "$0")/../.."
write=0
if [ "${1:-}" = --write ]; then write=1; shift; fi
runs=${1:-60}
. hack/lib.sh
need_packages busybox-static jq runc crun gcc libc6-dev
cargo build --release -p berth >&2
berth=$(cargo_out release)/berth
work=$(mktemp -d /tmp/berth-breakdown-XXXXXX)
trap 'mountpoint -q "$work/roots" && umount "$work/roots"; rm -rf "$work"' EXIT
roots=$work suffix= prefix=
if [ "${STATE_TMPFS:-0}" = 1 ]; then
  roots=$work/roots suffix=-tmpfs prefix="STATE_TMPFS=1 "
  mkdir "$roots"
  mount -t tmpfs -o mode=700 berth-bench "$roots"
fi
BERTH=$berth hack/make-rootfs.sh "$work/bundle" /bin/true
# crun 1.8 rejects ociVersion 1.2.0; 1.0.2 is accepted by all three.
jq '.ociVersion="1.0.2" | .linux.cgroupsPath="/berth-breakdown/ctr"' "$work/bundle/config.json" > "$work/c"
mv "$work/c" "$work/bundle/config.json"
b=$work/bundle
hack/bench/floor/build.sh "$work/floor"
floor="$work/floor -n $(jq -r '[.linux.namespaces[].type] | join(",")' "$b/config.json") $b/rootfs"
exec 3>&1
out=$work/section.md
exec >"$out"
if [ "${STATE_TMPFS:-0}" = 1 ]; then
  echo "## Where a \`berth run\` spends its time, state roots on tmpfs"
else
  echo "## Where a \`berth run\` spends its time"
fi
echo
echo "Command: \`${prefix}hack/bench/breakdown.sh --write $runs\` ($(date -u +%Y-%m-%d), $(nproc) cores, load at start: $(cut -d' ' -f1-3 /proc/loadavg))."
echo
echo "Each row is the median over the runs of one phase of \`berth run\` of /bin/true, from the"
echo "BERTH_TRACE marks (runtime/src/trace.rs): a phase ends at its mark and starts at the latest"
echo "earlier one, so the phases of a run add up to its total; marks of the container's set-up"
echo "processes interleave with the parent's (a row that ran in parallel shows 0). The first row"
echo "includes the harness's fork and exec, as every runtime's whole run below does. Tracing costs"
echo "one write(2) per mark: the traced total is a little above an untraced run. \`floor\` is"
echo "hack/bench/floor/floor.c: clone3 with the bundle's namespaces, the rootfs bound and"
echo "pivot_root'ed into, proc and a tmpfs /dev mounted, execve /bin/true, wait; \`floor+cgroup\`"
echo "also makes a cgroup2 directory, clones straight into it (CLONE_INTO_CGROUP) and removes it."
echo
python3 hack/bench/breakdown.py --runs "$runs" --title "hybrid cgroups (host)" \
  --berth "$berth --root $roots/root-berth run -b $b bench" \
  --peer runc "runc --root $roots/root-runc run -b $b bench" \
  --peer floor "$floor"
echo
unshare -m --propagation private sh -c "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && \
  python3 hack/bench/breakdown.py --runs $runs --title 'private cgroup2 namespace (crun: --cgroup-manager=disabled)' \
  --berth '$berth --root $roots/root-berth run -b $b bench' \
  --peer 'berth --cgroup-manager=disabled' '$berth --cgroup-manager=disabled --root $roots/root-berth run -b $b bench' \
  --peer crun 'crun --cgroup-manager=disabled --root $roots/root-crun run -b $b bench' \
  --peer runc 'runc --root $roots/root-runc run -b $b bench' \
  --peer floor '$floor' \
  --peer floor+cgroup '${floor/ -n / -c /sys/fs/cgroup/berth-breakdown-floor -n }'; rmdir /sys/fs/cgroup/berth-breakdown 2>/dev/null || true"
rmdir /sys/fs/cgroup/*/berth-breakdown 2>/dev/null || true
exec >&3
if [ $write = 1 ]; then
  write_section "breakdown$suffix" "$out"
else
  cat "$out"
fi
