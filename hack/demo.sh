#!/usr/bin/env bash
# The README's main job: the whole workflow with berth's own binaries on a fresh machine.
#   1. share: a local registry (hack/with-registry.sh); the busybox base (made locally from
#      busybox-static) is loaded and pushed with berth-build
#   2. build examples/hello FROM the registry image, push it, pull it into a fresh store
#   3. run it with berth (bundle from `berth-build unpack --overlay`)
#   4. a long-running container: berth exec, its output and exit status, berth ps/state
#   5. two containers, each in a network namespace on one bridge (CNI bridge + host-local from
#      containernetworking-plugins; names through the bundles' /etc/hosts): busybox httpd in
#      one, the other fetches the page by IP and by name
# Everything it creates (containers, namespaces, bridge, registry, mounts, files) is removed at
# the end, also when a step fails. Traffic stays on the private bridge (no gateway, no NAT).
# BERTH_DEMO_BIN=DIR uses binaries built elsewhere (default: cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh
need_packages busybox-static jq docker-registry apache2-utils openssl containernetworking-plugins iproute2
if [ -n "${BERTH_DEMO_BIN:-}" ]; then
  bin=$(realpath "$BERTH_DEMO_BIN")
else
  cargo build --release -p berth -p berth-build
  bin=$(cargo_out release)
fi
cni=/usr/lib/cni
work=$(mktemp -d /tmp/berth-demo-XXXXXX)
id=$$
state=$work/state
bb() { "$bin/berth-build" --root "$work/store" "$@"; }
bb2() { "$bin/berth-build" --root "$work/store2" "$@"; }
berth() { "$bin/berth" --root "$state" "$@"; }
step() { printf '\n== %s\n' "$*"; }
show() { printf '+ %s\n' "$*" >&2; "$@"; }

