#!/usr/bin/env bash
# Makes a busybox bundle: DIR/rootfs (busybox-static and its applets, /etc/passwd, /etc/group)
# and DIR/config.json from `berth spec`, made non-interactive and running CMD (default: sh).
# Usage: BERTH=path/to/berth hack/make-rootfs.sh DIR [CMD ARGS...]
set -euo pipefail
dir=${1:?usage: make-rootfs.sh DIR [CMD ARGS...]}
shift
if [ -z "${BERTH:-}" ]; then . "$(dirname "$0")/lib.sh"; BERTH=$(cargo_out release)/berth; fi
berth=$BERTH
[ -x /bin/busybox ] || { echo "make-rootfs: /bin/busybox missing: apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$dir/rootfs"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin,var}
cp /bin/busybox "$dir/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ -e "$dir/rootfs/bin/$applet" ] || ln -s busybox "$dir/rootfs/bin/$applet"
done
chmod 1777 "$dir/rootfs/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$berth" spec --bundle "$dir"
args='["sh"]'
[ $# -gt 0 ] && args=$(printf '%s\n' "$@" | jq -R . | jq -s -c .)
tmp=$(mktemp)
jq --argjson a "$args" '.process.terminal=false | .process.args=$a | .root.readonly=false' "$dir/config.json" > "$tmp"
mv "$tmp" "$dir/config.json"
