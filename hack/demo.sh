#!/usr/bin/env bash
# The README's main job: build berth, make a busybox bundle and run it with berth.
# (Once berth-build lands, this builds a Dockerfile into an image and runs that image.)
set -euo pipefail
cd "$(dirname "$0")/.."
need=(busybox-static jq)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release -p berth
berth=$PWD/target/release/berth
work=$(mktemp -d /tmp/berth-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT
BERTH=$berth hack/make-rootfs.sh "$work/bundle" sh -c \
  'echo "hello from $(hostname), pid $$ in its own namespaces"; id; cat /proc/self/cgroup | grep memory'
jq '.hostname="berth-demo"' "$work/bundle/config.json" > "$work/c" && mv "$work/c" "$work/bundle/config.json"
echo "+ berth run -b $work/bundle demo"
"$berth" --root "$work/state" run -b "$work/bundle" "demo-$$"
echo "exit status: $?"
