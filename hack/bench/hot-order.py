#!/usr/bin/env python3
"""Turns the mapped pages of a profiling build into a symbol ordering file for lld.

Usage: hot-order.py BINARY OUT PHASE...
BINARY is the profiling build (symbols kept; its Rust functions aligned to 64 KiB, so that no
two of them share a page); each PHASE file holds the page addresses (mapped-pages.py) the build
had mapped, run from hack/bench/cold-fs.sh's file system, where a mapped page is a page the
program touched. Every function overlapping such a page is listed: a Rust function alone, and
the few glibc functions (packed, not alignable) sharing its 4 KiB. Functions are listed in the
order of the phases, then of their addresses, each once.
"""
import bisect
import subprocess
import sys

PAGE = 4096
binary, out, phases = sys.argv[1], sys.argv[2], sys.argv[3:]
syms = []
nm = subprocess.run(["nm", "-n", "-S", binary], capture_output=True, text=True, check=True)
for line in nm.stdout.splitlines():
    f = line.split()
    if len(f) == 4 and f[2] in "tTwW" and int(f[1], 16) > 0:
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
syms.sort()
starts = [s[0] for s in syms]
longest = max((s[1] for s in syms), default=0)
seen, order = set(), []
for ph in phases:
    for page in sorted(set(int(x, 16) for x in open(ph).read().split())):
        # functions starting before the page's end and ending after its start
        i = bisect.bisect_left(starts, page - longest)
        while i < len(syms) and syms[i][0] < page + PAGE:
            start, size, name = syms[i]
            if start + size > page and name not in seen:
                seen.add(name)
                order.append(name)
            i += 1
    print(f"{ph}: {len(order)} functions", file=sys.stderr)
with open(out, "w") as o:
    o.write("".join(n + "\n" for n in order))
