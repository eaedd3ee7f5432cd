#!/usr/bin/env bash
# Checks that hack/release.sh is reproducible: two builds of this commit give the same tarball,
# byte for byte. The second build comes after `cargo clean --release -p` of the three shipped
# packages, so their code is compiled and linked again (the dependencies, built by the same
# toolchain from the same sources, are reused). Also checks the archive's metadata (owner 0:0,
# mtime = the commit's time, modes) and that SHA256SUMS match.
# Usage: hack/test-release.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
work=$(mktemp -d /tmp/berth-test-release-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-release.sh: FAIL: $*" >&2; exit 1; }
a=$(bash hack/release.sh "$work/a")
cargo clean --release -p berth -p berth-build -p containerd-shim-berth-v2 >&2
b=$(bash hack/release.sh "$work/b")
[ "$(basename "$a")" = "$(basename "$b")" ] || fail "names differ: $a $b"
cmp "$a" "$b" || fail "two builds of $(git rev-parse HEAD) differ: $a $b"
cmp "$work/a/SHA256SUMS" "$work/b/SHA256SUMS" || fail "SHA256SUMS differ"
(cd "$work/a" && sha256sum -c --quiet SHA256SUMS) || fail "SHA256SUMS does not match the tarball"
epoch=$(git log -1 --format=%ct HEAD)
TZ=UTC tar --numeric-owner --full-time -tvzf "$a" > "$work/list"
awk -v e="$(date -u -d "@$epoch" '+%Y-%m-%d %H:%M:%S')" '
  $2 != "0/0" { print "owner " $0; bad = 1 }
  ($4 " " $5) != e { print "mtime " $0; bad = 1 }
  $1 !~ /^(drwxr-xr-x|-rwxr-xr-x|-rw-r--r--)$/ { print "mode " $0; bad = 1 }
  END { exit bad }' "$work/list" || fail "archive metadata (TZ=UTC, expected $epoch)"
mkdir "$work/x"
tar -C "$work/x" -xzf "$a"
name=$(basename "$a" .tar.gz)
(cd "$work/x/$name" && sha256sum -c --quiet SHA256SUMS) || fail "the tarball's SHA256SUMS does not match its files"
for f in bin/berth bin/berth-build bin/containerd-shim-berth-v2 share/man/man1/berth.1 \
  share/bash-completion/completions/berth share/zsh/site-functions/_berth \
  share/fish/vendor_completions.d/berth.fish share/berth/docker/daemon.json; do
  [ -f "$work/x/$name/$f" ] || fail "$f is missing from the tarball"
done
echo "test-release.sh: ok: $(basename "$a") is reproducible ($(sha256sum < "$a" | cut -c1-16))" >&2
