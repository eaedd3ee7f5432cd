#!/usr/bin/env bash
# Build time, berth-build vs `buildah bud`, on the same two-stage Dockerfile
# (examples/bench-build) and the same busybox base, alternating the two builders round-robin
# in one run:
#   cold    berth-build: a fresh store each round (the base layer is imported and unpacked too);
#           buildah: `bud --no-cache --layers` with the base already in its storage
#   cached  a rebuild of the same context with every step in the cache (both --layers/default)
# Prints medians and ratios as markdown; --write also replaces the bench:build section of
# docs/benchmarks.md. It also checks that two berth-build builds with SOURCE_DATE_EPOCH give
# the same manifest digest.
#   hack/bench/build.sh [--write] [ROUNDS]     (ROUNDS defaults to 15, after 1 warm-up round)
# Nothing of the machine's container state is touched: the script runs in a private mount
# namespace where /var/lib/containers and /run/containers are empty tmpfs mounts, buildah uses
# a storage root under a temp dir, and RUN steps of both builders have no network.
set -euo pipefail
cd "$(dirname "$0")/../.."
. hack/lib.sh
bench_args 15 "$@"
[ "$(id -u)" = 0 ] || { echo "$0: needs root (RUN steps create containers)" >&2; exit 1; }

if [ -z "${BERTH_BENCH_NS:-}" ]; then
  need_packages busybox-static jq buildah runc
  cargo build --release -p berth-build >&2
  exec unshare -m --propagation private env BERTH_BENCH_NS=1 "$0" "$@"
fi

bin=$(cargo_out release)/berth-build
ctx=$PWD/examples/bench-build
work=$(mktemp -d /tmp/berth-bench-build-XXXXXX)
# Private mount namespace: hide the machine's container state from buildah (its blob-info
# cache and network state live there); every mount made below vanishes with the namespace.
for d in /var/lib/containers /run/containers; do
  [ -d "$d" ] || mkdir -p "$d"
  mount -t tmpfs -o mode=0700 tmpfs "$d"
done
cleanup() {
  umount -R -l "$work/buildah/graph" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

hack/make-busybox-image.sh "$work/base" localhost/busybox:latest >/dev/null
tar -C "$work/base" -cf "$work/base.tar" .
mkdir -p "$work/buildah"
cat >"$work/buildah/storage.conf" <<CONF
[storage]
driver = "overlay"
runroot = "$work/buildah/run"
graphroot = "$work/buildah/graph"
CONF
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$work/buildah/policy.json"
export CONTAINERS_STORAGE_CONF=$work/buildah/storage.conf
buildah pull -q --signature-policy "$work/buildah/policy.json" "oci-archive:$work/base.tar" >/dev/null

berth_cmd=("$bin" build -q --build-arg "BASE=oci:$work/base:latest" -t bench:latest "$ctx")
buildah_cmd=(buildah bud --pull=never --layers --network none --runtime /usr/sbin/runc
  --build-arg BASE=localhost/busybox:latest -t bench "$ctx")

# Each run: stdout and stderr to a log, the wall time in ms appended to $work/times/NAME.
mkdir -p "$work/times"
# Warm stores for the cached builds.
"$bin" --root "$work/berth-warm" "${berth_cmd[@]:1}" >/dev/null 2>&1
"${buildah_cmd[@]}" >/dev/null 2>&1

for ((i = 0; i <= rounds; i++)); do
  keep=$((i > 0 ? 1 : 0)) # round 0 is the warm-up
  rm -rf "$work/berth-cold"
  timed "berth-build cold" $keep "$bin" --root "$work/berth-cold" "${berth_cmd[@]:1}"
  rm -rf "$work/berth-cold"
  timed "buildah cold" $keep "${buildah_cmd[@]:0:2}" --no-cache "${buildah_cmd[@]:2}"
  timed "berth-build cached" $keep "$bin" --root "$work/berth-warm" "${berth_cmd[@]:1}"
  timed "buildah cached" $keep "${buildah_cmd[@]}"
  grep -q "Using cache" "$work/log" || { echo "buildah did not use its cache" >&2; cat "$work/log" >&2; exit 1; }
done
# The cached berth-build runs must really have been cached.
"$bin" --root "$work/berth-warm" build --build-arg "BASE=oci:$work/base:latest" "$ctx" 2>&1 >/dev/null |
  grep -q "steps, 0 cached" && { echo "berth-build did not use its cache" >&2; exit 1; }

# Reproducibility: two builds in fresh stores with SOURCE_DATE_EPOCH.
repro=()
for s in a b; do
  repro+=("$(SOURCE_DATE_EPOCH=1700000000 "$bin" --root "$work/repro-$s" "${berth_cmd[@]:1}")")
done
if [ "${repro[0]}" = "${repro[1]}" ]; then
  repro_line="two cold berth-build builds in fresh stores with SOURCE_DATE_EPOCH=1700000000 gave the same manifest digest (${repro[0]})"
else
  repro_line="two cold berth-build builds with SOURCE_DATE_EPOCH=1700000000 DIFFERED: ${repro[0]} vs ${repro[1]}"
fi

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
p90() { sort -n "$1" | awk '{ v[NR] = $1 } END { i = int(NR * 0.9); if (i < 1) i = 1; print v[i] }'; }
table() { # KIND TARGET
  local kind=$1 target=$2 b m r
  b=$(median "$work/times/berth-build $kind")
  m=$(median "$work/times/buildah $kind")
  r=$(awk -v b="$b" -v m="$m" 'BEGIN { printf "%.3f", b / m }')
  echo "| $kind build | median ms | p90 ms | ratio to buildah |"
  echo "|---|---:|---:|---:|"
  echo "| berth-build | $b | $(p90 "$work/times/berth-build $kind") | ${r}x |"
  echo "| buildah | $m | $(p90 "$work/times/buildah $kind") | 1.000x |"
  echo
  awk -v r="$r" -v t="$target" 'BEGIN {
    printf "Target: berth-build at most %sx of buildah; measured %.3fx: %s.\n", t, r, (r <= t ? "met" : "NOT met") }'
}

section=$(
  echo "## Image build, berth-build vs buildah"
  echo
  echo "Command: \`hack/bench/build.sh --write $rounds\` ($rounds rounds after 1 warm-up round, the two builders"
  echo "alternating in each round). Image: \`examples/bench-build\` (two stages, 5 filesystem steps"
  echo "and a COPY --from, on the busybox-static base from hack/make-busybox-image.sh)."
  echo "- cold: berth-build with a fresh, empty store every round (it imports and unpacks the base"
  echo "  layer too); \`buildah bud --pull=never --layers --no-cache --network none --runtime"
  echo "  /usr/sbin/runc\` with the base already in its (private) storage."
  echo "- cached: the same build again, every step from the cache (\`berth-build build\` /"
  echo "  \`buildah bud --layers\`)."
  echo "- RUN steps have no network in both (berth-build's default; \`--network none\` for buildah)."
  echo
  echo "Recorded $(date -u +%Y-%m-%d) on $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) vCPUs,"
  echo "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $("$bin" --version) (release profile), $(buildah --version | sed 's/ (.*//'),"
  echo "$(runc --version | head -1). Other builds may have been running on the machine."
  echo
  table cold 0.5
  echo
  table cached 0.1
  echo
  echo "Byte-identical output for identical input: $repro_line; the test"
  echo "\`no_cache_builds_with_source_date_epoch_are_reproducible\` in builder/tests/build.rs checks the same."
)
echo "$section"

if [ "$write" = 1 ]; then
  printf '%s\n' "$section" >"$work/section"
  write_section build "$work/section"
fi
