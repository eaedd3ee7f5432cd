#!/usr/bin/env bash
# Boots a real systemd (Debian bookworm, systemd 252) as PID 1 inside a berth container, for the
# systemd cgroup driver tests, and tears it down again.
#
#   hack/with-systemd.sh up DIR BERTH        boot; DIR/share is /share inside, BERTH is
#                                            /usr/local/bin/berth inside (its directory is
#                                            mounted at /opt/berth); prints the env's id
#   hack/with-systemd.sh exec DIR CMD...     run CMD inside (berth exec), its status is ours
#   hack/with-systemd.sh down DIR            SIGRTMIN+3 to systemd, delete the container,
#                                            unmount and remove DIR
#   hack/with-systemd.sh run DIR BERTH -- CMD...   up, exec CMD, down (always)
#
# The rootfs is made once with debootstrap and cached in $BERTH_TEST_CACHE (default
# /var/cache/berth-test/bookworm); each boot runs on an overlay of it, so the cache stays clean.
# cgroups: the env gets its own cgroup namespace and writable cgroup mounts of the host's layout
# (on this hybrid host: a tmpfs with the v1 controllers plus the cgroup2 "unified" mount), so
# systemd runs in hybrid mode and manages the v1 controllers of its own subtree
# (/berth-systemd-<name> in every hierarchy, removed at the end). /var/lib/containerd is a
# tmpfs (its overlay snapshots cannot sit on the rootfs overlay). With
# BERTH_SYSTEMD_CGROUP=unified the env's /sys/fs/cgroup is a cgroup2 mount only, and systemd
# runs in unified mode (on a hybrid host that cgroup2 has no memory/cpu/pids controllers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${BERTH_TEST_CACHE:-/var/cache/berth-test}
rootfs_cache=$cache/bookworm
# What the rootfs holds (recorded in it; a different list rebuilds it): systemd and D-Bus, runc
# for the benchmark, podman and containerd for the tests of those with the systemd driver.
packages=systemd,systemd-sysv,dbus,runc,procps,podman,conmon,catatonit,netavark,containerd
stamp=$rootfs_cache/.berth-packages

log() { echo "with-systemd: $*" >&2; }

