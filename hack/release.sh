#!/usr/bin/env bash
# Writes the release artifact of the checked-out commit: OUT/berth-VERSION-ARCH-linux.tar.gz
# (the tree hack/stage.sh lays out for PREFIX=/usr/local: static binaries, man pages, shell
# completions, caller configs, and SHA256SUMS of every file in it) and OUT/SHA256SUMS of the
# tarball. Unpack it with `tar -C /usr/local --strip-components=1 -xzf FILE`.
# Reproducible: the same commit gives the same bytes (hack/test-release.sh checks it). Files
# are sorted by name, owned by 0:0, with mode 0755/0644 and mtime SOURCE_DATE_EPOCH (default:
# the commit's time), gzip without name or time; the binaries are what rustc writes for one
# source tree, toolchain and CARGO_HOME (the paths of registry crates end up in them).
# Usage: hack/release.sh [OUT]   (default target/dist; prints the tarball's path)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
out=$(realpath -m "${1:-target/dist}")
commit=$(git rev-parse HEAD)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct "$commit")}
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
name=berth-$version-$(uname -m)-linux
work=$(mktemp -d /tmp/berth-release-XXXXXX)
trap 'rm -rf "$work"' EXIT
bash hack/stage.sh "$work/$name" /usr/local
(cd "$work/$name" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum) > "$work/SHA256SUMS"
mv "$work/SHA256SUMS" "$work/$name/SHA256SUMS"
find "$work/$name" -type d -exec chmod 0755 {} + -o -type f -perm -u+x -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
mkdir -p "$out"
LC_ALL=C tar --sort=name --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -C "$work" -cf - "$name" | gzip -n -9 > "$out/$name.tar.gz.tmp"
mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" > SHA256SUMS)
echo "$out/$name.tar.gz"
