#!/usr/bin/env bash
# All runtime benchmarks in one run: berth vs runc vs crun, alternating round-robin.
#   - `run` of /bin/true (latency) and the max RSS of the runtime process doing it
#   - `exec /bin/true` into a running container (latency)
#   - COUNT containers: COUNT concurrent `create`, then COUNT concurrent `start`, then COUNT
#     concurrent `delete -f` (wall times), with the peak memory of that cycle
#   - binary size
# Part 1 on the host's hybrid cgroups (berth, runc; crun 1.8 refuses hybrid mode). Part 2 inside a
# private mount namespace whose /sys/fs/cgroup is a pure cgroup2 mount (berth, runc, and crun with
# --cgroup-manager=disabled). The measuring is done by hack/bench/all.py (see its docstring).
#
# Usage: hack/bench/all.sh [--write]
#   without --write: prints the markdown section; with --write: replaces the section between
#   <!-- bench:all:start --> and <!-- bench:all:end --> in docs/benchmarks.md (appends it if missing).
# Knobs (environment): RUNS=100 (run and exec per runtime), RSS_RUNS=20, ROUNDS=5 (of COUNT
# containers), COUNT=100. Defaults take about 2-4 minutes on the 2-vCPU VM (plus the build).
# COUNT=500 and COUNT=1000 get sections of their own (bench:all-500, bench:all-1000); 1000 needs
# about 2000 processes at once for runc (pid_max 32768 here) and stays under the 20000 open-files
# hard limit (the harness holds about 3 descriptors per container while they start). The 1000
# run: RUNS=30 RSS_RUNS=10 ROUNDS=2 COUNT=1000, about 7 minutes.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
write=0
for arg in "$@"; do
  case $arg in
    --write) write=1 ;;
    -h|--help) sed -n '2,16p' "$self"; exit 0 ;;
    *) echo "all.sh: unknown argument $arg (only --write)" >&2; exit 2 ;;
  esac
done
RUNS=${RUNS:-100} RSS_RUNS=${RSS_RUNS:-20} ROUNDS=${ROUNDS:-5} COUNT=${COUNT:-100}
for v in RUNS RSS_RUNS ROUNDS COUNT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "all.sh: $v must be a positive integer" >&2; exit 2; }
done

. hack/lib.sh
need_packages busybox-static jq runc crun time
# Others may be mid-edit in runtime/: retry the build a few times before giving up.
for try in 1 2 3 4; do
  cargo build --release -p berth >&2 && break
  [ $try = 4 ] && { echo "all.sh: cargo build --release -p berth keeps failing" >&2; exit 1; }
  echo "all.sh: build failed, retrying in 60 s" >&2; sleep 60
done
berth=$(cargo_out release)/berth
runc=$(command -v runc)
crun=$(command -v crun)
started=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

work=$(mktemp -d /tmp/berth-bench-all-XXXXXX)
tag=$(basename "$work")            # unique: names the cgroup parent in every hierarchy
memcg=/sys/fs/cgroup/memory/$tag   # the harness's own memory cgroups (see all.py)
child=

# The same private pure-cgroup2 mount namespace run-latency.sh uses (a command prefix).
in_cgroup2_ns=(unshare -m --propagation private sh -c
  'umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' sh)
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

