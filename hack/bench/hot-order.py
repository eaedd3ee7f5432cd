#!/usr/bin/env python3
"""Turns the mapped pages of a profiling build into a symbol ordering file for lld.

Usage: hot-order.py BINARY OUT PHASE...
BINARY is the profiling build (every function aligned to 64 KiB, symbols kept); each PHASE
file holds page addresses (mapped-pages.py) relative to where the binary was linked, or
absolute for a non-PIE binary. A page maps to the aligned function starting in its window;
functions are listed in the order of the phases, then of their addresses, each once.
glibc's functions are not aligned by the profiling build and are left out.
"""
import bisect
import subprocess
import sys

binary, out, phases = sys.argv[1], sys.argv[2], sys.argv[3:]
syms = []
nm = subprocess.run(["nm", "-n", "-S", binary], capture_output=True, text=True, check=True)
for line in nm.stdout.splitlines():
    f = line.split()
    # Aligned (Rust) functions only: glibc's cannot be placed by this profile.
    if len(f) == 4 and f[2] in "tTwW" and int(f[0], 16) % 65536 == 0:
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
syms.sort()
starts = [s[0] for s in syms]
seen, order = set(), []
for ph in phases:
    for page in sorted(int(x, 16) for x in open(ph).read().split()):
        i = bisect.bisect_right(starts, page) - 1
        if i >= 0 and syms[i][0] + max(syms[i][1], 1) > page and syms[i][2] not in seen:
            seen.add(syms[i][2])
            order.append(syms[i][2])
    print(f"{ph}: {len(order)} functions", file=sys.stderr)
with open(out, "w") as o:
    o.write("".join(n + "\n" for n in order))
