#!/usr/bin/env bash
# Runs a command as an unprivileged user with rootless podman configured to use berth: a
# private store, CONTAINERS_CONF and XDG_RUNTIME_DIR in DIR (owned by the user), and
# localhost/busybox:latest loaded there. The user needs /etc/subuid and /etc/subgid ranges
# (podman maps them with newuidmap). slirp4netns gives the container its network; it needs
# /dev/net/tun, which this runs with in a private mount namespace where the node is 0666
# (some machines ship it 0600), so nothing of the host changes.
# Usage (as root): hack/with-podman-rootless.sh UID DIR BERTH -- podman run --rm localhost/busybox echo hi
# The rootless podman pause process is stopped when the command returns.
set -euo pipefail
uid=${1:?UID}; dir=$(realpath -m "${2:?DIR}"); berth=$(realpath "${3:?BERTH}"); shift 3
[ "${1:-}" = "--" ] && shift
mkdir -p "$dir/home" "$dir/xdg"
chmod 755 "$dir"; chmod 700 "$dir/xdg"
# The user must reach the runtime binary: a copy it can execute.
install -m 755 "$berth" "$dir/berth"
cat > "$dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "berth"
runtime_supports_json = ["berth"]
[engine.runtimes]
berth = ["$dir/berth"]
CONF
cat > "$dir/storage.conf" <<CONF
[storage]
driver = "overlay"
runroot = "$dir/run"
graphroot = "$dir/graph"
CONF
if [ ! -f "$dir/busybox.tar" ]; then
  "$(dirname "$0")/make-busybox-image.sh" "$dir/image" localhost/busybox:latest >/dev/null
  tar -C "$dir/image" -cf "$dir/busybox.tar" .
fi
chown -R "$uid:$uid" "$dir"
as_user=(setpriv --reuid="$uid" --regid="$uid" --init-groups env -i HOME="$dir/home"
  XDG_RUNTIME_DIR="$dir/xdg" PATH=/usr/sbin:/usr/bin:/sbin:/bin
  CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf")
stop_pause() {
  local p
  p=$(cat "$dir/xdg/libpod/tmp/pause.pid" 2>/dev/null || true)
  [ -n "$p" ] && kill "$p" 2>/dev/null || true
}
trap stop_pause EXIT
tun=$dir/tun
[ -e "$tun" ] || mknod -m 666 "$tun" c 10 200
unshare -m --propagation private sh -c '
  [ -e /dev/net/tun ] && mount --bind "$0" /dev/net/tun
  "$@"' "$tun" "${as_user[@]}" sh -c '
  podman image exists localhost/busybox:latest || podman load -q -i "$0/busybox.tar" >/dev/null
  exec "$@"' "$dir" "$@"
