#!/usr/bin/env bash
# Builds the release containerd-shim-berth-v2 the way it is meant to run (docs/design.md,
# "Memory"): profile `shim` (release, optimised for size), glibc linked statically into a
# non-PIE executable (no dynamic loader, no start-up relocations dirtying pages), and the
# functions a container's life runs (shim/hot-functions.txt, made by hack/bench/shim-order.sh)
# laid out together at the start of .text (lld's --symbol-ordering-file), so that the pages the
# kernel maps in on first use are mostly code the shim needs. Only the shim's own crate is built
# with these flags (`cargo rustc`), so build scripts and proc-macros stay ordinary host
# binaries; with fat LTO the final crate generates the code of all crates anyway.
# LLVM numbers some internal symbols (`name.1234`) per build: the listed names are matched to
# the build's own symbols after a first link, and the binary is linked again with the matched
# list when they differ.
# Prints the directory holding the binary (target/<triple>/shim).
# Usage: hack/build-shim.sh [extra rustc flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh
out=$(cargo_out shim)
bin=$out/containerd-shim-berth-v2
mkdir -p "$out"
link() { # ORDER-FILE [flags]: build and link with that ordering file
  local order=$1
  shift
  cargo rustc -p containerd-shim-berth-v2 --bin containerd-shim-berth-v2 --profile shim -- \
    -C target-feature=+crt-static -C relocation-model=static \
    -C link-arg=-Wl,--symbol-ordering-file="$order" -C link-arg=-Wl,--no-warn-symbol-ordering \
    "$@" >&2
}
# Ordering files are named by content: a changed list changes the flags, which relinks.
listed=$out/order-$(sha256sum shim/hot-functions.txt | cut -c1-16).txt
[ -f "$listed" ] || cp shim/hot-functions.txt "$listed"
link "$listed" -C strip=none "$@"
matched=$out/order-matched.tmp
nm "$bin" | python3 -c '
import re, sys
have = {}
for line in sys.stdin:
    f = line.split()
    if len(f) == 3:
        have.setdefault(re.sub(r"\.\d+$", "", f[2]), []).append(f[2])
seen = set()
for name in open(sys.argv[1]).read().split():
    for n in have.get(re.sub(r"\.\d+$", "", name), []):
        if n not in seen:
            seen.add(n)
            print(n)
' "$listed" > "$matched"
final=$out/order-$(sha256sum "$matched" | cut -c1-16).txt
mv "$matched" "$final"
if ! cmp -s "$final" "$listed" || [ $# -eq 0 ]; then
  link "$final" "$@"
fi
echo "$out"
