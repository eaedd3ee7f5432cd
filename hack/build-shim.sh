#!/usr/bin/env bash
# Builds the release containerd-shim-berth-v2 the way it is meant to run (docs/design.md,
# "Shim memory"): profile `shim` (release, optimised for size), glibc linked statically into a
# non-PIE executable (no dynamic loader, no start-up relocations dirtying pages), and the
# functions a container's life runs (shim/hot-functions.txt, made by hack/bench/shim-order.sh)
# laid out together at the start of .text, so that the pages the kernel maps in on first use
# are mostly code the shim needs. Only the shim's own crate is built with these flags
# (`cargo rustc`), so build scripts and proc-macros stay ordinary host binaries; with fat LTO
# the final crate generates the code of all crates anyway.
# Prints the directory holding the binary (target/shim).
# Usage: hack/build-shim.sh [extra rustc flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/target/shim
mkdir -p "$out"
# The ordering file by content hash: a changed list changes the flags, which relinks.
order=$out/hot-functions-$(sha256sum shim/hot-functions.txt | cut -c1-16).txt
[ -f "$order" ] || cp shim/hot-functions.txt "$order"
cargo rustc -p containerd-shim-berth-v2 --bin containerd-shim-berth-v2 --profile shim -- \
  -C target-feature=+crt-static -C relocation-model=static \
  -C link-arg=-Wl,--symbol-ordering-file="$order" -C link-arg=-Wl,--no-warn-symbol-ordering \
  "$@" >&2
echo "$out"
