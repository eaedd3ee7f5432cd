#!/usr/bin/env bash
# Concurrent stages: build time of examples/bench-concurrent (two independent stages, each a
# RUN of `sleep 2` plus a little work, merged in a final stage), alternating round-robin in one
# run:
#   berth-build            stages at the same time (the default)
#   berth-build --jobs 1   the same build with the stages one after the other
#   buildah --jobs 2       `buildah bud --jobs 2` (stages in parallel), and --jobs 1 (its default)
#   BuildKit               `DOCKER_BUILDKIT=1 docker build` against a private dockerd (docker.io 20.10)
# Every build runs every step (berth-build and buildah --no-cache with the base already in
# their stores, BuildKit --no-cache with the base loaded). Prints medians and ratios as
# markdown; --write also replaces the bench:build-concurrent section of docs/benchmarks.md.
# It also checks that the concurrent and the serial berth-build give the same manifest digest.
#   hack/bench/build-concurrent.sh [--write] [ROUNDS]   (ROUNDS defaults to 7, after 1 warm-up round)
# Nothing of the machine's container state is touched: a private mount namespace with empty
# tmpfs mounts on /var/lib/containers and /run/containers, buildah's storage and dockerd's
# data and exec roots under a temp dir, and no network for RUN steps.
set -euo pipefail
cd "$(dirname "$0")/../.."
. hack/lib.sh
bench_args 7 "$@"
[ "$(id -u)" = 0 ] || { echo "$0: needs root (RUN steps create containers)" >&2; exit 1; }

if [ -z "${BERTH_BENCH_NS:-}" ]; then
  need_packages busybox-static jq buildah runc docker.io skopeo
  cargo build --release -p berth-build >&2
  exec unshare -m --propagation private env BERTH_BENCH_NS=1 "$0" "$@"
fi

bin=$(cargo_out release)/berth-build
ctx=$PWD/examples/bench-concurrent
if [ -z "${DOCKER:-}" ]; then
  work=$(mktemp -d /tmp/berth-bench-concurrent-XXXXXX)
  for d in /var/lib/containers /run/containers; do
    [ -d "$d" ] || mkdir -p "$d"
    mount -t tmpfs -o mode=0700 tmpfs "$d"
  done
  cleanup() {
    umount -R -l "$work/buildah/graph" 2>/dev/null || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  # A private dockerd for BuildKit (the runtime it registers is not used by docker build).
  BENCH_WORK=$work hack/with-docker.sh "$work/docker" /usr/sbin/runc -- "$0" "$@"
  exit
fi
work=$BENCH_WORK

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

berth=("$bin" --root "$work/berth" build -q --no-cache --build-arg "BASE=oci:$work/base:latest" -t bench:latest)
buildah=(buildah bud --pull=never --layers --no-cache --network none --runtime /usr/sbin/runc
  --build-arg BASE=localhost/busybox:latest -t bench)
# shellcheck disable=SC2206
docker=($DOCKER build --no-cache --network none --progress plain -t bench-concurrent)
export DOCKER_BUILDKIT=1

mkdir -p "$work/times"
names=("berth-build" "berth-build --jobs 1" "buildah --jobs 2" "buildah --jobs 1" "BuildKit")
for ((i = 0; i <= rounds; i++)); do
  keep=$((i > 0 ? 1 : 0)) # round 0 is the warm-up
  timed "${names[0]}" $keep "${berth[@]}" "$ctx"
  timed "${names[1]}" $keep "${berth[@]}" --jobs 1 "$ctx"
  timed "${names[2]}" $keep "${buildah[@]}" --jobs 2 "$ctx"
  timed "${names[3]}" $keep "${buildah[@]}" --jobs 1 "$ctx"
  timed "${names[4]}" $keep "${docker[@]}" "$ctx"
done
# BuildKit really ran the RUN steps (no cache).
if ! grep -q '\] RUN sleep 2' "$work/log" || grep -A2 '\] RUN sleep 2' "$work/log" | grep -q CACHED; then
  echo "BuildKit did not run the RUN steps" >&2
  cat "$work/log" >&2
  exit 1
fi

# The same image whatever the scheduling.
d1=$(SOURCE_DATE_EPOCH=1700000000 "$bin" --root "$work/repro-a" build -q --build-arg "BASE=oci:$work/base:latest" "$ctx")
d2=$(SOURCE_DATE_EPOCH=1700000000 "$bin" --root "$work/repro-b" build -q --jobs 1 --build-arg "BASE=oci:$work/base:latest" "$ctx")
if [ "$d1" = "$d2" ]; then
  repro_line="the concurrent and the serial (\`--jobs 1\`) build in fresh stores with SOURCE_DATE_EPOCH=1700000000 gave the same manifest digest ($d1)"
else
  repro_line="the concurrent and the serial build DIFFERED: $d1 vs $d2"
fi

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
p90() { sort -n "$1" | awk '{ v[NR] = $1 } END { i = int(NR * 0.9); if (i < 1) i = 1; print v[i] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
conc=$(median "$work/times/${names[0]}")
serial=$(median "$work/times/${names[1]}")
bk=$(median "$work/times/${names[4]}")

section=$(
  echo "## Concurrent stages, berth-build vs buildah and BuildKit"
  echo
  echo "Command: \`hack/bench/build-concurrent.sh --write $rounds\` ($rounds rounds after 1 warm-up round, the five"
  echo "builds alternating in each round). Image: \`examples/bench-concurrent\`: two independent stages,"
  echo "each one RUN of \`sleep 2\` plus a little CPU work, merged by two COPY --from and a RUN in a final"
  echo "stage, on the busybox-static base from hack/make-busybox-image.sh. Every step runs in every build:"
  echo "berth-build \`--no-cache\` (base already in its store), \`buildah bud --pull=never --layers --no-cache"
  echo "--network none --runtime /usr/sbin/runc\` (base in its private storage), \`DOCKER_BUILDKIT=1 docker build"
  echo "--no-cache --network none\` against a private dockerd (base loaded). RUN steps have no network in all."
  echo
  echo "Recorded $(date -u +%Y-%m-%d) on $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) vCPUs;"
  echo "$("$bin" --version) (release profile), $(buildah --version | sed 's/ (.*//'), $($DOCKER version --format 'docker {{.Server.Version}}')."
  echo "Other builds may have been running on the machine."
  echo
  echo "| build | median ms | p90 ms | ratio to berth-build --jobs 1 | ratio to BuildKit |"
  echo "|---|---:|---:|---:|---:|"
  for n in "${names[@]}"; do
    m=$(median "$work/times/$n")
    echo "| $n | $m | $(p90 "$work/times/$n") | $(ratio "$m" "$serial")x | $(ratio "$m" "$bk")x |"
  done
  echo
  awk -v c="$conc" -v s="$serial" -v k="$bk" 'BEGIN {
    r = c / s; q = c / k
    printf "Targets: concurrent at most 0.6x of the serialised build, measured %.3fx: %s; ", r, (r <= 0.6 ? "met" : "NOT met")
    printf "faster than BuildKit, measured %.3fx: %s.\n", q, (q < 1 ? "met" : "NOT met") }'
  echo
  echo "Same output whatever the scheduling: $repro_line; the test"
  echo "\`concurrent_and_serial_builds_give_the_same_image\` in builder/tests/concurrent.rs checks the same."
)
echo "$section"

if [ "$write" = 1 ]; then
  printf '%s\n' "$section" >"$work/section"
  write_section build-concurrent "$work/section"
fi
