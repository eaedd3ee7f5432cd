#!/usr/bin/env bash
# Builds the release containerd-shim-berth-v2, the one hack/bench/shim.sh measures and
# hack/install.sh installs: `cargo build --release -p containerd-shim-berth-v2`, whose lean link
# comes from shim/build.rs (static non-PIE, shim/hot-functions.txt as lld's symbol ordering
# file, docs/design.md "Memory"). Extra rustc flags (hack/bench/shim-order.sh's profiling
# build, or `-C relocation-model=static` to compare) go to the shim's own crate only through
# `cargo rustc`: the dependencies, and so the symbol names the ordering file lists, stay those
# of the plain release build. A build with flags replaces the plain binary until the next
# plain build relinks it.
# Prints the directory holding the binary (target/<triple>/release).
# Usage: hack/build-shim.sh [extra rustc flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh
if [ $# -eq 0 ]; then
  cargo build --release -p containerd-shim-berth-v2 >&2
else
  cargo rustc --release -p containerd-shim-berth-v2 --bin containerd-shim-berth-v2 -- "$@" >&2
fi
cargo_out release
