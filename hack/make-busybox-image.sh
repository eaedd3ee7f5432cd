#!/usr/bin/env bash
# Writes an OCI image layout of busybox-static (/bin/busybox, applet symlinks,
# /etc/passwd and /etc/group) with tar, sha256sum and jq only.
#   hack/make-busybox-image.sh DIR [NAME]   (NAME defaults to localhost/busybox:latest)
# IMAGE_CMD (a JSON array, default ["sh"]) is the image's Cmd, e.g. a pause image's
# '["sleep","2147483647"]'.
# Needs: busybox-static, jq. The layer is deterministic (fixed mtimes and owners).
set -euo pipefail
dest=${1:?usage: $0 DIR [NAME]}
name=${2:-localhost/busybox:latest}
bb=/bin/busybox
[ -x "$bb" ] || { echo "$0: $bb missing: apt-get install busybox-static" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,home}
chmod 1777 "$root/tmp"; chmod 700 "$root/root"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list-full); do
  [ "$a" = bin/busybox ] && continue
  mkdir -p "$root/$(dirname "$a")"
  ln -sf /bin/busybox "$root/$a"
done
cat >"$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat >"$root/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
G
mkdir -p "$dest/blobs/sha256"
layer=$work/layer.tar.gz
( cd "$root" && tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -cf - . ) | gzip -n >"$layer"
diff_id=$(gzip -dc "$layer" | sha256sum | cut -d' ' -f1)
layer_digest=$(sha256sum "$layer" | cut -d' ' -f1)
layer_size=$(stat -c %s "$layer")
cp "$layer" "$dest/blobs/sha256/$layer_digest"
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
jq -cn --arg d "sha256:$diff_id" --arg arch "$arch" --argjson cmd "${IMAGE_CMD:-[\"sh\"]}" '{
  created: "1970-01-01T00:00:00Z", architecture: $arch, os: "linux",
  config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: $cmd},
  rootfs: {type: "layers", diff_ids: [$d]},
  history: [{created: "1970-01-01T00:00:00Z", created_by: "hack/make-busybox-image.sh"}]}' >"$work/config.json"
config_digest=$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
cp "$work/config.json" "$dest/blobs/sha256/$config_digest"
jq -cn --arg c "sha256:$config_digest" --argjson cs "$config_size" \
  --arg l "sha256:$layer_digest" --argjson ls "$layer_size" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]}' >"$work/manifest.json"
manifest_digest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$work/manifest.json")
cp "$work/manifest.json" "$dest/blobs/sha256/$manifest_digest"
echo '{"imageLayoutVersion":"1.0.0"}' >"$dest/oci-layout"
jq -cn --arg m "sha256:$manifest_digest" --argjson ms "$manifest_size" --arg n "$name" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
               annotations: {"org.opencontainers.image.ref.name": $n}}]}' >"$dest/index.json.tmp"
mv "$dest/index.json.tmp" "$dest/index.json"
echo "$dest: $name sha256:$manifest_digest"
