#!/usr/bin/env bash
# Starts a private dockerd (data-root, exec-root, pid file and socket under DIR; no iptables, no
# bridge) with berth registered as runtime "berth", loads localhost/busybox:latest, runs COMMAND
# with DOCKER="docker -H unix://DIR/docker.sock", then stops dockerd. The machine's docker state
# is not touched. DOCKERD_CONFIG=FILE starts dockerd with --config-file FILE instead of
# --add-runtime (BERTH then only names the binary).
# Usage: hack/with-docker.sh DIR BERTH -- sh -c '$DOCKER run --rm --runtime berth --network none localhost/busybox:latest echo hi'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(realpath -m "${1:?DIR}"); berth=$(realpath "${2:?BERTH}"); shift 2
[ "${1:-}" = "--" ] && shift
mkdir -p "$dir"
# DOCKERD_CONFIG=FILE: the runtime comes from that daemon.json (an installed one) instead.
if [ -n "${DOCKERD_CONFIG:-}" ]; then runtime=(--config-file "$DOCKERD_CONFIG"); else runtime=(--add-runtime "berth=$berth"); fi
dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
  -H "unix://$dir/docker.sock" --iptables=false --ip6tables=false --bridge=none \
  "${runtime[@]}" > "$dir/dockerd.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
trap cleanup EXIT
export DOCKER="/usr/bin/docker -H unix://$dir/docker.sock"
for _ in $(seq 100); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.2; done
if ! $DOCKER image inspect localhost/busybox:latest >/dev/null 2>&1; then
  "$here/make-busybox-image.sh" "$dir/image" localhost/busybox:latest >/dev/null
  # docker 20.10 loads docker-archives only.
  skopeo copy -q "oci:$dir/image:localhost/busybox:latest" "docker-archive:$dir/busybox.tar:localhost/busybox:latest"
  $DOCKER load -q -i "$dir/busybox.tar" >/dev/null
fi
"$@"
