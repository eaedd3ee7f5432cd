#!/usr/bin/env bash
# Runs a command with podman configured to use berth in a private store (nothing of the
# machine's podman state is touched): CONTAINERS_CONF / CONTAINERS_STORAGE_CONF point into DIR,
# and localhost/busybox:latest is loaded there from busybox-static.
# Usage: hack/with-podman.sh DIR BERTH -- podman run --rm --network none localhost/busybox echo hi
# (--network none keeps the host's network untouched.)
set -euo pipefail
dir=$(realpath -m "${1:?DIR}"); berth=$(realpath "${2:?BERTH}"); shift 2
[ "${1:-}" = "--" ] && shift
mkdir -p "$dir"
cat > "$dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "berth"
runtime_supports_json = ["berth"]
[engine.runtimes]
berth = ["$berth"]
[network]
network_backend = "netavark"
CONF
cat > "$dir/storage.conf" <<CONF
[storage]
driver = "overlay"
runroot = "$dir/run"
graphroot = "$dir/graph"
CONF
export CONTAINERS_CONF=$dir/containers.conf CONTAINERS_STORAGE_CONF=$dir/storage.conf
if ! podman image exists localhost/busybox:latest; then
  "$(dirname "$0")/make-busybox-image.sh" "$dir/image" localhost/busybox:latest >/dev/null
  tar -C "$dir/image" -cf "$dir/busybox.tar" .
  podman load -q -i "$dir/busybox.tar" >/dev/null
fi
exec "$@"
