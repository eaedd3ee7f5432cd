#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian 12 machine,
# checks formatting and lints, then runs every test in the workspace (as root: the
# integration tests create real containers; without root they skip themselves).
set -euo pipefail
cd "$(dirname "$0")/.."

need=(busybox-static jq skopeo umoci runc podman)
missing=()
for p in "${need[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "test.sh: cargo is required (rustup)" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
