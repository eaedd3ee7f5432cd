#!/usr/bin/env bash
# End-to-end test of the README's install command, as a new user runs it (as root): installs
# into a temporary prefix with hack/install.sh, then checks, using only the installed files:
#   - `berth --version` / `berth-build --version` name this commit (runc's shape for berth);
#   - `man berth`, and a man page for every command and subcommand of berth and berth-build;
#   - completion of `berth <TAB>` in bash (bash-completion's loader finds the installed
#     script), fish (`complete -C`) and zsh (compinit picks up _berth for berth);
#   - containerd: `ctr run --runtime io.containerd.berth.v2` with the installed shim on
#     containerd's PATH, and the CRI scenario of shim/tests/cri.rs with the installed runtime
#     table and the handler of the installed RuntimeClass manifest;
#   - podman: the installed containers.conf.d drop-in in /etc/containers (a private copy bind-
#     mounted in a mount namespace of the test's own), `podman --runtime berth run`;
#   - docker: dockerd --config-file with the installed daemon.json, `docker run --runtime berth`;
#   - --uninstall removes every installed file.
# Nothing of the machine's containerd, podman or docker state is touched.
# Usage: hack/test-install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
. hack/lib.sh
need_packages man-db bash-completion zsh fish busybox-static jq skopeo podman containerd docker.io \
  containernetworking-plugins protobuf-compiler
