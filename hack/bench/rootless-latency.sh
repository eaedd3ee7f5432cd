#!/usr/bin/env bash
# Rootless `run` latency of /bin/true: berth vs runc, both as the same unprivileged uid on the
# same bundle (written by `berth spec --rootless`), alternating in one run (hack/bench/latency.py).
# Neither gets a cgroup (nothing is delegated to the uid on this machine); each command's stdio
# goes to a file the uid owns (runc's rootless mode chowns its stdio otherwise).
# Usage: hack/bench/rootless-latency.sh [RUNS]   (prints markdown; docs/benchmarks.md records it)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-100}
uid=${BENCH_UID:-47021}
. hack/lib.sh
need_packages busybox-static jq runc util-linux
cargo build --release -p berth >&2
berth=$(cargo_out release)/berth
work=$(mktemp -d /tmp/berth-rootless-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
BERTH=$berth hack/make-rootfs.sh "$work/bundle" /bin/true >/dev/null
mkdir -p "$work/xdg" "$work/root-berth" "$work/root-runc"
chown -R "$uid:$uid" "$work"
as_user() {
  setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_RUNTIME_DIR="$work/xdg" "$@"
}
# The rootless spec as berth writes it, running /bin/true.
(cd "$work/bundle" && rm -f config.json && as_user "$berth" spec --rootless)
as_user sh -c "jq '.process.terminal=false | .process.args=[\"/bin/true\"]' $work/bundle/config.json > $work/c && mv $work/c $work/bundle/config.json"
b=$work/bundle
cmd() { # NAME BINARY -> a command line running BINARY's `run` as the uid, stdio on a file
  echo "setpriv --reuid=$uid --regid=$uid --clear-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_RUNTIME_DIR=$work/xdg sh -c 'exec $2 --root $work/root-$1 run -b $b bench-$1 </dev/null >$work/out-$1 2>&1'"
}
echo "### rootless run latency (uid $uid, no cgroups, $(uname -r))"
echo
python3 hack/bench/latency.py --runs "$runs" --label "rootless run /bin/true" -- \
  berth "$(cmd berth "$berth")" \
  runc "$(cmd runc "$(command -v runc)")"
