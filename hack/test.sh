#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian 12 machine,
# checks formatting and lints, then runs every test in the workspace (as root: the
# integration tests create real containers; without root they skip themselves).
set -euo pipefail
cd "$(dirname "$0")/.."

. hack/lib.sh
# One apt-get run for everything: the runtimes and tools the tests drive; uidmap (rootless
# tests); debootstrap (the systemd driver tests boot systemd from a debootstrap rootfs,
# hack/with-systemd.sh, cached in /var/cache/berth-test; the first build takes a few minutes);
# protoc and CNI plugins (the shim's CRI tests); docker-registry, htpasswd and openssl (the
# builder's registry tests, hack/with-registry.sh); man-db, bash-completion, zsh and fish (the
# installed man pages and completions, hack/test-install.sh); git and openssh-client (ADD of a git
# repository and RUN --mount=type=ssh with a real ssh-agent, builder/tests/frontend.rs).
need_packages busybox-static jq skopeo umoci runc podman containerd docker.io libc6-dev uidmap slirp4netns \
  debootstrap protobuf-compiler containernetworking-plugins docker-registry apache2-utils openssl \
  man-db bash-completion zsh fish git openssh-client python3
command -v cargo >/dev/null || { echo "test.sh: cargo is required (rustup)" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# No import circle between the builder's module files (docs/design.md, module layering).
python3 hack/modcycles.py builder/src
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# The README's install command and the release tarball, end to end (release builds).
bash hack/test-install.sh || status=$?
bash hack/test-release.sh || status=$?
# One closing line for the whole workspace (cargo prints one per test binary, the last of which
# is often a doc-test run with no tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
