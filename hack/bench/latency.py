#!/usr/bin/env python3
"""Alternating latency harness: runs each runtime's command in turn, N rounds, and reports
median / p90 wall time per runtime and the ratio to the first runtime. Used by the hack/bench
scripts; every command must exit 0.

usage: latency.py --runs N --label NAME -- NAME1 'CMD1' NAME2 'CMD2' ...
Output: a markdown table on stdout.
"""
import argparse
import shlex
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--label", default="latency")
    ap.add_argument("pairs", nargs="+")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        sys.exit("latency.py: give NAME CMD pairs")
    names = a.pairs[0::2]
    cmds = [shlex.split(c) for c in a.pairs[1::2]]
    times = {n: [] for n in names}
    for i in range(a.warmup + a.runs):
        for name, cmd in zip(names, cmds):
            t = time.perf_counter()
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            dt = time.perf_counter() - t
            if r.returncode != 0:
                sys.exit(f"latency.py: {name} failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}")
            if i >= a.warmup:
                times[name].append(dt * 1000)
    base = statistics.median(times[names[0]])
    print(f"| {a.label} | median ms | p90 ms | ratio to {names[0]} |")
    print("|---|---:|---:|---:|")
    for n in names:
        ts = sorted(times[n])
        med = statistics.median(ts)
        p90 = ts[int(len(ts) * 0.9) - 1]
        print(f"| {n} | {med:.2f} | {p90:.2f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
