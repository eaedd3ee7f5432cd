#!/usr/bin/env python3
"""Virtual addresses of the present pages of a process's mappings of one binary.

Usage: mapped-pages.py PID OUT NAME
Reads /proc/PID/maps and /proc/PID/pagemap and writes to OUT, one hex address a line, every
page of the mappings whose path ends with NAME that is present in the process's page table. For a position-independent binary (ELF type ET_DYN) the
addresses are made relative to its load address, so that they match `nm` of the file.
Used by hack/bench/shim-order.sh and hack/bench/berth-order.sh (the hot-function lists).
"""
import struct
import sys

pid, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
with open(f"/proc/{pid}/exe", "rb") as exe:
    pie = struct.unpack("<H", exe.read(18)[16:18])[0] == 3
res, base = [], None
with open(f"/proc/{pid}/maps") as m, open(f"/proc/{pid}/pagemap", "rb") as pm:
    for line in m:
        f = line.split()
        if len(f) < 6 or not f[5].endswith(name):
            continue
        a, b = (int(x, 16) for x in f[0].split("-"))
        if base is None:
            base = a - int(f[2], 16) if pie else 0
        pm.seek(a // 4096 * 8)
        data = pm.read((b - a) // 4096 * 8)
        for i in range(0, len(data), 8):
            if struct.unpack("<Q", data[i:i + 8])[0] >> 63:
                res.append(a + i // 8 * 4096 - base)
with open(out, "a") as o:
    o.write("".join(f"{x:x}\n" for x in res))
