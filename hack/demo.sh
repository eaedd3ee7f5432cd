#!/usr/bin/env bash
# The README's main job: build the example Dockerfile (examples/hello) into an OCI image with
# berth-build, unpack it into a runtime bundle and run it with berth.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh
need_packages busybox-static jq
cargo build --release -p berth -p berth-build
bin=$PWD/target/release
work=$(mktemp -d /tmp/berth-demo-XXXXXX)
base=/tmp/berth-demo-base
trap 'rm -rf "$work" "$base"' EXIT
# No registry is reachable: the base image is made locally from busybox-static.
rm -rf "$base"
hack/make-busybox-image.sh "$base" localhost/busybox:latest >/dev/null
echo "+ berth-build build -t demo:latest examples/hello"
"$bin/berth-build" --root "$work/store" build --build-arg BASE="oci:$base:latest" -t demo:latest \
  -o "type=oci,dest=$work/image" examples/hello
echo "+ berth-build unpack demo:latest $work/bundle"
"$bin/berth-build" --root "$work/store" unpack demo:latest "$work/bundle"
jq '.hostname="berth-demo" | .process.terminal=false' "$work/bundle/config.json" > "$work/c" && mv "$work/c" "$work/bundle/config.json"
echo "+ berth run -b $work/bundle demo"
"$bin/berth" --root "$work/state" run -b "$work/bundle" "demo-$$"
echo "exit status: $?"
