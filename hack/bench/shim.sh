#!/usr/bin/env bash
# containerd shims side by side, in one private containerd (hack/with-containerd.sh):
#   berth       = containerd-shim-berth-v2 (runtime io.containerd.berth.v2, in-process berth)
#   runc-shim   = containerd-shim-runc-v2 driving runc
#   runc-shim+berth = containerd-shim-runc-v2 driving the berth binary (--runc-binary)
# Measures shim RSS and PSS (from /proc/PID/smaps_rollup of the shim daemons) with 1 container,
# with 10 containers one shim each (per container), and with 10 containers grouped into one shim
# (one io.kubernetes.cri.sandbox-id annotation); private = Private_Dirty (memory no other
# process shares: heap, stack, written data), and the latency of `ctr run --rm IMAGE ID true`
# (RUNS per shim, round-robin, median and ratio to runc-shim).
# Usage: hack/bench/shim.sh [--write]   (--write replaces the section in docs/benchmarks.md)
# Knobs: RUNS=30.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
write=0
[ "${1:-}" = "--write" ] && write=1
RUNS=${RUNS:-30}
. hack/lib.sh
need_packages busybox-static jq runc containerd
cargo build --release -p berth >&2
# The shim as it is built and installed: plain `cargo build --release` (hack/build-shim.sh;
# shim/build.rs links it static non-PIE with its hot code first).
SHIM_DIR=$(hack/build-shim.sh)
# A freshly written binary sits in dirty page-cache pages, which would count as private memory.
sync
export SHIM_DIR
export BERTH=$(cargo_out release)/berth
work=$(mktemp -d /tmp/berth-bench-shim-XXXXXX)
ns=$(basename "$work")
export CONTAINERD_NAMESPACE=$ns NS=$ns RUNS
out=$work/result.md
hack/with-containerd.sh "$work/containerd" -- bash -c '
set -euo pipefail
IMG=localhost/busybox:latest
declare -A OPTS=(
  [berth]="--runtime io.containerd.berth.v2"
  [runc-shim]="--runtime io.containerd.runc.v2"
  [runc-shim+berth]="--runtime io.containerd.runc.v2 --runc-binary $BERTH"
)
names=(berth runc-shim runc-shim+berth)
shim_pid() { ps -eo pid,args | awk -v m="-namespace $NS -id $1 " "index(\$0, m) && !/awk/ {print \$1}"; }
mem() { # RSS, PSS and private dirty (anonymous: only this shim holds it) memory in kB of the shims
  local rss=0 pss=0 prv=0 p
  for id in "$@"; do
    p=$(shim_pid "$id")
    [ -n "$p" ] || { echo "no shim for $id" >&2; exit 1; }
    rss=$((rss + $(awk "/^Rss:/ {print \$2}" /proc/$p/smaps_rollup)))
    pss=$((pss + $(awk "/^Pss:/ {print \$2}" /proc/$p/smaps_rollup)))
    prv=$((prv + $(awk "/^Private_Dirty:/ {print \$2}" /proc/$p/smaps_rollup)))
  done
  echo "$rss $pss $prv"
}
cleanup_all() {
  for t in $($CTR task ls -q); do $CTR task kill -s KILL "$t" >/dev/null 2>&1 || true; done
  for t in $($CTR task ls -q); do
    for _ in $(seq 100); do $CTR task ls | grep -q "^$t .*STOPPED" && break; sleep 0.02; done
    $CTR task delete "$t" >/dev/null
  done
  for c in $($CTR container ls -q); do $CTR container delete "$c" >/dev/null; done
}
kb() { awk -v k="$1" "BEGIN {printf \"%.2f\", k / 1024}"; }
echo "| shim | 1 container: RSS / PSS / private (MB) | 10 containers, 10 shims: RSS / PSS / private per container (MB) | 10 containers, 1 shared shim: RSS / PSS / private total (MB) |"
echo "|---|---|---|---|"
for n in "${names[@]}"; do
  o=${OPTS[$n]}
  $CTR run -d $o $IMG one sleep 1000 >/dev/null
  sleep 0.3
  read -r r1 p1 v1 < <(mem one)
  cleanup_all
  ids=()
  for i in $(seq 10); do $CTR run -d $o $IMG "s$i" sleep 1000 >/dev/null; ids+=("s$i"); done
  sleep 0.3
  read -r r10 p10 v10 < <(mem "${ids[@]}")
  cleanup_all
  for i in $(seq 10); do $CTR run -d $o --annotation io.kubernetes.cri.sandbox-id=pod $IMG "g$i" sleep 1000 >/dev/null; done
  sleep 0.3
  read -r rg pg vg < <(mem g1)
  cleanup_all
  echo "| $n | $(kb $r1) / $(kb $p1) / $(kb $v1) | $(kb $((r10 / 10))) / $(kb $((p10 / 10))) / $(kb $((v10 / 10))) | $(kb $rg) / $(kb $pg) / $(kb $vg) |"
