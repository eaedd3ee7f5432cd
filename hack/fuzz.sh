#!/usr/bin/env bash
# Runs each fuzz target (crate fuzz/, libFuzzer through cargo-fuzz) for a while and prints the
# corpus size and run count of each; crashes land in fuzz/artifacts/TARGET/ and must become
# unit tests. Not part of CI's timing (a benchmark-style script).
# Usage: hack/fuzz.sh [SECONDS_PER_TARGET (default 120)] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-120}; shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
# cargo-fuzz passes nightly-only sanitizer flags; the machine's toolchain is stable.
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
# Seeds for the tar extractor (random bytes rarely pass tar's header checksum).
if [ ! -d corpus/tar_extract ] || [ -z "$(ls -A corpus/tar_extract 2>/dev/null)" ]; then
  mkdir -p corpus/tar_extract
  seed=$(mktemp -d)
  mkdir -p "$seed/d/sub"; echo hi > "$seed/d/f"; ln -s f "$seed/d/link"; ln -s ../../etc "$seed/d/out"
  ln "$seed/d/f" "$seed/d/hard"; : > "$seed/d/sub/.wh.gone"; : > "$seed/d/.wh..wh..opq"
  tar -C "$seed" -cf corpus/tar_extract/tree.tar d
  tar -C "$seed" --format=gnu -cf corpus/tar_extract/gnu.tar d
  tar -C "$seed" -cf corpus/tar_extract/abs.tar --absolute-names "$seed/d/f" 2>/dev/null || true
  rm -rf "$seed"
fi
printf '| target | seconds | runs | corpus files | crashes |\n|---|---|---|---|---|\n'
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1 || true
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  printf '| %s | %s | %s | %s | %s |\n' "$t" "$secs" "$runs" "$(ls "corpus/$t" | wc -l)" "$crashes"
  rm -f "$log"
done
