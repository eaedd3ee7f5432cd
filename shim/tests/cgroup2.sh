#!/bin/sh
# Pure cgroup2 (run by tests/containerd.rs inside a private mount namespace whose
# /sys/fs/cgroup is a cgroup2 mount): metrics in containerd's v2 types, pause/resume through
# cgroup.freeze, kill --all, delete, and (where this cgroup2 mount has the memory controller) a
# memory limit that OOMs with its TaskOOM event. Env as for scenario.sh.
# (--cpu-shares 0: ctr asks for 1024 by default, and this cgroup2 mount has no cpu controller)
R="--runtime $RUNTIME --cpu-shares 0"
IMG=localhost/busybox:latest
stopped() { for _ in $(seq 100); do $CTR task ls | grep -q "^$1 .*STOPPED" && return 0; sleep 0.05; done; return 1; }
$CTR run --rm $R $IMG v2a sh -c 'echo v2-run-ok'
$CTR run -d $R $IMG v2b sh -c 'sleep 1000 & sleep 1000' >/dev/null && echo v2-run-d-ok
$CTR task metrics v2b | grep -q '^pids.current' && echo v2-metrics-ok
$CTR task metrics v2b | grep -q 'cpu.usage_usec' && echo v2-cpu-metrics-ok
$CTR task pause v2b && $CTR task ls | grep -q "^v2b .*PAUSED" && echo v2-paused-ok
$CTR task resume v2b && $CTR task ls | grep -q "^v2b .*RUNNING" && echo v2-resumed-ok
$CTR task ps v2b | tail -n +2 | wc -l | sed 's/^/v2-ps-lines=/'
$CTR task kill -a -s KILL v2b && stopped v2b && echo v2-killed-ok
$CTR task delete v2b >/dev/null && $CTR container delete v2b && echo v2-deleted-ok
[ -z "$($CTR task ls -q)" ] && echo v2-no-tasks-left

# OOM on cgroup2: needs the memory controller in the cgroup2 hierarchy, which a hybrid host
# keeps on its v1 mount (then the reason is printed and the test accepts it)
if grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
  $CTR events > "$WORK/v2events.txt" 2>&1 &
  ev=$!
  $CTR run --rm $R --memory-limit 16777216 $IMG v2oom sh -c 'x=a; while true; do x="$x$x"; done'; echo "v2-oom-rc=$?"
  sleep 0.3; kill $ev 2>/dev/null
  grep -q '/tasks/oom {"container_id":"v2oom"}' "$WORK/v2events.txt" && echo v2-oom-event-ok
else
  echo "v2-oom-skipped: no memory controller in this cgroup2 hierarchy ($(cat /sys/fs/cgroup/cgroup.controllers))"
fi
