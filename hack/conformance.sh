#!/usr/bin/env bash
# Grades runc, crun and berth side by side with the OCI conformance suite (crate conformance/)
# and regenerates docs/compatibility.md. Run as root on a Debian 12 machine.
# Usage: hack/conformance.sh [extra berth-conformance flags, e.g. --filter cgroups --tap]
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

need=(runc crun busybox-static jq libc6-dev)
missing=()
for p in "${need[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "conformance.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "$(id -u)" = 0 ] || { echo "conformance.sh: run as root (the cases create containers)" >&2; exit 1; }

cargo build --release -p berth
# The suite embeds a statically linked checker that its build script compiles.
cargo build -p berth-conformance
"$(cargo_out debug)/berth-conformance" --compare "runc,crun,$(cargo_out release)/berth" \
  --markdown docs/compatibility.md "$@"
