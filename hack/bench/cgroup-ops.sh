#!/usr/bin/env bash
# Cost of cgroup operations on a running container, berth vs runc, alternating in one run on
# this host's hybrid cgroups: `run` with memory/pids/cpu limits set, `update`, `events --stats`,
# and a pause+resume pair. (crun 1.8 refuses hybrid cgroups, see run-latency.sh.)
# Usage: hack/bench/cgroup-ops.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-50}
. hack/lib.sh
need_packages busybox-static jq runc
cargo build --release -p berth >&2
berth=$(cargo_out release)/berth
work=$(mktemp -d /tmp/berth-bench-XXXXXX)
cleanup() {
  "$berth" --root "$work/root-berth" delete -f bench-sleep >/dev/null 2>&1 || true
  runc --root "$work/root-runc" delete -f bench-sleep >/dev/null 2>&1 || true
  rm -rf "$work"
  for d in /sys/fs/cgroup/*/berth-bench-ops; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  true
}
trap cleanup EXIT
BERTH=$berth hack/make-rootfs.sh "$work/limited" /bin/true
res='{"memory":{"limit":268435456},"pids":{"limit":200},"cpu":{"shares":512}}'
jq --argjson r "$res" '.ociVersion="1.0.2" | .linux.resources += $r | .linux.cgroupsPath="/berth-bench-ops/run"' \
  "$work/limited/config.json" > "$work/c" && mv "$work/c" "$work/limited/config.json"
mkdir -p "$work/sleep"
for rt in berth runc; do
  jq --arg p "/berth-bench-ops/$rt" --arg root "$work/limited/rootfs" \
    '.process.args=["sleep","100000"] | .linux.cgroupsPath=$p | .root.path=$root' "$work/limited/config.json" > "$work/sleep/config.json"
  if [ $rt = berth ]; then
    "$berth" --root "$work/root-berth" run -d -b "$work/sleep" bench-sleep >/dev/null 2>&1 </dev/null
  else
    runc --root "$work/root-runc" run -d -b "$work/sleep" bench-sleep >/dev/null 2>&1 </dev/null
  fi
done
b="$berth --root $work/root-berth"
r="runc --root $work/root-runc"
echo "### cgroup operations, hybrid cgroups (host)"
echo
python3 hack/bench/latency.py --runs "$runs" --label "run /bin/true with limits" -- \
  berth "$b run -b $work/limited bench-run" runc "$r run -b $work/limited bench-run"
echo
python3 hack/bench/latency.py --runs "$runs" --label "update --memory --pids-limit" -- \
  berth "$b update --memory 300m --pids-limit 150 bench-sleep" runc "$r update --memory 300m --pids-limit 150 bench-sleep"
echo
python3 hack/bench/latency.py --runs "$runs" --label "events --stats" -- \
  berth "$b events --stats bench-sleep" runc "$r events --stats bench-sleep"
echo
python3 hack/bench/latency.py --runs "$runs" --label "pause + resume" -- \
  berth "sh -c '$b pause bench-sleep && $b resume bench-sleep'" runc "sh -c '$r pause bench-sleep && $r resume bench-sleep'"