work=$(mktemp -d /tmp/berth-test-install-XXXXXX)
prefix=$work/prefix
cleanup() {
  for m in $(awk -v d="$work/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-install.sh: FAIL: $*" >&2; exit 1; }
pass() { echo "test-install.sh: ok: $*" >&2; }

bash hack/install.sh --prefix "$prefix"
export PATH=$prefix/bin:$PATH
commit=$(git rev-parse HEAD)

# --version
v=$(berth --version)
[ "$(sed -n 1p <<< "$v")" = "berth version $(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)" ] || fail "berth --version: $v"
[ "$(sed -n 2p <<< "$v")" = "commit: $commit" ] || fail "berth --version commit: $v"
sed -n 3p <<< "$v" | grep -q '^spec: 1\.' || fail "berth --version spec: $v"
berth-build --version | grep -qx "berth-build .* (commit $commit)" || fail "berth-build --version: $(berth-build --version)"
pass "--version names commit $commit"

# man pages: the prefix's man directory is found from PATH (man-db maps PREFIX/bin to
# PREFIX/share/man), as for /usr/local.
man -w berth | grep -qx "$prefix/share/man/man1/berth.1" || fail "man -w berth: $(man -w berth 2>&1)"
MANWIDTH=80 man berth 2>/dev/null | grep -q "runc-compatible" || fail "man berth does not render"
for bin in berth berth-build; do
  for sub in $("$bin" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}'); do
    [ "$sub" = help ] && continue
    man -w "$bin-$sub" >/dev/null 2>&1 || fail "no man page for $bin $sub"
    MANWIDTH=80 man "$bin-$sub" 2>/dev/null | grep -q "$bin-$sub" || fail "man $bin-$sub does not render"
  done
done
pass "man pages for every command and subcommand"

# bash: bash-completion loads PREFIX/share/bash-completion/completions/berth on first use
# (PREFIX/share in XDG_DATA_DIRS, as /usr/local/share is by default), then `berth cr<TAB>`
# and `berth <TAB>`.
got=$(XDG_DATA_DIRS=$prefix/share:/usr/local/share:/usr/share bash -c '
  source /usr/share/bash-completion/bash_completion
  __load_completion berth || exit 1
  f=$(complete -p berth | sed "s/.*-F \([^ ]*\).*/\1/")
  COMP_WORDS=(berth cr); COMP_CWORD=1; COMP_LINE="berth cr"; COMP_POINT=${#COMP_LINE}
  "$f" berth cr berth; echo "${COMPREPLY[*]}"
  COMP_WORDS=(berth ""); COMP_CWORD=1; COMP_LINE="berth "; COMP_POINT=${#COMP_LINE}
  "$f" berth "" berth; echo "${COMPREPLY[*]}"')
sed -n 1p <<< "$got" | grep -qw create || fail "bash: berth cr<TAB> gave: $got"
sed -n 2p <<< "$got" | grep -qw features || fail "bash: berth <TAB> gave: $got"
pass "bash completion"
# (Not --no-config: it leaves fish without any completion path. An empty HOME keeps the
# caller's own fish config out.)
mkdir -p "$work/home"
got=$(HOME=$work/home XDG_DATA_DIRS=$prefix/share:/usr/share fish -c 'complete -C "berth cr"; complete -C "berth-build bu"')
grep -q '^create' <<< "$got" || fail "fish: berth cr<TAB> gave: $got"
grep -q '^build' <<< "$got" || fail "fish: berth-build bu<TAB> gave: $got"
pass "fish completion"
got=$(zsh -f -c "fpath=($prefix/share/zsh/site-functions \$fpath); autoload -Uz compinit; compinit -u -d $work/zcompdump; print -r -- \$_comps[berth] \$_comps[berth-build]; whence -v _berth")
grep -q "^_berth _berth-build" <<< "$got" || fail "zsh: $got"
grep -q "$prefix/share/zsh/site-functions/_berth" <<< "$got" || fail "zsh: _berth not from the prefix: $got"
pass "zsh completion"

# containerd: the shim on containerd's PATH (ctr), then the CRI with the installed table.
ns=$(basename "$work")
out=$(SHIM_DIR=$prefix/bin CONTAINERD_NAMESPACE=$ns hack/with-containerd.sh "$work/containerd" -- \
  sh -c '$CTR run --rm --runtime io.containerd.berth.v2 localhost/busybox:latest "$0" echo hi-from-installed-shim' "$ns")
[ "$out" = hi-from-installed-shim ] || fail "ctr run with the installed shim: $out"
for base in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do rmdir "$base$ns" 2>/dev/null || true; done
rm -rf "/run/containerd/berth/$ns"
pass "containerd (ctr) with the installed shim"
BERTH_INSTALLED_PREFIX=$prefix cargo test -q -p containerd-shim-berth-v2 --test cri cri_pods_on_installed_berth -- --exact --nocapture 2>&1 | tail -5
pass "containerd CRI with the installed runtime table and RuntimeClass handler"

# podman: a private /etc/containers holding the machine's files, this machine's settings
# (with-podman.sh's containers.conf without its runtime registration: MACHINE-NOTES.md's
# ulimits, cgroupfs, file events) and the installed drop-in as a user copies it; podman runs
# in a mount namespace of its own with that copy on /etc/containers and no CONTAINERS_CONF.
etc=$work/etc-containers
cp -a /etc/containers "$etc"
mkdir -p "$etc/containers.conf.d"
cp "$prefix/share/berth/podman/berth.conf" "$etc/containers.conf.d/50-berth.conf"
out=$(hack/with-podman.sh "$work/podman" "$prefix/bin/berth" -- \
  unshare -m --propagation private sh -c '
    awk "/^\[engine.runtimes\]/ {skip = 1; next} /^\[/ {skip = 0} !skip && !/^runtime(_supports_json)? =/" \
      "$CONTAINERS_CONF" > "$0/containers.conf"
    mount --bind "$0" /etc/containers && unset CONTAINERS_CONF &&
    podman info --format "{{.Host.OCIRuntime.Path}}" --runtime berth &&
    podman --runtime berth run --rm --network none --pull=never localhost/busybox:latest echo hi-from-podman' "$etc")
podman_cleanup() {
  CONTAINERS_CONF=/dev/null CONTAINERS_STORAGE_CONF=$work/podman/storage.conf podman system reset --force >/dev/null 2>&1 || true
}
[ "$(sed -n 1p <<< "$out")" = "$prefix/bin/berth" ] || { podman_cleanup; fail "podman's runtime berth: $out"; }
[ "$(sed -n 2p <<< "$out")" = hi-from-podman ] || { podman_cleanup; fail "podman run: $out"; }
podman_cleanup
pass "podman with the installed containers.conf.d drop-in"

# docker: dockerd reads the installed daemon.json.
out=$(DOCKERD_CONFIG=$prefix/share/berth/docker/daemon.json hack/with-docker.sh "$work/docker" "$prefix/bin/berth" -- \
  sh -c '$DOCKER info --format "{{json .Runtimes.berth}}" && $DOCKER run --rm --runtime berth --network none localhost/busybox:latest echo hi-from-docker')
grep -q "\"$prefix/bin/berth\"" <<< "$(sed -n 1p <<< "$out")" || fail "docker's runtime berth: $out"
[ "$(sed -n 2p <<< "$out")" = hi-from-docker ] || fail "docker run: $out"
pass "docker with the installed daemon.json"

bash hack/install.sh --prefix "$prefix" --uninstall
left=$(find "$prefix" -type f)
[ -z "$left" ] || fail "left after --uninstall: $left"
pass "--uninstall removes every installed file"
echo "test-install.sh: all passed" >&2
