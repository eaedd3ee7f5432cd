#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian 12 machine,
# checks formatting and lints, then runs every test in the workspace (as root: the
# integration tests create real containers; without root they skip themselves).
set -euo pipefail
cd "$(dirname "$0")/.."

. hack/lib.sh
need_packages busybox-static jq skopeo umoci runc podman containerd docker.io libc6-dev
command -v cargo >/dev/null || { echo "test.sh: cargo is required (rustup)" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
