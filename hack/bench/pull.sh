#!/usr/bin/env bash
# Registry transfer and unpack, berth-build vs skopeo and umoci, alternating in one run:
#   pull    `berth-build pull` into a fresh store (download, verify digests, decompress and check
#           every layer's entries; layers are extracted, and diff ids verified, at first use) vs
#           `skopeo copy docker://... oci:DIR` (download, verify digests) of the same image
#   push    `berth-build push` vs `skopeo copy oci:DIR docker://...`, each to an emptied registry
#   unpack  `berth-build unpack` (copy) and `unpack --overlay` (first use: extracts the layers
#           into the store; again: only the mount) vs `umoci unpack`
# The image: hack/bench/make-layers-image.sh (5 gzip layers, 16 MiB each uncompressed); the
# registry: docker-registry from hack/with-registry.sh (plain HTTP on 127.0.0.1).
# Prints medians and ratios as markdown; --write replaces the bench:pull section of
# docs/benchmarks.md.   hack/bench/pull.sh [--write] [ROUNDS]   (default 7 rounds + 1 warm-up)
# It runs in a private mount namespace where /var/lib/containers is an empty tmpfs (skopeo's
# blob-info cache, which would otherwise turn later pushes into mounts).
set -euo pipefail
cd "$(dirname "$0")/../.."
. hack/lib.sh
bench_args 7 "$@"
[ "$(id -u)" = 0 ] || { echo "$0: needs root (unpack --overlay mounts)" >&2; exit 1; }
if [ -z "${BERTH_BENCH_NS:-}" ]; then
  need_packages jq skopeo umoci docker-registry apache2-utils openssl
  [ -n "${BERTH_BENCH_BIN:-}" ] || cargo build --release -p berth-build >&2
  exec unshare -m --propagation private env BERTH_BENCH_NS=1 "$0" "$@"
fi
bin=${BERTH_BENCH_BIN:-$(cargo_out release)}/berth-build
work=$(mktemp -d /tmp/berth-bench-pull-XXXXXX)
mkdir -p /var/lib/containers && mount -t tmpfs -o mode=0700 tmpfs /var/lib/containers
cleanup() {
  set +e
  hack/with-registry.sh stop "$work/reg" >/dev/null 2>&1
  for b in "$work"/ov-* "$work"/ov2-*; do [ -d "$b" ] && "$bin" --root "$work/store-0" unmount "$b" >/dev/null 2>&1; done
  umount -R -l "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

hack/bench/make-layers-image.sh "$work/image" 5 16
size=$(du -sb "$work/image/blobs" | cut -f1)
registry() { # fresh, empty registries; sets REG_PLAIN
  hack/with-registry.sh stop "$work/reg" >/dev/null 2>&1 || true
  rm -rf "$work/reg"
  hack/with-registry.sh start "$work/reg" >/dev/null
  . "$work/reg/env"
}
registry
skopeo copy -q --dest-tls-verify=false "oci:$work/image:bench:latest" "docker://$REG_PLAIN/bench:1"

mkdir -p "$work/times"
timed() { # NAME CMD...: wall time in ms appended to times/NAME
  local name=$1 t0 t1; shift
  t0=$(date +%s%N)
  "$@" >"$work/last.log" 2>&1 || { echo "$name failed:" >&2; cat "$work/last.log" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000)) >>"$work/times/$name"
}

for r in $(seq 0 "$rounds"); do
  keep=1; [ "$r" = 0 ] && keep=0
  rec() { if [ "$keep" = 1 ]; then timed "$@"; else "${@:2}" >/dev/null 2>&1; fi; }
  st=$work/store-$r lay=$work/oci-$r
  # pull
  rec "berth-build pull" "$bin" --root "$st" pull -q "$REG_PLAIN/bench:1"
  rec "skopeo pull" skopeo copy -q --src-tls-verify=false "docker://$REG_PLAIN/bench:1" "oci:$lay:bench"
  # unpack
  rec "berth-build unpack" "$bin" --root "$st" unpack "$REG_PLAIN/bench:1" "$work/cp-$r"
  rec "berth-build unpack --overlay (first)" "$bin" --root "$st" unpack --overlay "$REG_PLAIN/bench:1" "$work/ov-$r"
  rec "berth-build unpack --overlay (again)" "$bin" --root "$st" unpack --overlay "$REG_PLAIN/bench:1" "$work/ov2-$r"
  rec "umoci unpack" umoci unpack --image "$lay:bench" "$work/umoci-$r"
  "$bin" --root "$st" unmount "$work/ov-$r" >/dev/null
  "$bin" --root "$st" unmount "$work/ov2-$r" >/dev/null
  rm -rf "$work/cp-$r" "$work/umoci-$r" "$lay"
  # push, each into an empty registry
  old=$REG_PLAIN
  registry
  rec "berth-build push" "$bin" --root "$st" push -q "$old/bench:1" "$REG_PLAIN/bench:1"
  registry
  rec "skopeo push" skopeo copy -q --dest-tls-verify=false "oci:$work/image:bench:latest" "docker://$REG_PLAIN/bench:1"
  registry
  skopeo copy -q --dest-tls-verify=false "oci:$work/image:bench:latest" "docker://$REG_PLAIN/bench:1"
  rm -rf "$st"
done

median() { sort -n "$work/times/$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
row() { # NAME PEER TARGET
  local b p
  b=$(median "$1"); p=$(median "$2")
  awk -v n="$1" -v b="$b" -v p="$p" -v peer="$2" -v t="$3" 'BEGIN {
    r = b / p; printf "| %s | %s | %s | %s | %.2fx | %s |\n", n, b, peer, p, r, (t == "" ? "" : (r <= t ? "met (<= " t "x)" : "NOT met (> " t "x)")) }'
}
section=$(
  echo "## Registry pull and push, unpack: berth-build vs skopeo and umoci"
  echo
  echo "Command: \`hack/bench/pull.sh --write $rounds\` ($rounds rounds after 1 warm-up round, the tools alternating"
  echo "in each round). Image: 5 gzip layers of 16 MiB uncompressed ($((size / 1024 / 1024)) MiB of blobs,"
  echo "\`hack/bench/make-layers-image.sh\`), served by Debian's docker-registry over plain HTTP on 127.0.0.1."
  echo "Like with like: both pulls download the blobs (6 at a time), verify their digests and sizes"
  echo "and write them (the same 7 files); berth-build's also decompresses each layer as it arrives"
  echo "and checks its entries (an unsafe layer fails the pull), and writes no layer contents:"
  echo "layers are extracted into the store, and their diff ids verified, at their first use (a"
  echo "build's FROM, \`unpack --overlay\`), which is the \`unpack --overlay (first)\` row; \`(again)\`"
  echo "is a second bundle over the same layers (docs/design.md, \"Pull does not unpack\")."
  echo "Pushes go to an emptied registry each time (skopeo's blob-info cache hidden, so neither tool"
  echo "can mount). Unpack reads berth-build's store and skopeo's OCI layout respectively."
  echo
  echo "| berth-build | median ms | peer | median ms | ratio | target |"
  echo "|---|---:|---|---:|---:|---|"
  row "berth-build pull" "skopeo pull" 0.7
  row "berth-build push" "skopeo push" 0.7
  row "berth-build unpack" "umoci unpack" 0.5
  row "berth-build unpack --overlay (first)" "umoci unpack" 0.5
  row "berth-build unpack --overlay (again)" "umoci unpack" 0.5
)
echo "$section"
if [ "$write" = 1 ]; then
  printf '%s\n' "$section" >"$work/section"
  write_section pull "$work/section"
fi