cleanup() {
  set +e
  trap - INT TERM
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi
  # containers all.py may have left behind (it deletes its own unless killed hard)
  for rt in berth runc; do
    root=$work/root-host-$rt
    [ -d "$root" ] && for id in $(ls "$root"); do
      [ $rt = berth ] && "$berth" --root "$root" delete -f "$id" >/dev/null 2>&1
      [ $rt = runc ] && runc --root "$root" delete -f "$id" >/dev/null 2>&1
    done
  done
  if [ -n "$(ls "$work"/root-ns-* 2>/dev/null)" ]; then
    "${in_cgroup2_ns[@]}" bash -c '
      w=$1 berth=$2
      for id in $(ls "$w/root-ns-berth" 2>/dev/null); do "$berth" --root "$w/root-ns-berth" delete -f "$id"; done
      for id in $(ls "$w/root-ns-runc" 2>/dev/null); do runc --root "$w/root-ns-runc" delete -f "$id"; done
      for id in $(ls "$w/root-ns-crun" 2>/dev/null); do crun --cgroup-manager=disabled --root "$w/root-ns-crun" delete -f "$id"; done
      true' sh "$work" "$berth" >/dev/null 2>&1
  fi
  # last resort: processes still in cgroups under our own parent were all started by this run
  for d in /sys/fs/cgroup/*/"$tag"; do
    [ -d "$d" ] || continue
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r pid; do
      [ "$pid" != $$ ] && kill -KILL "$pid" 2>/dev/null
    done
  done
  for i in 1 2 3 4 5; do
    left=0
    for d in /sys/fs/cgroup/*/"$tag"; do
      [ -d "$d" ] || continue
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
      [ -d "$d" ] && left=1
    done
    [ $left = 0 ] && break
    sleep 0.5
  done
  [ $left = 1 ] && echo "all.sh: could not remove /sys/fs/cgroup/*/$tag" >&2
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and waits, so a signal reaches the trap (which then stops it
# with SIGTERM and lets all.py delete its containers) instead of waiting for the whole benchmark.
bg() {
  "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=
  return $rc
}

mkdir "$memcg"
BERTH=$berth hack/make-rootfs.sh "$work/bundle" /bin/true
common=(--work "$work" --rootfs "$work/bundle/rootfs" --config "$work/bundle/config.json"
        --cg-parent "/$tag" --memcg-fd 9 --runs "$RUNS" --rss-runs "$RSS_RUNS" --rounds "$ROUNDS" --count "$COUNT")

bg "$py" hack/bench/all.py measure --env host \
  --title "hybrid cgroups (host): berth, runc" "${common[@]}" -- \
  berth "$berth --root $work/root-host-berth" \
  runc "$runc --root $work/root-host-runc" 9<"$memcg" > "$work/host.md"
bg "${in_cgroup2_ns[@]}" "$py" hack/bench/all.py measure --env ns \
  --title "private cgroup2 mount namespace: berth, runc, crun (--cgroup-manager=disabled)" "${common[@]}" -- \
  berth "$berth --root $work/root-ns-berth" \
  runc "$runc --root $work/root-ns-runc" \
  crun "$crun --cgroup-manager=disabled --root $work/root-ns-crun" 9<"$memcg" > "$work/ns.md"

# --- the markdown section ----------------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
libs_size() {  # bytes of the shared libraries the binary loads, other than glibc itself
  local total=0 f
  for f in $(ldd "$1" | awk '/=>/ { print $3 }'); do
    case $(basename "$f") in libc.so.*|ld-linux*) continue ;; esac
    total=$((total + $(stat -L -c %s "$f")))
  done
  echo $total
}
bsize=$(stat -c %s "$berth")
blibs=$(libs_size "$berth")
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cmd="RUNS=$RUNS RSS_RUNS=$RSS_RUNS ROUNDS=$ROUNDS COUNT=$COUNT bash hack/bench/all.sh --write"
elapsed=$(( $(date +%s) - started ))
{
  echo "## All benchmarks: run, exec, $COUNT containers in parallel, memory, binary size"
  echo
  echo "Command: \`$cmd\` (generated; edit hack/bench/all.sh, not this section)."
  echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC'), took ${elapsed} s."
  echo
  echo "Machine: Debian $(cat /etc/debian_version), kernel $(uname -r), $(nproc) CPUs ($cpu), $mem RAM,"
  echo "hybrid cgroups (v1 controllers + cgroup2 at /sys/fs/cgroup/unified). The machine is shared"
  echo "(other builds may run): load average $load_start (1, 5, 15 min) at the start; the parallel"
  echo "rounds raise it themselves. Absolute numbers are noisy; the runtimes alternate in every"
  echo "round, so the ratios are fairer."
  echo
  echo "| runtime | version | binary | size MiB | + shared libs other than glibc, MiB |"
  echo "|---|---|---|---:|---:|"
  for rt in berth runc crun; do
    case $rt in
      berth) bin=$berth; show=target/.../release/berth; ver=$("$berth" --version | head -1) ;;
      runc) bin=$runc; show=$runc; ver=$(runc --version | head -1) ;;
      crun) bin=$crun; show=$crun; ver=$(crun --version | head -1) ;;
    esac
    size=$(stat -c %s "$bin"); libs=$(libs_size "$bin")
    ratio=$(awk -v a="$size" -v b="$bsize" 'BEGIN { printf "%.2f", a / b }')
    ratio2=$(awk -v a="$((size + libs))" -v b="$((bsize + blibs))" 'BEGIN { printf "%.2f", a / b }')
    if [ $rt = berth ]; then
      echo "| $rt | $ver | \`$show\` | $(mib "$size") | $(mib $((size + libs))) |"
    else
      echo "| $rt | $ver | \`$show\` | $(mib "$size") (${ratio}x) | $(mib $((size + libs))) (${ratio2}x) |"
    fi
  done
  echo
  echo "berth is a static-pie (.cargo/config.toml): its size includes the parts of glibc it uses;"
  echo "runc and crun are dynamic: their sizes above leave out libc.so.6."
  echo
  cat "$work/host.md" "$work/ns.md"
  cat <<'EOF'
