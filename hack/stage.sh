#!/usr/bin/env bash
# Builds what berth ships and lays it out under DIR as it is installed under PREFIX:
#   DIR/bin/{berth,berth-build,containerd-shim-berth-v2}   the release binaries, each built
#       exactly as hack/bench/ builds the one it measures (`cargo build --release -p PKG`, one
#       package per cargo call so no other package's features leak into it; the shim's lean
#       link comes from shim/build.rs)
#   DIR/share/man/man1/*.1                                  one page per command and subcommand
#   DIR/share/{bash-completion/completions,zsh/site-functions,fish/vendor_completions.d}/
#   DIR/share/berth/{containerd,kubernetes,podman,docker}/  caller configs (dist/), with
#       @BINDIR@ replaced by PREFIX/bin
# Man pages and completions come from berth-docgen (docgen/, a dev build: it only renders text).
# Used by hack/install.sh and hack/release.sh. Prints nothing on stdout.
# Usage: hack/stage.sh DIR PREFIX
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
. hack/lib.sh
dir=${1:?DIR}
prefix=${2:?PREFIX}
case $prefix in /*) ;; *) echo "stage.sh: PREFIX must be an absolute path: $prefix" >&2; exit 2 ;; esac
for pkg in berth berth-build containerd-shim-berth-v2; do
  cargo build --release --locked -p "$pkg" >&2
done
cargo build --locked -p berth-docgen >&2
rel=$(cargo_out release)
mkdir -p "$dir/bin" "$dir/share"
for b in berth berth-build containerd-shim-berth-v2; do
  install -m 0755 "$rel/$b" "$dir/bin/$b"
done
"$(cargo_out debug)/berth-docgen" "$dir/share"
for f in containerd/berth-runtime.toml kubernetes/runtimeclass.yaml podman/berth.conf docker/daemon.json; do
  mkdir -p "$dir/share/berth/$(dirname "$f")"
  sed "s|@BINDIR@|$prefix/bin|g" "dist/$f" > "$dir/share/berth/$f"
  chmod 0644 "$dir/share/berth/$f"
done
