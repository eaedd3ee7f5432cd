#!/usr/bin/env bash
# Fault injection at scale: CYCLES times, a debug berth is SIGKILLed at one of its fault points
# (BERTH_FAULT, see runtime/src/fault.rs) during create or start, then `delete --force` runs and
# the script counts what was left: state directories, cgroup directories, mounts below the
# bundle, and processes in the container's cgroup. Prints one summary line (goal: 0 leaks).
# Usage: hack/fault-inject.sh [CYCLES (default 1000)]
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-1000}
. hack/lib.sh
need_packages busybox-static jq
cargo build -p berth >&2
berth=$(cargo_out debug)/berth
work=$(mktemp -d /tmp/berth-faults-XXXXXX)
parent=berth-faults-$$
cleanup() {
  for d in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
BERTH=$berth hack/make-rootfs.sh "$work/bundle" sleep 600 >/dev/null
points=(after-dir after-cgroup after-state after-fork after-rootfs before-ready before-start before-exec)
leaks=0; killed=0
for i in $(seq "$cycles"); do
  p=${points[$((RANDOM % ${#points[@]}))]}
  id=f$i
  pidns=$((RANDOM % 2))
  jq --arg cg "/$parent/$id" --argjson pidns "$pidns" '.linux.cgroupsPath=$cg
     | .linux.resources={"pids":{"limit":100}}
     | if $pidns == 0 then .linux.namespaces |= map(select(.type != "pid")) else . end' \
     "$work/bundle/config.json" > "$work/config.$i" 
  cp "$work/config.$i" "$work/bundle/config.json"
  cmd=(create --bundle "$work/bundle" "$id")
  case $p in before-start|before-exec) cmd=(run -d --bundle "$work/bundle" "$id") ;; esac
  set +e
  { BERTH_FAULT=$p "$berth" --root "$work/state" "${cmd[@]}" </dev/null >/dev/null 2>&1; rc=$?; } 2>/dev/null
  set -e
  [ "$rc" = 137 ] && killed=$((killed + 1))
  "$berth" --root "$work/state" delete --force "$id" >/dev/null 2>&1 || true
  left=""
  [ -e "$work/state/$id" ] && left+=" state"
  for d in /sys/fs/cgroup/*/"$parent/$id" /sys/fs/cgroup/"$parent/$id"; do
    [ -e "$d" ] && left+=" cgroup:$d"
  done
  grep -q " $work/bundle" /proc/self/mountinfo && left+=" mount"
  if [ -n "$left" ]; then
    leaks=$((leaks + 1)); echo "cycle $i ($p, pidns=$pidns): left$left" >&2
  fi
  rm -f "$work/config.$i"
done
echo "fault injection: $cycles cycles, $killed killed at their fault point, $leaks leaks"
[ "$leaks" = 0 ]
