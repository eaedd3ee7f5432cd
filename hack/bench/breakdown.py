#!/usr/bin/env python3
"""Where a `berth run` spends its time, phase by phase, next to crun's and runc's whole runs.

Runs the given commands alternately. The berth command runs with BERTH_TRACE pointing at a
file: berth appends `berth-trace PID NS PHASE` lines (CLOCK_MONOTONIC) at the end of each
phase (runtime/src/trace.rs). This script reads the same clock just before it spawns berth
("spawn") and just after wait() returns ("reaped"), so the first row is exec plus program
start-up and the last is exit plus reaping.

A phase's time is its mark minus the latest earlier mark (marks of the parent and of the
container's set-up processes interleave; a mark that comes earlier than one listed before it
counts 0), so the phases of one run add up to exactly its total. Each row is the median
over the runs of that phase; the rows' sum is close to, not exactly, the median total.

Usage: breakdown.py --runs N --berth 'CMD' [--peer NAME 'CMD']...   (prints markdown)
"""
import argparse
import os
import shlex
import statistics
import subprocess
import tempfile
import time

# The phases of `berth run` in the order they normally end. Marks absent in a run (a stage-1
# fork that did not happen, hooks that were not configured) are skipped.
PHASES = [
    ("main", "exec, program start-up (loader, relocation) to main"),
    ("cli-parsed", "command line parsed"),
    ("logger", "log sink and tracing set up"),
    ("config-loaded", "config.json read and deserialized"),
    ("config-validated", "spec validated, mount plan made"),
    ("cgroups-detected", "cgroup hierarchies found"),
    ("state-dir", "state directory created and locked"),
    ("cgroup-created", "cgroup directories created"),
    ("cgroup-resources", "resources written, device filter loaded"),
    ("exec-socket", "exec socket bound, bind sources opened"),
    ("state-saved", "state.json written (before fork)"),
    ("forked", "clone3 of the container's first process"),
    ("stage1-cgroup-joined", "child: cgroups joined (v1 migrations)"),
    ("stage1-userns-mapped", "child: user namespace mapped"),
    ("stage1-unshared", "child: remaining namespaces created"),
    ("init-forked", "child: init forked into the PID namespace"),
    ("init-mounted", "init: rootfs mounts"),
    ("init-dev", "init: /dev populated"),
    ("init-hooks-acked", "init: parent ran createRuntime hooks (round trip)"),
    ("init-pivoted", "init: pivot_root"),
    ("init-masked", "init: sysctl, readonly and masked paths"),
    ("init-process-prepared", "init: hostname, keyring, user, caps, seccomp prepared"),
    ("init-ready-received", "parent: Ready received"),
    ("created", "parent: state.json rewritten with the init's pid"),
    ("start-sent", "start: exec socket connected and signalled"),
    ("init-start-received", "init: start received"),
    ("init-execve", "init: startContainer hooks, about to execve"),
    ("started", "start: execve done (socket closed)"),
    ("waited", "the program ran and exited, reaped"),
    ("state-loaded", "delete: state loaded"),
    ("delete-killed", "delete: nothing left to kill"),
    ("delete-emptied", "delete: cgroup empty"),
    ("delete-cgroup-removed", "delete: cgroup directories removed"),
    ("delete-state-removed", "delete: state directory removed"),
    ("deleted", "delete: poststop hooks"),
    ("exit", "memory report, exit"),
    ("reaped", "process exit and reaping by the caller"),
]


def clock():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def run_traced(cmd, trace):
    open(trace, "w").close()
    env = dict(os.environ, BERTH_TRACE=trace)
    t0 = clock()
    p = subprocess.run(shlex.split(cmd), env=env, stdout=subprocess.DEVNULL)
    t1 = clock()
    if p.returncode != 0:
        raise SystemExit(f"breakdown: {cmd!r} exited {p.returncode}")
    marks = {"spawn": t0, "reaped": t1}
    mem = {}
    for line in open(trace):
        parts = line.split()
        if len(parts) != 4 or parts[0] != "berth-trace":
            continue
        name = parts[3]
        if name.startswith("mem-"):
            k, _, v = name[4:].partition("=")
            mem[k] = int(v)
            continue
        # The first mark of a name wins (delete's marks come once; the init's too).
        marks.setdefault(name, int(parts[2]))
    return marks, mem, (t1 - t0) / 1e6


def phase_times(marks):
    """Each listed phase's share of the run, in ms (see the module doc)."""
    out = {}
    latest = marks["spawn"]
    for name, _ in PHASES:
        t = marks.get(name)
        if t is None:
            continue
        out[name] = max(0, t - latest) / 1e6
        latest = max(latest, t)
    return out


def run_plain(cmd):
    t0 = clock()
    p = subprocess.run(shlex.split(cmd), stdout=subprocess.DEVNULL)
    t1 = clock()
    if p.returncode != 0:
        raise SystemExit(f"breakdown: {cmd!r} exited {p.returncode}")
    return (t1 - t0) / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--peer", nargs=2, action="append", default=[], metavar=("NAME", "CMD"))
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    fd, trace = tempfile.mkstemp(prefix="berth-trace-")
    os.close(fd)
    per_phase = {name: [] for name, _ in PHASES}
    totals = {"berth (traced)": []}
    for name, _ in a.peer:
        totals[name] = []
    mems = []
    try:
        # One warm-up round, not counted.
        run_traced(a.berth, trace)
        for name, cmd in a.peer:
            run_plain(cmd)
        for _ in range(a.runs):
            marks, mem, total = run_traced(a.berth, trace)
            for k, v in phase_times(marks).items():
                per_phase[k].append(v)
            totals["berth (traced)"].append(total)
            mems.append(mem)
            for name, cmd in a.peer:
                totals[name].append(run_plain(cmd))
    finally:
        os.unlink(trace)
    med = {k: statistics.median(v) for k, v in totals.items() if v}
    if a.title:
        print(f"### {a.title}")
        print()
    print(f"{a.runs} alternating runs; medians in ms.")
    print()
    print("| phase of `berth run` | what ends there | median (ms) |")
    print("|---|---|---|")
    s = 0.0
    for name, what in PHASES:
        v = per_phase[name]
        if not v:
            continue
        m = statistics.median(v)
        s += m
        print(f"| {name} | {what} | {m:.3f} |")
    print(f"| **sum of medians** | | **{s:.2f}** |")
    print()
    base = med["berth (traced)"]
    print("| whole run | median (ms) | berth / this |")
    print("|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} | {base / v:.2f}x |")
    if mems:
        hwm = statistics.median(m.get("VmHWM", 0) for m in mems)
        anon = statistics.median(m.get("RssAnon", 0) for m in mems)
        fil = statistics.median(m.get("RssFile", 0) for m in mems)
        print()
        print(
            f"berth's own process at exit: peak RSS {hwm / 1024:.2f} MB "
            f"(anonymous {anon / 1024:.2f} MB, file-backed {fil / 1024:.2f} MB)."
        )


if __name__ == "__main__":
    main()
