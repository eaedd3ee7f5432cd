#!/usr/bin/env bash
# Heavy context: build time of berth-build vs BuildKit (dockerd 20.10's, `DOCKER_BUILDKIT=1
# docker build`) on a context of 20000 small files (100 directories of 200, 40-400 bytes each)
# plus 64 MiB of incompressible data, with a stage that writes 2000 files and 32 MiB
# (incompressible) and a final stage that does `COPY . /app` and `COPY --from=gen`:
#   cold   --no-cache (the base already in each builder's store)
#   edit   one small file of the context changed, the cache on (the gen stage comes from the
#          cache; both COPY steps run again)
# The builders alternate within each round (edit: berth, BuildKit; cold: berth, BuildKit).
# Prints medians and ratios as markdown, and the machine's limits: write and read throughput
# of the disk the stores are on, and one core's gzip (levels 6 and 1), zstd (level 3) and
# sha256 throughput on the incompressible data (the gzip, zstd and sha256sum programs). --write also replaces the bench:build-heavy
# section of docs/benchmarks.md.
#   hack/bench/build-heavy.sh [--write] [ROUNDS]   (ROUNDS defaults to 5, after 1 warm-up round)
# BERTH_BUILD=/path/to/berth-build measures that binary instead of building the release one.
# Nothing of the machine's container state is touched: a private mount namespace, berth-build's
# store and dockerd's data and exec roots under a temp dir on /var/tmp (a disk, not tmpfs), and
# no network for RUN steps.
set -euo pipefail
cd "$(dirname "$0")/../.."
. hack/lib.sh
bench_args 5 "$@"
[ "$(id -u)" = 0 ] || { echo "$0: needs root (RUN steps create containers)" >&2; exit 1; }

if [ -z "${BERTH_BENCH_NS:-}" ]; then
  need_packages busybox-static jq docker.io skopeo python3 zstd
  [ -n "${BERTH_BUILD:-}" ] || cargo build --release -p berth-build >&2
  exec unshare -m --propagation private env BERTH_BENCH_NS=1 "$0" "$@"
fi

bin=${BERTH_BUILD:-$(cargo_out release)/berth-build}
if [ -z "${DOCKER:-}" ]; then
  work=$(mktemp -d /var/tmp/berth-bench-heavy-XXXXXX)
  cleanup() { rm -rf "$work"; }
  trap cleanup EXIT
  BENCH_WORK=$work hack/with-docker.sh "$work/docker" /usr/sbin/runc -- "$0" "$@"
  exit
fi
work=$BENCH_WORK

