#!/usr/bin/env bash
# Writes an OCI layout with N gzip layers of M MiB each (half random, half text-like, so they
# compress like real layers), named bench:latest, for the pull/push/unpack benchmarks.
#   hack/bench/make-layers-image.sh DIR [N=5] [M=16]
set -euo pipefail
dest=${1:?usage: $0 DIR [LAYERS] [MIB]}; n=${2:-5}; mib=${3:-16}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$dest/blobs/sha256"
layers=() diffs=()
for i in $(seq "$n"); do
  r=$work/l$i; mkdir -p "$r/data/$i"
  head -c $((mib * 512 * 1024)) /dev/urandom >"$r/data/$i/random.bin"
  for j in $(seq 64); do seq $((j * 1000)) $((j * 1000 + mib * 128)) >"$r/data/$i/text-$j.txt"; done
  (cd "$r" && tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -cf - .) >"$work/l$i.tar"
  diffs+=("sha256:$(sha256sum "$work/l$i.tar" | cut -d' ' -f1)")
  gzip -1 -n -c "$work/l$i.tar" >"$work/l$i.tgz"
  d=$(sha256sum "$work/l$i.tgz" | cut -d' ' -f1)
  cp "$work/l$i.tgz" "$dest/blobs/sha256/$d"
  layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c %s "$work/l$i.tgz")}")
done
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
printf '%s\n' "${diffs[@]}" | jq -R . | jq -cs --arg arch "$arch" \
  '{architecture: $arch, os: "linux", config: {Cmd: ["sh"]}, rootfs: {type: "layers", diff_ids: .}}' >"$work/config.json"
c=$(sha256sum "$work/config.json" | cut -d' ' -f1); cp "$work/config.json" "$dest/blobs/sha256/$c"
printf '%s\n' "${layers[@]}" | jq -cs --arg c "sha256:$c" --argjson cs "$(stat -c %s "$work/config.json")" \
  '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs}, layers: .}' >"$work/m.json"
m=$(sha256sum "$work/m.json" | cut -d' ' -f1); cp "$work/m.json" "$dest/blobs/sha256/$m"
echo '{"imageLayoutVersion":"1.0.0"}' >"$dest/oci-layout"
jq -cn --arg m "sha256:$m" --argjson ms "$(stat -c %s "$work/m.json")" \
  '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
    annotations: {"org.opencontainers.image.ref.name": "bench:latest"}}]}' >"$dest/index.json"
