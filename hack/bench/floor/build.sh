#!/usr/bin/env bash
# Builds hack/bench/floor/floor.c (static, -O2) into OUT; the bench scripts call it.
# Usage: hack/bench/floor/build.sh OUT
set -euo pipefail
out=${1:?usage: build.sh OUT}
src=$(dirname "$0")/floor.c
command -v cc >/dev/null || { echo "floor/build.sh: no C compiler: apt-get install gcc libc6-dev" >&2; exit 1; }
cc -O2 -static -Wall -Wextra -Werror -o "$out" "$src"