ensure_rootfs() {
  [ "$(cat "$stamp" 2>/dev/null)" = "$packages" ] && return 0
  mkdir -p "$cache"
  # Parallel tests boot at the same time: one builds, the others wait for it.
  exec 9>"$cache/.lock"
  flock 9
  if [ "$(cat "$stamp" 2>/dev/null)" = "$packages" ]; then exec 9>&-; return 0; fi
  . "$here/lib.sh"
  need_packages debootstrap
  local tmp=$cache/bookworm.tmp
  rm -rf "$tmp"
  log "debootstrap bookworm into $rootfs_cache (once; a few minutes)"
  debootstrap --variant=minbase --include="$packages" bookworm "$tmp" >"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2
    rm -rf "$tmp"
    return 1
  }
  # Nothing in the env may try to reach a network or a console.
  rm -f "$tmp"/etc/systemd/system/getty.target.wants/* \
    "$tmp"/etc/systemd/system/multi-user.target.wants/systemd-networkd.service 2>/dev/null || true
  echo "$packages" >"$tmp/.berth-packages"
  rm -rf "$rootfs_cache"
  mv "$tmp" "$rootfs_cache"
  exec 9>&-
}

name_of() { cat "$1/name"; }

write_config() {
  local dir=$1 berth=$2 name=$3
  local caps unified=/sys/fs/cgroup/unified
  # unified mode: the env's own cgroup2 directory (berth makes it before the mounts) as its
  # whole /sys/fs/cgroup.
  [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && unified=/sys/fs/cgroup
  unified=$unified/berth-systemd-$name
  # Every capability in our bounding set (root here lacks CAP_SYS_RESOURCE, for one).
  local bnd i=0 c list=()
  bnd=$((16#$(awk '/^CapBnd/ {print $2}' /proc/self/status)))
  for c in $("$berth" features | jq -r '.linux.capabilities[]'); do
    (( (bnd >> i) & 1 )) && list+=("$c")
    i=$((i + 1))
  done
  caps=$(printf '%s\n' "${list[@]}" | jq -R . | jq -sc .)
  "$berth" spec --bundle "$dir"
  jq --argjson caps "$caps" --arg bindir "$(dirname "$berth")" --arg share "$dir/share" \
     --arg cg "/berth-systemd-$name" --arg mode "${BERTH_SYSTEMD_CGROUP:-host}" --arg unified "$unified" --arg host "sd-$name" '
    .root = {"path": "merged", "readonly": false}
    | .hostname = $host
    | .process.terminal = false
    | .process.args = ["/lib/systemd/systemd", "--log-target=console", "--show-status=no"]
    | .process.env = ["container=other", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    | .process.noNewPrivileges = false
    | .process.capabilities = {"bounding": $caps, "effective": $caps, "permitted": $caps}
    | .process.rlimits = [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]
    | .linux.maskedPaths = [] | .linux.readonlyPaths = []
    | .linux.resources = {}
    | .linux.cgroupsPath = $cg
    | .mounts = [.mounts[] | select(.destination != "/sys/fs/cgroup" and .destination != "/sys")]
      + [{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
         (if $mode == "unified" then
           {"destination": "/sys/fs/cgroup", "type": "bind", "source": $unified, "options": ["rbind", "rw", "nosuid", "noexec", "nodev"]}
         else
           {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "rw"]}
         end),
         {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]},
         {"destination": "/run/lock", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec"]},
         {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]},
         {"destination": "/var/lib/containerd", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]},
         {"destination": "/share", "type": "bind", "source": $share, "options": ["rbind", "rw"]},
         {"destination": "/opt/berth", "type": "bind", "source": $bindir, "options": ["rbind", "ro"]}]
  ' "$dir/config.json" >"$dir/config.json.new"
  mv "$dir/config.json.new" "$dir/config.json"
}

up() {
  local dir berth name
  dir=$(realpath -m "${1:?DIR}"); berth=$(realpath "${2:?BERTH}")
  command -v jq >/dev/null || { . "$here/lib.sh"; need_packages jq; }
  ensure_rootfs
  name=$(basename "$dir" | tr -c 'a-zA-Z0-9\n' '-')$$
  [ -e "$dir/name" ] && { log "$dir is in use: run 'with-systemd.sh down $dir' first"; return 1; }
  mkdir -p "$dir"/{upper,work,merged,share,state}
  echo "$name" >"$dir/name"
  echo "$berth" >"$dir/berth"
  mount -t overlay overlay -o "lowerdir=$rootfs_cache,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"
  # podman's own units cannot work in here (no network); keep them from failing the boot.
  rm -f "$dir"/merged/etc/systemd/system/*.wants/podman*
  # The binary's directory is mounted, not the file, so a rebuilt binary is seen at once.
  ln -sf "/opt/berth/$(basename "$berth")" "$dir/merged/usr/local/bin/berth"
  write_config "$dir" "$berth" "$name"
  "$berth" --root "$dir/state" run -d -b "$dir" "$name" </dev/null >"$dir/console.log" 2>&1 || {
    log "booting systemd failed:"; cat "$dir/console.log" >&2; return 1; }
  # Wait until systemd has finished booting (degraded is fine: some units do not apply here).
  local s=""
  for _ in $(seq 1 300); do
    s=$("$berth" --root "$dir/state" exec "$name" systemctl is-system-running 2>/dev/null || true)
    case "$s" in running|degraded) break ;; esac
    sleep 0.2
  done
  case "$s" in
    running|degraded) ;;
    *) log "systemd did not finish booting (state: ${s:-none}); console:"; tail -30 "$dir/console.log" >&2; return 1 ;;
  esac
  echo "$name"
}

exec_in() {
  local dir; dir=$(realpath -m "${1:?DIR}"); shift
  "$(cat "$dir/berth")" \
    --root "$dir/state" exec "$(name_of "$dir")" "$@"
}

down() {
  local dir name berth pid
  dir=$(realpath -m "${1:?DIR}")
  [ -d "$dir" ] || return 0
  if [ -f "$dir/berth" ] && [ -f "$dir/name" ]; then
    name=$(name_of "$dir")
    berth=$(cat "$dir/berth")
    pid=$("$berth" --root "$dir/state" state "$name" 2>/dev/null | jq -r '.pid // 0' || echo 0)
    if [ "${pid:-0}" -gt 0 ]; then
      # systemd's "halt" request for containers; it exits once everything is stopped.
      kill -s RTMIN+3 "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    "$berth" --root "$dir/state" delete -f "$name" >/dev/null 2>&1 || true
    # What systemd made below the env's cgroup and left at exit (deepest first); the env's
    # own directory was made by berth and went with the delete, or goes now.
    local d
    for d in /sys/fs/cgroup/*/"berth-systemd-$name" /sys/fs/cgroup/"berth-systemd-$name"; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  fi
  while mountpoint -q "$dir/merged"; do
    umount "$dir/merged" || { log "cannot unmount $dir/merged: leaving $dir in place"; return 1; }
  done
  rm -rf "$dir"
}

cmd=${1:?usage: with-systemd.sh up|exec|down|run ...}; shift
case "$cmd" in
  up) up "$@" ;;
  exec) exec_in "$@" ;;
  down) down "$@" ;;
  run)
    dir=${1:?DIR}; berth=${2:?BERTH}; shift 2
    [ "${1:-}" = "--" ] && shift
    trap 'down "$dir"' EXIT
    up "$dir" "$berth" >/dev/null
    exec_in "$dir" "$@"
    ;;
  *) echo "with-systemd.sh: unknown command $cmd" >&2; exit 2 ;;
esac
