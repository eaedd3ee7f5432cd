# Shared shell helpers for hack/ scripts (source it).

# need_packages PKG...: installs the Debian packages that are missing (one apt-get call).
need_packages() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# cargo_out PROFILE: the directory cargo writes PROFILE's (debug, release) binaries to. The build
# targets the host triple explicitly (.cargo/config.toml: static-pie binaries), so that is
# target/<triple>/PROFILE.
cargo_out() {
  local top
  top=${CARGO_TARGET_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target}
  echo "$top/$(rustc -vV | sed -n 's/^host: //p')/$1"
}

# write_section NAME FILE: puts FILE between <!-- bench:NAME:start --> and <!-- bench:NAME:end -->
# in docs/benchmarks.md, replacing what was there (the block is appended when missing).
write_section() {
  local top
  top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  python3 "$top/hack/bench/all.py" splice --marker "$1" "$top/docs/benchmarks.md" "$2"
  echo "wrote docs/benchmarks.md (bench:$1)" >&2
}

# timed NAME KEEP CMD...: for the build benchmarks. Runs CMD with its output in $work/log (shown,
# and the script ended, when it fails); with KEEP=1 its wall time in ms is appended to
# $work/times/NAME.
timed() { # NAME KEEP CMD...
  local name=$1 keep=$2 t0 t1
  shift 2
  t0=$EPOCHREALTIME
  if ! "$@" >"$work/log" 2>&1; then
    echo "$name failed: $*" >&2
    cat "$work/log" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  [ "$keep" = 1 ] && awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }' >>"$work/times/$name"
  true
}

# bench_args DEFAULT_ROUNDS ARGS...: the benchmark scripts' `[--write] [ROUNDS]`; sets `write`
# (0 or 1) and `rounds` (DEFAULT_ROUNDS unless given), or ends the script with its usage.
bench_args() {
  rounds=$1
  write=0
  shift
  local a
  for a in "$@"; do
    case $a in
      --write) write=1 ;;
      [0-9]*) rounds=$a ;;
      *) echo "usage: $0 [--write] [ROUNDS]" >&2; exit 2 ;;
    esac
  done
}