# The context: deterministic small files, 64 MiB from /dev/urandom.
ctx=$work/ctx
python3 - "$ctx" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(18)
words = [w * rng.randint(1, 4) for w in ("alpha ", "beta ", "gamma ", "delta ", "omega ")]
for d in range(100):
    sub = os.path.join(root, "src", f"d{d:02}")
    os.makedirs(sub, exist_ok=True)
    for f in range(200):
        n = rng.randint(40, 400)
        text = "".join(rng.choice(words) for _ in range(n // 6 + 1))[:n]
        with open(os.path.join(sub, f"f{f:03}.txt"), "w") as fh:
            fh.write(f"{d} {f} {text}\n")
PY
head -c 67108864 /dev/urandom >"$ctx/blob.bin"
cat >"$ctx/Dockerfile" <<'DF'
ARG BASE=localhost/busybox:latest
FROM $BASE AS gen
RUN mkdir -p /out/many && i=0 && while [ $i -lt 2000 ]; do echo "generated file $i" > /out/many/f$i; i=$((i+1)); done && head -c 33554432 /dev/urandom > /out/big.bin

FROM $BASE
COPY . /app
COPY --from=gen /out /gen
CMD ["sh"]
DF
edit_file=$ctx/src/d42/f042.txt

hack/make-busybox-image.sh "$work/base" localhost/busybox:latest >/dev/null
berth=("$bin" --root "$work/berth" build -q --build-arg "BASE=oci:$work/base:latest" -t heavy:latest)
# shellcheck disable=SC2206
docker=($DOCKER build --network none --progress plain -t heavy)
export DOCKER_BUILDKIT=1

mkdir -p "$work/times"
names=("berth-build cold" "BuildKit cold" "berth-build edit" "BuildKit edit")
for ((i = 0; i <= rounds; i++)); do
  keep=$((i > 0 ? 1 : 0)) # round 0 is the warm-up
  echo "round $i: $(date +%s) one file edited" >>"$edit_file"
  sync
  timed "${names[2]}" $keep "${berth[@]}" "$ctx"
  timed "${names[3]}" $keep "${docker[@]}" "$ctx"
  sync
  timed "${names[0]}" $keep "${berth[@]}" --no-cache "$ctx"
  timed "${names[1]}" $keep "${docker[@]}" --no-cache "$ctx"
  sync
done
# BuildKit really ran the steps: the cold build's RUN and COPY, the edit build's COPY of the
# context but the gen stage from its cache.
grep -q '\] RUN mkdir' "$work/log.BuildKit cold" || { echo "BuildKit cold did not RUN" >&2; exit 1; }
if grep -A1 '\] COPY \. /app' "$work/log.BuildKit edit" | grep -q CACHED; then
  echo "BuildKit edit took COPY . from the cache" >&2
  cat "$work/log.BuildKit edit" >&2
  exit 1
fi
# The same files in both images.
$DOCKER run --rm --network none heavy sh -c 'find /app /gen -type f | wc -l' >"$work/bk.count"
bk_files=$(cat "$work/bk.count")
[ "$bk_files" -ge 22002 ] || { echo "BuildKit image has only $bk_files files" >&2; exit 1; }

# The machine's limits: the disk under the stores, one core's codecs.
disk=$(python3 - "$work" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "disk-probe")
block = os.urandom(1 << 20)
t = time.perf_counter()
with open(path, "wb") as f:
    for _ in range(256):
        f.write(block)
    f.flush()
    os.fsync(f.fileno())
w = 256 / (time.perf_counter() - t)
os.posix_fadvise(os.open(path, os.O_RDONLY), 0, 0, os.POSIX_FADV_DONTNEED)
t = time.perf_counter()
with open(path, "rb") as f:
    while f.read(1 << 20):
        pass
r = 256 / (time.perf_counter() - t)
os.unlink(path)
print(f"{w:.0f} {r:.0f}")
PY
)
# One core's codecs on the 64 MiB of random bytes (from the page cache), MB/s of input.
codec() { # NAME CMD...
  local name=$1 t0 t1
  shift
  cat "$ctx/blob.bin" >/dev/null
  t0=$EPOCHREALTIME
  "$@" <"$ctx/blob.bin" >/dev/null
  t1=$EPOCHREALTIME
  awk -v n="$name" -v a="$t0" -v b="$t1" 'BEGIN { printf "%s %.0f MB/s", n, 67.108864 / (b - a) }'
}
codecs="$(codec "gzip -6" gzip -6), $(codec "gzip -1" gzip -1), $(codec "zstd -3" zstd -q -3 -T1), $(codec "sha256" sha256sum)"

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
bc=$(median "$work/times/${names[0]}") kc=$(median "$work/times/${names[1]}")
be=$(median "$work/times/${names[2]}") ke=$(median "$work/times/${names[3]}")

section=$(
  echo "## Heavy context, berth-build vs BuildKit"
  echo
  echo "Command: \`hack/bench/build-heavy.sh --write $rounds\` ($rounds rounds after 1 warm-up round, the"
  echo "builders alternating in each round). Context: 20000 small files (100 directories of 200,"
  echo "40-400 bytes) and a 64 MiB file of random bytes; a \`gen\` stage whose RUN writes 2000 small files"
  echo "and 32 MiB of random bytes; a final stage \`COPY . /app\` then \`COPY --from=gen /out /gen\`; base"
  echo "busybox-static from hack/make-busybox-image.sh. berth-build with its store on the same disk"
  echo "(\`/var/tmp\`) as dockerd's data root, gzip layers (its default); BuildKit is \`DOCKER_BUILDKIT=1"
  echo "docker build --network none\` against a private dockerd. *cold*: \`--no-cache\` in both. *edit*: one"
  echo "small context file changed before the build, the cache on (the gen stage cached, both COPY run)."
  echo
  echo "Recorded $(date -u +%Y-%m-%d) on $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) vCPUs;"
  echo "$("$bin" --version) (release profile), $($DOCKER version --format 'docker {{.Server.Version}}')."
  echo "The machine was shared with other builds and tests running at the same time."
  echo
  echo "| build | berth-build median ms | BuildKit median ms | ratio | target |"
  echo "|---|---:|---:|---:|---|"
  echo "| cold (--no-cache) | $bc | $kc | $(ratio "$bc" "$kc")x | $(awk -v r="$(ratio "$bc" "$kc")" 'BEGIN { print (r <= 0.5 ? "met" : "NOT met") " (at most 0.5x)" }') |"
  echo "| one-file edit | $be | $ke | $(ratio "$be" "$ke")x | $(awk -v r="$(ratio "$be" "$ke")" 'BEGIN { print (r <= 0.5 ? "met" : "NOT met") " (at most 0.5x)" }') |"
  echo
  echo "Limits measured in the same run: the disk under the stores writes $(echo "$disk" | cut -d' ' -f1) MB/s (256 MiB,"
  echo "fsync at the end) and reads $(echo "$disk" | cut -d' ' -f2) MB/s (page cache dropped); one core, on the 64 MiB"
  echo "of random bytes (gzip, zstd, sha256sum programs): $codecs."
)
echo "$section"

if [ "$write" = 1 ]; then
  printf '%s\n' "$section" >"$work/section"
  write_section build-heavy "$work/section"
fi