done
echo
declare -A T
for n in "${names[@]}"; do : > "/tmp/lat-$NS-$n"; done
for i in $(seq "$RUNS"); do
  for n in "${names[@]}"; do
    s=$(date +%s%N)
    $CTR run --rm ${OPTS[$n]} $IMG "lat$i" true
    e=$(date +%s%N)
    echo $(( (e - s) / 1000 )) >> "/tmp/lat-$NS-$n"
  done
done
median() { sort -n "$1" | awk "{a[NR]=\$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf \"%.1f\", m / 1000}"; }
base=$(median "/tmp/lat-$NS-runc-shim")
echo "| shim | ctr run --rm true, median (ms) | ratio to runc-shim |"
echo "|---|---|---|"
for n in "${names[@]}"; do
  m=$(median "/tmp/lat-$NS-$n")
  echo "| $n | $m | $(awk -v a="$m" -v b="$base" "BEGIN {printf \"%.2fx\", a / b}") |"
  rm -f "/tmp/lat-$NS-$n"
done
' > "$out"
for base in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do rmdir "$base$ns" 2>/dev/null || true; done
rm -rf "/run/containerd/berth/$ns"
section=$(cat <<MD
<!-- bench:shim:start -->
## containerd shims: memory and \`ctr run --rm\` latency

Command: \`hack/bench/shim.sh --write\` (RUNS=$RUNS, shim built by \`cargo build --release -p containerd-shim-berth-v2\` (hack/build-shim.sh, the binary hack/install.sh installs), containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}'), $(date -u +%Y-%m-%d), load at start: $(cut -d' ' -f1-3 /proc/loadavg)).
berth = containerd-shim-berth-v2 (containers created in-process); runc-shim = containerd-shim-runc-v2 driving runc; runc-shim+berth = containerd-shim-runc-v2 driving the berth binary.

$(cat "$out")

RSS counts every page mapped into the shim, most of them clean pages of its binary and of libc
that the page cache shares with other processes; PSS divides shared pages among their users
(10 berth shims share one copy of the binary); private is what only this shim holds (heap,
stack, written data). The berth shim creates containers in-process, so its text includes the
runtime (spec parsing, cgroups, namespaces, rootfs); the Go shim exec's a runtime binary
(runc, or berth) for each operation, whose memory is not counted here.
<!-- bench:shim:end -->
MD
)
rm -rf "$work"
if [ $write = 1 ]; then
  f=docs/benchmarks.md
  if grep -q '<!-- bench:shim:start -->' "$f"; then
    python3 - "$f" "$section" <<'PY'
import re, sys
p, sec = sys.argv[1], sys.argv[2]
s = open(p).read()
s = re.sub(r"<!-- bench:shim:start -->.*?<!-- bench:shim:end -->", lambda m: sec, s, flags=re.S)
open(p, "w").write(s)
PY
  else
    printf '\n%s\n' "$section" >> "$f"
  fi
fi
echo "$section"
