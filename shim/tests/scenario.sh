#!/bin/sh
# One containerd scenario, run by tests/containerd.rs inside hack/with-containerd.sh for the
# berth shim and for containerd's runc shim (which proves the scenario). Prints marker lines the
# test checks. Env: CTR (from with-containerd.sh), RUNTIME (io.containerd.berth.v2 or
# io.containerd.runc.v2), NS (the namespace), WORK (a scratch directory), BERTH (berth binary).
R="--runtime $RUNTIME"
IMG=localhost/busybox:latest
stopped() { for _ in $(seq 100); do $CTR task ls | grep -q "^$1 .*STOPPED" && return 0; sleep 0.05; done; return 1; }

$CTR events > "$WORK/events.txt" 2>&1 &
events=$!

# run --rm: output and exit code
$CTR run --rm $R $IMG c1 sh -c 'echo hello-from-containerd; echo to-stderr >&2; exit 5'; echo "rc=$?"
echo in | $CTR run --rm $R $IMG cin sh -c 'read x; echo "stdin-$x"'

# log URIs: file:// appends to a file, binary:// starts a logger with stdout/stderr on fds 3/4
$CTR run --rm $R --log-uri "file://$WORK/file.log" $IMG lf sh -c 'echo to-file-out; echo to-file-err >&2'
# The shim may still be copying the last lines when ctr returns (seen with the runc shim): wait
# for both, a second at most.
for _ in $(seq 20); do [ "$(cat "$WORK/file.log" 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.05; done
sort "$WORK/file.log" | tr '\n' ' ' | sed 's/^/file-log: /; s/$/\n/'
printf '#!/bin/sh\nexec 5>&-\ncat <&3 > "$1.out" & cat <&4 > "$1.err"; wait\n' > "$WORK/logger.sh"; chmod +x "$WORK/logger.sh"
$CTR run --rm $R --log-uri "binary://$WORK/logger.sh?$WORK/bin" $IMG lb sh -c 'echo to-bin-out; echo to-bin-err >&2'
sleep 0.2; echo "binary-log: $(cat "$WORK/bin.out") $(cat "$WORK/bin.err")"

# detached run, exec with and without a tty, ps, pause/resume, metrics
$CTR run -d $R $IMG c2 sleep 1000 >/dev/null && echo run-d-ok
$CTR task exec --exec-id e1 c2 sh -c 'echo exec-ok; exit 3'; echo "exec-rc=$?"
script -qc "stty rows 40 cols 100; $CTR task exec -t --exec-id t1 c2 sh -c 'tty; sleep 0.5; stty size'" /dev/null < /dev/null | tr -d '\r' | sed 's/\^@//g; s/^/tty: /'
$CTR task ps c2 | tail -n +2 | wc -l | sed 's/^/ps-lines=/'
$CTR task exec -d --exec-id ps1 c2 sleep 30 && sleep 0.2
$CTR task ps c2 | grep -q ps1 && echo ps-exec-info-ok
$CTR task kill --exec-id ps1 -s KILL c2 && echo exec-killed-ok
$CTR task pause c2 && $CTR task ls | grep -q "^c2 .*PAUSED" && echo paused-ok
$CTR task resume c2 && $CTR task ls | grep -q "^c2 .*RUNNING" && echo resumed-ok
$CTR task metrics c2 | grep -q memory.usage_in_bytes && echo metrics-ok
$CTR task checkpoint c2 >/dev/null 2>&1 || echo checkpoint-refused
$CTR task checkpoint c2 2>&1 | sed 's/^/checkpoint: /'
if [ "$RUNTIME" = io.containerd.berth.v2 ]; then
  $BERTH --root "/run/containerd/berth/$NS" list | grep -q "^c2 .*running" && echo berth-list-ok
fi

# bad input: exec of a missing binary reaches ctr with the runtime's error; the shim keeps serving
$CTR task exec --exec-id bad c2 /no/such/binary 2>&1 | sed 's/^/missing-binary: /'
$CTR task exec --exec-id e2 c2 echo still-serving
# a config the runtime refuses, and a missing rootfs
printf '{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"mount"},{"type":"bogus"}]}}' > "$WORK/bad.json"
$CTR run --rm $R --config "$WORK/bad.json" bad1 2>&1 | sed 's/^/bad-config: /'
$CTR container delete bad1 2>/dev/null
$CTR run --rm $R --rootfs "$WORK/no-such-rootfs" nr true 2>&1 | sed 's/^/missing-rootfs: /'
$CTR container delete nr 2>/dev/null
$CTR task exec --exec-id e3 c2 echo still-serving-2

# runtime options: `ctr --runtime-config-path` sends runtimeoptions.v1.Options, as the CRI does
# for a runtime type other than runc's; the file holds runc's option names
if [ "$RUNTIME" = io.containerd.berth.v2 ]; then
  printf '[options]\nRoot = "%s"\nNoPivotRoot = true\nNoNewKeyring = true\nIoUid = 1000\nIoGid = 1000\n' "$WORK/altroot" > "$WORK/opts.toml"
  # (uid 1000 through su: ctr 1.6 has no --user)
  U='echo u:x:1000:1000::/:/bin/sh >> /etc/passwd'
  # (session keyrings are checked in the host's /proc/keys: the container's is masked)
  $CTR run -d $R --runtime-config-path "$WORK/opts.toml" $IMG o1 sh -c "$U; exec sleep 1000" >/dev/null && echo opts-run-ok
  $BERTH --root "$WORK/altroot/$NS" list | grep -q "^o1 .*running" && echo opts-root-ok
  sleep 0.2
  $CTR task exec --exec-id oe o1 su u -c 'echo io-owner-ok > /dev/stdout' 2>&1
  grep -c '_ses\.o1:' /proc/keys | sed 's/^/opts-keyrings=/'
  $CTR task kill -s KILL o1 && stopped o1 && $CTR task delete o1 >/dev/null && $CTR container delete o1 && echo opts-deleted-ok
  # a killed shim's container in the options' Root is cleaned up by `delete` there
  $CTR run -d $R --runtime-config-path "$WORK/opts.toml" $IMG o3 sleep 1000 >/dev/null
  shim=$(ps -eo pid,args | awk -v m="-namespace $NS -id o3 " 'index($0, m) && !/awk/ {print $1}')
  [ -n "$shim" ] && kill -9 $shim
  for _ in $(seq 100); do $CTR task ls | grep -q "^o3 " || break; sleep 0.05; done
  $CTR container delete o3 && ! $BERTH --root "$WORK/altroot/$NS" list | grep -q "^o3 " && echo opts-dead-shim-cleaned
  # without the options: a session keyring of its own, and a uid 1000 process cannot reopen
  # its root-owned stdout
  $CTR run -d $R $IMG o2 sh -c "$U; exec sleep 1000" >/dev/null
  sleep 0.2
  grep -c '_ses\.o2:' /proc/keys | sed 's/^/default-keyrings=/'
  $CTR task exec --exec-id oe o2 su u -c 'echo x > /dev/stdout || echo io-owner-needed' 2>/dev/null
  $CTR task kill -s KILL o2 && stopped o2 && $CTR task delete o2 >/dev/null && $CTR container delete o2
  # SystemdCgroup reaches berth's systemd cgroup driver (no systemd here: its error reaches ctr)
  printf 'SystemdCgroup = true\n' > "$WORK/sd.toml"
  $CTR run --rm $R --runtime-config-path "$WORK/sd.toml" --cgroup "system.slice:berth:sd1" $IMG sd1 true 2>&1 | sed 's/^/systemd-cgroup: /'
  $CTR container delete sd1 2>/dev/null
  printf 'Root = "/x"\nBogus = 1\n' > "$WORK/bad.toml"
  $CTR run --rm $R --runtime-config-path "$WORK/bad.toml" $IMG bo1 true 2>&1 | sed 's/^/bad-option: /'
  $CTR container delete bo1 2>/dev/null
  $CTR task exec --exec-id e5 c2 echo still-serving-3
fi

# memory limit that OOMs; TaskOOM is checked in the events below
$CTR run --rm $R --memory-limit 16777216 $IMG oom sh -c 'x=a; while true; do x="$x$x"; done'; echo "oom-rc=$?"

# containerd restarted mid-life: the shim and its container survive and are still driven
$RESTART_CONTAINERD && echo restarted
$CTR task ls | grep -q "^c2 .*RUNNING" && echo survived-restart
$CTR task exec --exec-id e4 c2 echo exec-after-restart
$CTR task kill -s KILL c2 && stopped c2 && echo killed-ok
$CTR task delete c2 >/dev/null && $CTR container delete c2 && echo deleted-ok

# containers of one group (the CRI's sandbox id) share one shim, which outlives the first
G="--annotation io.kubernetes.cri.sandbox-id=pod-$NS"
$CTR run -d $R $G $IMG g1 sleep 1000 >/dev/null && $CTR run -d $R $G $IMG g2 sleep 1000 >/dev/null && echo grouped-run-ok
shims=$(ps -eo args | grep -v grep | grep -c -- "-namespace $NS -id g[12] ")
echo "group-shims=$shims"
$CTR task kill -s KILL g1 && stopped g1 && $CTR task delete g1 >/dev/null && $CTR container delete g1 && echo g1-deleted
$CTR task exec --exec-id ge g2 echo group-survivor-serves
$CTR task kill -s KILL g2 && stopped g2 && $CTR task delete g2 >/dev/null && $CTR container delete g2 && echo g2-deleted

# a container that exits while containerd is down: its TaskExit arrives once containerd is back
$CTR run -d $R $IMG dn sleep 1000 >/dev/null
dnpid=$($CTR task ls | awk '$1 == "dn" {print $2}')
$STOP_CONTAINERD
kill -9 "$dnpid"
sleep 0.3
$START_CONTAINERD
$CTR events > "$WORK/events2.txt" 2>&1 &
ev2=$!
for _ in $(seq 100); do grep -q '/tasks/exit {"container_id":"dn"' "$WORK/events2.txt" && break; sleep 0.1; done
kill "$ev2" 2>/dev/null
grep -q '/tasks/exit {"container_id":"dn"' "$WORK/events2.txt" && echo exit-during-downtime-delivered
$CTR task ls | grep -q "^dn .*STOPPED" && echo exit-during-downtime-stopped
$CTR task delete dn >/dev/null && $CTR container delete dn && echo dn-deleted

# a killed shim is cleaned up by `delete`
$CTR run -d $R $IMG k1 sleep 1000 >/dev/null
# the shim serving k1 (both shims run their daemon as `... -namespace NS -id k1 -address ...`)
shim=$(ps -eo pid,args | awk -v m="-namespace $NS -id k1 " 'index($0, m) && !/awk/ {print $1}')
[ -n "$shim" ] && kill -9 $shim && echo shim-killed
for _ in $(seq 100); do $CTR task ls | grep -q "^k1 " || break; sleep 0.05; done
$CTR task ls | grep -q "^k1 " || echo dead-shim-task-gone
$CTR container delete k1 && echo dead-shim-container-deleted

# SIGTERM to a shim: it exits and (berth) removes its socket first; containerd cleans up the
# rest as for a killed shim
$CTR run -d $R $IMG k2 sleep 1000 >/dev/null
shim=$(ps -eo pid,args | awk -v m="-namespace $NS -id k2 " 'index($0, m) && !/awk/ {print $1}')
sock=$(sed 's#^unix://##' "$CONTAINERD_STATE/io.containerd.runtime.v2.task/$NS/k2/address")
[ -S "$sock" ] && [ -n "$shim" ] && kill -TERM $shim && echo shim-termed
for _ in $(seq 100); do kill -0 $shim 2>/dev/null || break; sleep 0.05; done
kill -0 $shim 2>/dev/null || echo termed-shim-exited
if [ "$RUNTIME" = io.containerd.berth.v2 ]; then
  [ -e "$sock" ] || echo termed-shim-socket-removed
fi
for _ in $(seq 100); do $CTR task ls | grep -q "^k2 " || break; sleep 0.05; done
$CTR task ls | grep -q "^k2 " || echo termed-shim-task-gone
$CTR container delete k2 && echo termed-shim-container-deleted

sleep 0.3
kill "$events" 2>/dev/null
grep -q '/tasks/oom {"container_id":"oom"}' "$WORK/events.txt" && echo oom-event-ok
grep -q '/tasks/exec-started {"container_id":"c2","exec_id":"e1"' "$WORK/events.txt" && echo exec-event-ok
grep -q '/tasks/paused {"container_id":"c2"}' "$WORK/events.txt" && echo paused-event-ok

# leftovers: tasks, containers, mounts, shim processes of this namespace
[ -z "$($CTR task ls -q)" ] && [ -z "$($CTR container ls -q)" ] && echo no-tasks-left
grep -q " $CONTAINERD_STATE/" /proc/self/mountinfo || echo no-mounts-left
sleep 0.2
ps -eo args | grep -v grep | grep -q -- "-namespace $NS " || echo no-shims-left