bridge=bdemo$((id % 100000))
netns_a=berth-demo-web-$id netns_b=berth-demo-client-$id
cleanup() {
  set +e
  for c in long-$id web-$id client-$id hello-$id; do
    berth delete -f "$c" >/dev/null 2>&1
  done
  for n in "$netns_a:web" "$netns_b:client"; do
    ns=${n%%:*}; c=${n##*:}
    if [ -e "/var/run/netns/$ns" ]; then
      CNI_COMMAND=DEL CNI_CONTAINERID="$c-$id" CNI_NETNS="/var/run/netns/$ns" CNI_IFNAME=eth0 \
        CNI_PATH=$cni "$cni/bridge" <"$work/net.json" >/dev/null 2>&1
      ip netns del "$ns"
    fi
  done
  ip link del "$bridge" >/dev/null 2>&1
  for b in "$work"/bundle-*; do
    [ -d "$b" ] && "$bin/berth-build" --root "$work/store2" unmount "$b" >/dev/null 2>&1
  done
  hack/with-registry.sh stop "$work/registry" >/dev/null 2>&1
  umount -R -l "$work" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

step "1. a local registry, and the busybox base pushed to it with berth-build"
hack/with-registry.sh start "$work/registry"
. "$work/registry/env"
hack/make-busybox-image.sh "$work/base" localhost/busybox:latest >/dev/null
tar -C "$work/base" -cf "$work/base.tar" .
show bb load -i "$work/base.tar"
show bb push -q localhost/busybox:latest "$REG_PLAIN/busybox:latest"

step "2. build examples/hello FROM the registry image, push it, pull it into a fresh store"
show bb build -q --pull=missing --build-arg BASE="$REG_PLAIN/busybox:latest" \
  -t "$REG_PLAIN/demo:latest" --push examples/hello
show bb2 pull --progress plain "$REG_PLAIN/demo:latest"
show bb2 images

step "3. run it with berth (the rootfs is an overlay over the store's layers)"
show bb2 unpack --overlay "$REG_PLAIN/demo:latest" "$work/bundle-hello"
jq '.hostname="berth-demo" | .process.terminal=false' "$work/bundle-hello/config.json" >"$work/c" &&
  mv "$work/c" "$work/bundle-hello/config.json"
show berth run -b "$work/bundle-hello" "hello-$id"
echo "exit status: $?"

# A bundle from the base image running ARGS, optionally in network namespace NETNS with
# /etc/hosts from HOSTS: bundle NAME NETNS HOSTS ARGS...
bundle() {
  local name=$1 netns=$2 hosts=$3 b=$work/bundle-$1; shift 3
  bb2 unpack --overlay "$REG_PLAIN/busybox:latest" "$b" >/dev/null
  jq --arg host "$name" --arg ns "$netns" --arg hosts "$hosts" --argjson args "$(printf '%s\n' "$@" | jq -R . | jq -s .)" '
    .hostname=$host | .process.terminal=false | .process.args=$args | .root.readonly=false
    | if $ns == "" then . else
        .linux.namespaces |= (map(select(.type != "network")) + [{type: "network", path: ("/var/run/netns/" + $ns)}])
      end
    | if $hosts == "" then . else
        .mounts += [{destination: "/etc/hosts", type: "bind", source: $hosts, options: ["rbind", "ro"]}]
      end' "$b/config.json" >"$b/c" && mv "$b/c" "$b/config.json"
}

step "4. a long-running container: exec, output, exit status"
show bb2 pull -q "$REG_PLAIN/busybox:latest"
bundle long "" "" sleep 600
echo "+ berth create -b $work/bundle-long long-$id" >&2
berth create -b "$work/bundle-long" --pid-file "$work/long.pid" "long-$id" </dev/null >"$work/long.log" 2>&1
show berth start "long-$id"
show berth state "long-$id" | jq -c '{id, status, pid}'
show berth exec "long-$id" sh -c 'echo "hello from exec in $(hostname), pid 1 is $(cat /proc/1/comm)"'
set +e
berth exec "long-$id" sh -c 'echo "exiting with 3"; exit 3'
echo "+ berth exec long-$id sh -c 'exit 3' -> exit status $?"
set -e
show berth ps "long-$id"
show berth kill "long-$id" KILL
sleep 0.2
show berth delete -f "long-$id"

step "5. two containers on one bridge (CNI bridge + host-local), httpd in one, wget from the other"
subnet=""
for _ in $(seq 50); do
  cand="10.$((200 + RANDOM % 50)).$((RANDOM % 250)).0/24"
  ip route | grep -q "^${cand%.0/24}\." || { subnet=$cand; break; }
done
[ -n "$subnet" ] || { echo "demo: no free private subnet" >&2; exit 1; }
cat >"$work/net.json" <<NET
{"cniVersion": "1.0.0", "name": "berth-demo-$id", "type": "bridge", "bridge": "$bridge",
 "isGateway": false, "ipMasq": false, "hairpinMode": false,
 "ipam": {"type": "host-local", "subnet": "$subnet", "dataDir": "$work/ipam"}}
NET
attach() { # attach NETNS CONTAINER -> prints the IP
  ip netns add "$1"
  ip netns exec "$1" ip link set lo up
  CNI_COMMAND=ADD CNI_CONTAINERID="$2-$id" CNI_NETNS="/var/run/netns/$1" CNI_IFNAME=eth0 \
    CNI_PATH=$cni "$cni/bridge" <"$work/net.json" | jq -r '.ips[0].address' | cut -d/ -f1
}
ip_web=$(attach "$netns_a" web)
ip_client=$(attach "$netns_b" client)
echo "web: $ip_web, client: $ip_client on bridge $bridge ($subnet)"
printf '127.0.0.1 localhost\n%s web\n%s client\n' "$ip_web" "$ip_client" >"$work/hosts"
bundle web "$netns_a" "$work/hosts" sh -c 'mkdir -p /www && echo "hello from the web container" >/www/index.html && exec httpd -f -p 80 -h /www'
bundle client "$netns_b" "$work/hosts" sh -c "timeout 5 wget -q -O - http://$ip_web/ && echo '(by IP)' && timeout 5 wget -q -O - http://web/ && echo '(by name)'"
echo "+ berth create -b $work/bundle-web web-$id" >&2
berth create -b "$work/bundle-web" "web-$id" </dev/null >"$work/web.log" 2>&1
show berth start "web-$id"
up=""
for _ in $(seq 100); do
  if ip netns exec "$netns_a" cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':0050 0*:0000 0A'; then up=1; break; fi
  sleep 0.1
done
[ -n "$up" ] || { echo "demo: httpd did not start:" >&2; cat "$work/web.log" >&2; berth state "web-$id" >&2; exit 1; }
show berth run -b "$work/bundle-client" "client-$id"
echo "client exit status: $?"
step "done: removing everything"
