#!/usr/bin/env bash
# `run` latency with the systemd cgroup driver: berth vs runc, both `--systemd-cgroup`, side by
# side inside one systemd environment (hack/with-systemd.sh: systemd 252 as PID 1, hybrid
# cgroups; runc is Debian bookworm's, installed in that rootfs). Each round runs berth, then
# runc, on the same busybox bundle (`/bin/true`, a new transient scope per run), timed with
# bash's $EPOCHREALTIME inside the environment (no process is spawned for the clock).
#
# Usage: hack/bench/systemd.sh [--write]
#   --write replaces the section between <!-- bench:systemd:start --> and
#   <!-- bench:systemd:end --> in docs/benchmarks.md (appends it when missing).
# Knobs: RUNS=100 (per runtime), WARMUP=5.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
write=0
[ "${1:-}" = "--write" ] && write=1
RUNS=${RUNS:-100} WARMUP=${WARMUP:-5}
. hack/lib.sh
need_packages busybox-static jq debootstrap
cargo build --release -p berth >&2
berth=$(cargo_out release)/berth
env_dir=$(mktemp -d /tmp/berth-bench-sd-XXXXXX)
rmdir "$env_dir"
trap 'bash hack/with-systemd.sh down "$env_dir"' EXIT
bash hack/with-systemd.sh up "$env_dir" "$berth" >/dev/null
BERTH=$berth bash hack/make-rootfs.sh "$env_dir/share/b" true >/dev/null

raw=$(bash hack/with-systemd.sh exec "$env_dir" bash -c '
  set -e
  runs=$1 warmup=$2
  runc --version | head -1 >&2
  for i in $(seq 1 $((runs + warmup))); do
    for rt in berth runc; do
      t0=$EPOCHREALTIME
      $rt --root /run/bench-$rt --systemd-cgroup run -b /share/b "b$i" </dev/null >/dev/null
      t1=$EPOCHREALTIME
      [ "$i" -gt "$warmup" ] && echo "$rt $t0 $t1"
    done
  done
  left=$(systemctl list-units --all --no-legend --plain "*.scope" | grep -c -e "^berth-b" -e "^runc-b" || true)
  echo "left $left"
' bash "$RUNS" "$WARMUP")
left=$(awk '$1 == "left" {print $2}' <<<"$raw")
runc_version=$(bash hack/with-systemd.sh exec "$env_dir" runc --version | head -1)
sd_version=$(bash hack/with-systemd.sh exec "$env_dir" systemctl --version | head -1)

stats() { # NAME -> "median p90" in ms
  awk -v rt="$1" '$1 == rt { printf "%.3f\n", ($3 - $2) * 1000 }' <<<"$raw" | sort -n |
    awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
                              p = a[int(NR * 0.9 + 0.5)]; printf "%.1f %.1f", m, p }'
}
read -r bm bp <<<"$(stats berth)"
read -r rm rp <<<"$(stats runc)"
ratio=$(awk -v b="$bm" -v r="$rm" 'BEGIN { printf "%.2f", b / r }')
section=$(cat <<EOF
<!-- bench:systemd:start -->
## \`run\` with the systemd cgroup driver (berth vs runc)

\`hack/bench/systemd.sh --write\`, $(date -u +%Y-%m-%d), $RUNS runs each (after $WARMUP warm-up), alternating,
inside the systemd test environment ($sd_version as PID 1, hybrid cgroups; $runc_version from Debian
bookworm). Each run is \`RUNTIME --systemd-cgroup run -b BUNDLE ID\` of busybox \`true\`: a new
transient scope in system.slice per run, started over D-Bus and stopped on exit. Units left
afterwards: $left.

| runtime | median ms | p90 ms | ratio to runc |
|---|---:|---:|---:|
| berth | $bm | $bp | $ratio |
| runc | $rm | $rp | 1.00 |
<!-- bench:systemd:end -->
EOF
)
echo "$section"
if [ "$write" = 1 ]; then
  f=docs/benchmarks.md
  if grep -q '<!-- bench:systemd:start -->' "$f"; then
    awk -v s="$section" '/<!-- bench:systemd:start -->/ { print s; skip = 1; next }
                         /<!-- bench:systemd:end -->/ { skip = 0; next } !skip' "$f" >"$f.new"
    mv "$f.new" "$f"
  else
    printf '\n%s\n' "$section" >>"$f"
  fi
fi
