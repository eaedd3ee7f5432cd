#!/usr/bin/env bash
# Builds and installs berth, berth-build and containerd-shim-berth-v2 (the binaries
# docs/benchmarks.md measures, built by hack/stage.sh), their man pages, bash/zsh/fish
# completions and the caller configs for containerd, Kubernetes, podman and docker under
# PREFIX/share/berth/ (README, "Install"). Every installed file is listed in
# PREFIX/share/berth/installed-files; --uninstall removes exactly those.
# Usage: bash hack/install.sh [--prefix DIR] [--destdir DIR] [--uninstall]
#   --prefix DIR   where it is installed (default /usr/local)
#   --destdir DIR  stage under DIR/PREFIX (for packaging); the configs still name PREFIX
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n 's/^# Usage: //p; s/^#   //p' "$here/install.sh" >&2; exit 2; }
prefix=/usr/local destdir="" uninstall=0
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --destdir) [ $# -ge 2 ] || usage; destdir=$2; shift 2 ;;
    --destdir=*) destdir=${1#--destdir=}; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown argument: $1" >&2; usage ;;
  esac
done
case $prefix in /*) ;; *) echo "install.sh: --prefix must be an absolute path: $prefix" >&2; exit 2 ;; esac
prefix=${prefix%/}
root=$destdir$prefix
manifest=$root/share/berth/installed-files

if [ $uninstall = 1 ]; then
  [ -f "$manifest" ] || { echo "install.sh: nothing to uninstall: $manifest does not exist" >&2; exit 1; }
  while IFS= read -r f; do
    case /$f/ in
      *"/../"*|//*) echo "install.sh: $manifest: refusing to remove $f" >&2; exit 1 ;;
    esac
    rm -f "$root/$f"
  done < "$manifest"
  rm -f "$manifest"
  # berth's own directories go with their files; shared ones (bin, share/man/man1) stay.
  for d in "$root"/share/berth/*/ "$root/share/berth"; do
    if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || echo "install.sh: kept $d: not empty" >&2; fi
  done
  echo "uninstalled berth from $root" >&2
  exit 0
fi

stage=$(mktemp -d /tmp/berth-install-XXXXXX)
trap 'rm -rf "$stage"' EXIT
bash "$here/stage.sh" "$stage" "$prefix"
# The manifest itself is listed too, so that --uninstall leaves nothing behind.
(cd "$stage" && find . -type f | sed 's|^\./||' | sort && echo share/berth/installed-files) > "$stage/manifest"
# Files an earlier install put there that this one no longer has go first.
if [ -f "$manifest" ]; then
  { grep -vxF -f "$stage/manifest" "$manifest" || true; } | while IFS= read -r f; do
    case /$f/ in *"/../"*|//*) continue ;; esac
    rm -f "$root/$f"
  done
fi
while IFS= read -r f; do
  [ "$f" = share/berth/installed-files ] && continue
  install -D -m "$(stat -c %a "$stage/$f")" "$stage/$f" "$root/$f"
done < "$stage/manifest"
install -D -m 0644 "$stage/manifest" "$manifest"
echo "installed berth into $root ($(wc -l < "$manifest") files, listed in $manifest)" >&2