How it is measured (hack/bench/all.py):
- Every runtime gets its own state root; all use one busybox rootfs and a `berth spec` config
  (ociVersion 1.0.2, which crun 1.8 requires; terminal off; pid, net, ipc, uts, mount and cgroup
  namespaces) and a cgroupsPath under one parent per run, `/berth-bench-all-*`, removed at the end.
- Ratios are the runtime's median divided by berth's: above 1.00x means berth is faster or smaller.
- Parallel containers: all `create` processes are spawned at once, then all `start` (of those
  created), then all `delete -f`. A container failed if its `create` or `start` failed or its
  init had not exec'd `sleep` after `start` (checked after the clock stops); failures are counted
  in the table and their messages given under it. A round with more than 10% failures or a failed
  `delete` is not a measurement: it is cleaned up and repeated (at most 3 attempts), and reported.
  The containers' cgroups share a parent made by the harness beforehand (as a pod's or a slice's
  parent exists). The order of the runtimes rotates between rounds.
- Peak memory: the harness moves itself into a fresh cgroup-v1 memory cgroup for each round, so
  every runtime process it spawns, and all they fork, is charged there or to the containers' own
  cgroups, which are its children (on cgroup2 the containers stay in it, as memory is a v1
  controller here). `memory.max_usage_in_bytes` is the kernel's exact high-water mark of the sum:
  anonymous memory, page tables, kernel memory for namespaces and cgroups, memfds and state files;
  no sampling, and a shared page counts once. File pages already cached before the round (the
  runtime binaries and libraries, after the warm-up) belong to whoever read them first and are
  not in it. It includes the sleeping busybox containers (the same for every runtime) and a
  little of the harness itself. Between rounds the harness waits in a cgroup of its own under the
  same parent, so it never writes to a cgroup it did not create.
- Max RSS: `/usr/bin/time -f %M` (wait4) on `run` /bin/true: the largest single process among the
  runtime and the children it reaped (runc init; the container's first process before its exec).
  /usr/bin/time is used rather than Python because a child's max RSS includes the memory of the
  process it was forked from; the floor line above is that overhead.
- crun runs only in the cgroup2 namespace and there creates no cgroup at all, while berth and runc
  create, join and remove one per container: those comparisons favour crun.
EOF
} > "$work/section.md"

if [ $write = 1 ]; then
  # COUNT=100 is the main section; other counts (the 500-container run) get their own.
  marker=all
  [ "$COUNT" = 100 ] || marker=all-$COUNT
  write_section "$marker" "$work/section.md"
else
  cat "$work/section.md"
fi
