#!/usr/bin/env python3
"""Benchmark harness behind hack/bench/all.sh: measures several runtimes in one environment,
alternating them (round-robin) so machine noise hits all of them alike, and prints a markdown
table with medians and ratios to the first runtime (berth).

  all.py measure --env host --title T --work W --rootfs R --config C --cg-parent /P \
      --memcg-fd 9 [--runs N --rss-runs N --rounds N --count N] -- NAME 'CMD' NAME 'CMD' ...
  all.py splice FILE SECTION   # replace the text between the bench:all markers in FILE

CMD is the runtime with its global flags, e.g. 'runc --root /tmp/x/root-runc'; it must contain
--root (the state root the harness cleans up). --memcg-fd is an open directory fd of the
harness's own cgroup-v1 memory directory /sys/fs/cgroup/memory/P (opened before a private mount
namespace hid it); the harness makes child cgroups there and moves only itself between them.

Measured per runtime:
  run      `run` of /bin/true (busybox), wall ms
  exec     `exec CTR /bin/true` into one running `sleep` container per runtime, wall ms
  rss      max RSS of `run` /bin/true from wait4 via /usr/bin/time -f %M: the largest of the
           runtime process and the children it reaped (runc init, the container's init before
           its exec); /usr/bin/time forks rather than Python, because a child's max RSS counts
           the memory of the process it was forked from (13 MB for a Python parent, 1 MB here)
  tp       COUNT concurrent `create`, then COUNT concurrent `start` (wall to all started), then
           COUNT concurrent `delete -f` (wall), and the peak memory of that whole cycle: the
           harness moves itself into a fresh memory cgroup M for the cycle, so every runtime
           process it spawns, and everything they fork, is charged to M or to the containers'
           own cgroups, which are M's children (cgroupsPath = P/ENV/RT-rK/cI); the kernel's
           memory.max_usage_in_bytes of M is the exact high-water mark of the sum (no sampling):
           anonymous memory, page tables, kernel memory (namespaces, cgroups), memfds and files
           written, including the COUNT sleeping busybox processes, the same for every runtime.
"""
import argparse
import contextlib
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TIMEOUT = 120  # seconds for any single runtime command


class Fail(Exception):
    pass


class Runtime:
    def __init__(self, name, base):
        self.name = name
        self.base = shlex.split(base)
        if "--root" not in self.base:
            raise SystemExit(f"all.py: {name}: the command must give --root")
        self.root = self.base[self.base.index("--root") + 1]

    def cmd(self, *args):
        return self.base + [str(a) for a in args]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Timeout(Fail):
    pass


@contextlib.contextmanager
def deadline(seconds, what):
    """SIGALRM-based limit, so waiting stays a blocking waitpid: Popen.wait(timeout=...) polls
    with sleeps of 0.5, 1, 2, ... 50 ms, which would round every measurement up to that grid."""
    def on_alarm(signum, frame):
        raise Timeout(f"{what} timed out after {seconds} s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


_err = None


def check(cmd, timeout=TIMEOUT):
    # stderr goes to a file, not a pipe: a created container inherits it and keeps it open
    global _err
    if _err is None:
        _err = tempfile.TemporaryFile()
    _err.seek(0)
    _err.truncate()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=_err)
    try:
        with deadline(timeout, shlex.join(cmd)):
            rc = p.wait()
    except BaseException:
        p.kill()
        p.wait()
        raise
    if rc != 0:
        _err.seek(0)
        raise Fail(f"{shlex.join(cmd)} failed ({rc}): {_err.read().decode(errors='replace').strip()}")


def median(xs):
    return statistics.median(xs)


def p90(xs):
    xs = sorted(xs)
    return xs[max(0, int(len(xs) * 0.9) - 1)]


class Memcg:
    """Child cgroups of the harness's own v1 memory directory, reached through a dir fd."""

    def __init__(self, fd, env):
        self.fd = fd
        self.env = env
        self.made = []
        self.mkdir(env)
        self.home = f"{env}/harness"
        self.mkdir(self.home)
        self.enter(self.home)

    def mkdir(self, rel):
        try:
            os.mkdir(rel, dir_fd=self.fd)
        except FileExistsError:
            pass
        self.made.append(rel)

    def enter(self, rel):
        fd = os.open(f"{rel}/cgroup.procs", os.O_WRONLY, dir_fd=self.fd)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def read(self, rel, name):
        fd = os.open(f"{rel}/{name}", os.O_RDONLY, dir_fd=self.fd)
        try:
            return int(os.read(fd, 64).decode().strip())
        finally:
            os.close(fd)

    def rmdir(self, rel, tries=50):
        for _ in range(tries):
            try:
                os.rmdir(rel, dir_fd=self.fd)
                return True
            except FileNotFoundError:
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def cleanup(self):
        # the harness stays in its home cgroup until it exits; all.sh removes that one
        for rel in reversed(self.made):
            if rel not in (self.home, self.env):
                self.rmdir(rel, tries=10)


def cgroup_mkdirs(rel):
    """Creates /sys/fs/cgroup/[HIERARCHY/]REL in every hierarchy mounted there (pure cgroup2 or
    each v1 one), a v1 cpuset level with its parent's cpus and mems; returns what it created."""
    root = "/sys/fs/cgroup"
    if os.path.exists(f"{root}/cgroup.controllers"):
        hierarchies = [root]
    else:
        hierarchies = sorted(f"{root}/{h}" for h in os.listdir(root)
                             if os.path.exists(f"{root}/{h}/cgroup.procs"))
    made = []
    for h in hierarchies:
        d = h
        for part in rel.strip("/").split("/"):
            parent, d = d, f"{d}/{part}"
            try:
                os.mkdir(d)
                made.append(d)
            except FileExistsError:
                pass
            for f in ("cpuset.cpus", "cpuset.mems"):
                if os.path.exists(f"{d}/{f}"):
                    with open(f"{d}/{f}") as fh:
                        if fh.read().strip():
                            continue
                    with open(f"{parent}/{f}") as fh:
                        val = fh.read().strip()
                    with open(f"{d}/{f}", "w") as fh:
                        fh.write(val)
    return made


def cgroup_rmdirs(made):
    for d in reversed(made):
        for _ in range(20):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


class Bench:
    def __init__(self, a, runtimes):
        self.a = a
        self.rts = runtimes
        self.work = a.work
        with open(a.config) as f:
            self.base_config = json.load(f)
        self.ids = {rt.name: set() for rt in runtimes}
        self.memcg = Memcg(a.memcg_fd, a.env)
        self.cg = f"{a.cg_parent}/{a.env}"
        self.cg_made = []
        self.failed_rounds = {}

    def bundle(self, name, args, cgroups_path):
        d = os.path.join(self.work, "bundles", self.a.env, name)
        os.makedirs(d, exist_ok=True)
        c = json.loads(json.dumps(self.base_config))
        c["ociVersion"] = "1.0.2"  # crun 1.8 rejects newer versions
        c["root"] = {"path": self.a.rootfs, "readonly": False}
        c["process"]["args"] = args
        c["process"]["terminal"] = False
        c.setdefault("linux", {})["cgroupsPath"] = cgroups_path
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f)
        return d

    def pidfile(self, rt, cid):
        d = os.path.join(self.work, "pids", self.a.env, rt.name)
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, cid)

    # --- run /bin/true: latency and max RSS -------------------------------------------------
    def run_latency(self):
        a = self.a
        b = self.bundle("run", ["/bin/true"], f"{self.cg}/run")
        times = {rt.name: [] for rt in self.rts}
        for rt in self.rts:
            self.ids[rt.name].add("bench-run")
        for i in range(a.warmup + a.runs):
            for rt in self.rts:
                t = time.perf_counter()
                check(rt.cmd("run", "-b", b, "bench-run"))
                dt = time.perf_counter() - t
                if i >= a.warmup:
                    times[rt.name].append(dt * 1000)
        return times

    def run_rss(self):
        a = self.a
        b = self.bundle("run", ["/bin/true"], f"{self.cg}/run")
        out = os.path.join(self.work, f"rss-{a.env}")
        rss = {rt.name: [] for rt in self.rts}
        rss["floor"] = []
        entries = [(rt.name, rt.cmd("run", "-b", b, "bench-run")) for rt in self.rts]
        entries.append(("floor", ["/bin/true"]))
        for i in range(1 + a.rss_runs):
            for name, cmd in entries:
                check(["/usr/bin/time", "-f", "%M", "-o", out] + cmd)
                with open(out) as f:
                    kib = int(f.read().split()[-1])
                if i >= 1:
                    rss[name].append(kib / 1024)
        return rss

    # --- exec into a running container -------------------------------------------------------
    def exec_latency(self):
        a = self.a
        for rt in self.rts:
            b = self.bundle(f"exec-{rt.name}", ["sleep", "100000"], f"{self.cg}/exec-{rt.name}")
            self.ids[rt.name].add("bench-exec")
            check(rt.cmd("create", "--pid-file", self.pidfile(rt, "bench-exec"), "-b", b, "bench-exec"))
            check(rt.cmd("start", "bench-exec"))
        times = {rt.name: [] for rt in self.rts}
        for i in range(a.warmup + a.runs):
            for rt in self.rts:
                t = time.perf_counter()
                check(rt.cmd("exec", "bench-exec", "/bin/true"))
                dt = time.perf_counter() - t
                if i >= a.warmup:
                    times[rt.name].append(dt * 1000)
        for rt in self.rts:
            check(rt.cmd("delete", "-f", "bench-exec"))
        return times

    # --- COUNT containers in parallel --------------------------------------------------------
    def parallel(self, cmds, errf):
        """Runs all commands at once; returns the indices of those that failed."""
        procs = [subprocess.Popen(c, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
                 for c in cmds]
        bad = []
        try:
            with deadline(TIMEOUT, f"{len(cmds)} x {shlex.join(cmds[0][:len(cmds[0]) - 1])}"):
                for i, p in enumerate(procs):
                    if p.wait() != 0:
                        bad.append(i)
        except BaseException:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    p.wait()
            raise
        return bad

    def not_running(self, rt, cids):
        """Of containers whose `start` returned, those whose init has not exec'd `sleep`."""
        deadline = time.monotonic() + 10
        pending = list(cids)
        while pending and time.monotonic() < deadline:
            left = []
            for cid in pending:
                try:
                    with open(self.pidfile(rt, cid)) as f:
                        pid = int(f.read().strip())
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        ok = f.read().startswith(b"sleep\0")
                except (OSError, ValueError):
                    ok = False
                if not ok:
                    left.append(cid)
            pending = left
            if pending:
                time.sleep(0.05)
        return pending

    def throughput_round(self, rt, tag, count):
        m = f"{self.a.env}/{rt.name}-{tag}"
        self.memcg.mkdir(m)
        cids = [f"tp{i}" for i in range(count)]
        bundles = [self.bundle(f"tp-{rt.name}-{i}", ["sleep", "100000"], f"{self.a.cg_parent}/{m}/c{i}")
                   for i in range(count)]
        for c in cids:
            self.ids[rt.name].add(c)
            try:
                os.unlink(self.pidfile(rt, c))
            except FileNotFoundError:
                pass
        res = {}
        errors = []
        # the round's parent cgroup exists before the containers, as a pod's or a slice's does
        # (and concurrent creates that all make a new v1 cpuset parent race on its cpus/mems)
        made = cgroup_mkdirs(f"{self.a.cg_parent}/{m}")
        self.cg_made += made
        errpath = os.path.join(self.work, f"tp-{self.a.env}-{rt.name}.err")

        def failed(errf, what, bad):
            if bad:
                errf.flush()
                errf.seek(0)
                lines = errf.read().decode(errors="replace").strip().splitlines()
                errors.append(f"{len(bad)} x `{what}`: " + (lines[-1] if lines else "(no message)"))
            return {cids_now[i] for i in bad}

        try:
            with open(errpath, "w+b") as errf:
                self.memcg.enter(m)
                try:
                    t0 = time.perf_counter()
                    cids_now = cids
                    bad = failed(errf, "create", self.parallel(
                        [rt.cmd("create", "--pid-file", self.pidfile(rt, c), "-b", b, c)
                         for c, b in zip(cids, bundles)], errf))
                    t1 = time.perf_counter()
                    res["held_created"] = self.memcg.read(m, "memory.usage_in_bytes") / 2**20
                    created = [c for c in cids if c not in bad]
                    cids_now = created
                    errf.seek(0)
                    errf.truncate()
                    bad |= failed(errf, "start", self.parallel([rt.cmd("start", c) for c in created], errf))
                    t2 = time.perf_counter()
                    stuck = self.not_running(rt, [c for c in created if c not in bad])
                    if stuck:
                        errors.append(f"{len(stuck)} x not running `sleep` after `start`")
                    bad |= set(stuck)
                    # delete every container that exists, failed or not (delete -f of a stopped one)
                    existing = [c for c in cids if os.path.exists(os.path.join(rt.root, c))]
                    cids_now = existing
                    errf.seek(0)
                    errf.truncate()
                    t3 = time.perf_counter()
                    del_bad = self.parallel([rt.cmd("delete", "-f", c) for c in existing], errf)
                    t4 = time.perf_counter()
                    failed(errf, "delete -f", del_bad)
                finally:
                    self.memcg.enter(self.memcg.home)
        except Exception:
            # e.g. a timeout: remove what the round left before it is repeated or the run ends
            procs = [subprocess.Popen(rt.cmd("delete", "-f", c), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for c in cids if os.path.exists(os.path.join(rt.root, c))]
            for p in procs:
                p.wait()
            cgroup_rmdirs(made)
            self.memcg.rmdir(m, tries=20)
            raise
        leaves = [d for d in made if d.endswith(f"{self.a.cg_parent}/{m}")]
        res["leaks"] = self.leaks(rt, cids, leaves, [f"tp-{rt.name}-{i}" for i in range(count)])
        res["peak"] = self.memcg.read(m, "memory.max_usage_in_bytes") / 2**20
        res["create"] = t1 - t0
        res["create_start"] = t2 - t0
        res["delete"] = t4 - t3
        res["failed"] = len(bad)
        res["errors"] = errors
        cgroup_rmdirs(made)
        self.memcg.rmdir(m)
        if del_bad or len(bad) > count // 10:
            # not a measurement any more: repeat it (the caller counts it)
            raise Fail("; ".join(errors))
        return res

    def leaks(self, rt, cids, leaves, bundle_names):
        """What a round left behind after every `delete -f` returned: state directories of its
        containers, their cgroup directories (in any hierarchy of the round's parent), mounts
        of their bundles. Each leftover counts one."""
        n = sum(os.path.exists(os.path.join(rt.root, c)) for c in cids)
        for parent in leaves:
            try:
                n += sum(1 for e in os.scandir(parent) if e.is_dir())
            except FileNotFoundError:
                pass
        with open("/proc/self/mountinfo") as f:
            mounts = f.read()
        n += sum(mounts.count(f"/{b}/") for b in bundle_names)
        return n

    def throughput(self):
        a = self.a
        out = {rt.name: [] for rt in self.rts}
        n = len(self.rts)
        attempts = 3
        for k in range(-1, a.rounds):  # k = -1: warm-up (page cache, mount points in the rootfs)
            order = self.rts[k % n:] + self.rts[:k % n]
            for rt in order:
                count = min(10, a.count) if k < 0 else a.count
                for attempt in range(1, attempts + 1):
                    try:
                        r = self.throughput_round(rt, "warm" if k < 0 else f"r{k}-{attempt}", count)
                        break
                    except Fail as e:
                        # reported under the table: a failure is a result too
                        self.failed_rounds.setdefault(rt.name, []).append(str(e))
                        log(f"{a.env} {rt.name}: round failed (attempt {attempt}/{attempts}): {e}")
                        if attempt == attempts:
                            raise
                if r["errors"]:
                    log(f"{a.env} {rt.name}: {'; '.join(r['errors'])}")
                if k >= 0:
                    log(f"{a.env} round {k + 1}/{a.rounds} {rt.name}: create+start {r['create_start']:.2f}s "
                        f"delete {r['delete']:.2f}s peak {r['peak']:.1f} MiB, {r['failed']} failed")
                    out[rt.name].append(r)
        return out

    def cleanup(self):
        for rt in self.rts:
            for cid in sorted(self.ids[rt.name]):
                if os.path.exists(os.path.join(rt.root, cid)):
                    try:
                        subprocess.run(rt.cmd("delete", "-f", cid), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
                    except Exception:
                        pass
        cgroup_rmdirs(self.cg_made)
        self.memcg.cleanup()


def table(title, rows, names):
    base = names[0]
    out = [f"| {title} | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, vals, fmt in rows:
        cells = []
        for n in names:
            v = vals[n]
            cell = format(v, fmt)
            if n != base and fmt != "d":
                cell += f" ({v / vals[base]:.2f}x)"
            cells.append(cell)
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def measure(a):
    if len(a.pairs) % 2 or not a.pairs:
        raise SystemExit("all.py: give NAME CMD pairs")
    rts = [Runtime(n, c) for n, c in zip(a.pairs[0::2], a.pairs[1::2])]
    names = [rt.name for rt in rts]
    os.set_inheritable(a.memcg_fd, False)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    bench = Bench(a, rts)
    try:
        log(f"{a.env}: run /bin/true x{a.runs}")
        run = bench.run_latency()
        log(f"{a.env}: exec /bin/true x{a.runs}")
        exe = bench.exec_latency()
        log(f"{a.env}: max RSS of run /bin/true x{a.rss_runs}")
        rss = bench.run_rss()
        log(f"{a.env}: {a.count} containers in parallel x{a.rounds} rounds")
        tp = bench.throughput()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bench.cleanup()

    def med(d, f=lambda x: x):
        return {n: median([f(x) for x in d[n]]) for n in names}
    c = a.count
    rows = [
        ("`run` /bin/true, median ms", med(run), ".2f"),
        ("`run` /bin/true, p90 ms", {n: p90(run[n]) for n in names}, ".2f"),
        ("`exec` /bin/true into a running container, median ms", med(exe), ".2f"),
        ("`exec` /bin/true, p90 ms", {n: p90(exe[n]) for n in names}, ".2f"),
        (f"{c} `create` in parallel, then {c} `start` in parallel: s until all started", med(tp, lambda r: r["create_start"]), ".2f"),
        (f"&nbsp;&nbsp;of which the {c} `create`, s", med(tp, lambda r: r["create"]), ".2f"),
        (f"{c} `delete -f` in parallel, s", med(tp, lambda r: r["delete"]), ".2f"),
        (f"peak memory of that cycle (cgroup high-water mark), MiB", med(tp, lambda r: r["peak"]), ".1f"),
        (f"memory held by {c} created, not yet started containers, MiB", med(tp, lambda r: r["held_created"]), ".1f"),
        (f"leftovers after all `delete -f` returned (state dirs, cgroups, mounts), all rounds",
         {n: sum(r["leaks"] for r in tp[n]) for n in names}, "d"),
        (f"containers that failed (create, start, or not running after start), of {c * a.rounds}",
         {n: sum(r["failed"] for r in tp[n]) for n in names}, "d"),
        ("max RSS of the runtime process, `run` /bin/true, MiB", med(rss), ".2f"),
    ]
    print(f"### {a.title}")
    print()
    print(table("measurement (ratio to berth)", rows, names))
    print()
    for n in names:
        errs = [e for r in tp[n] for e in r["errors"]]
        if errs or n in bench.failed_rounds:
            text = f"**{n}: {sum(r['failed'] for r in tp[n])} of {c * a.rounds} containers failed** in the measured rounds"
            if errs:
                text += " (" + "; ".join(sorted(set(errs))[:3]) + ")"
            if n in bench.failed_rounds:
                text += (f"; {len(bench.failed_rounds[n])} round(s) with more than {c // 10} failures, or a failed "
                         f"`delete`, were repeated and are not in the medians (first: {bench.failed_rounds[n][0][:300]})")
            print(text + ".")
            print()
    print(f"Runs: {a.runs} `run` and `exec` per runtime after {a.warmup} warm-up rounds, "
          f"{a.rss_runs} RSS runs, {a.rounds} rounds of {c} containers after a warm-up round of "
          f"{min(10, c)}. Max RSS floor (/usr/bin/time on /bin/true itself): "
          f"{median(rss['floor']):.2f} MiB.")
    print()


def splice(a):
    name = a.marker
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    with open(a.section) as f:
        section = f.read().strip("\n")
    with open(a.file) as f:
        doc = f.read()
    block = f"{start}\n{section}\n{end}"
    if start in doc and end in doc and doc.index(start) < doc.index(end):
        doc = doc[:doc.index(start)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    tmp = a.file + ".tmp"
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, a.file)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--env", required=True, help="short name, also the cgroup sub-directory")
    m.add_argument("--title", required=True)
    m.add_argument("--work", required=True)
    m.add_argument("--rootfs", required=True)
    m.add_argument("--config", required=True)
    m.add_argument("--cg-parent", required=True)
    m.add_argument("--memcg-fd", type=int, required=True)
    m.add_argument("--runs", type=int, default=50)
    m.add_argument("--rss-runs", type=int, default=20)
    m.add_argument("--warmup", type=int, default=3)
    m.add_argument("--rounds", type=int, default=3)
    m.add_argument("--count", type=int, default=100)
    m.add_argument("pairs", nargs="+")
    s = sub.add_parser("splice")
    s.add_argument("file")
    s.add_argument("section")
    s.add_argument("--marker", default="all", help="the section's marker name (bench:NAME)")
    a = ap.parse_args()
    if a.mode == "measure":
        try:
            measure(a)
        except Fail as e:
            sys.exit(f"all.py: {e}")
        except KeyboardInterrupt:
            sys.exit("all.py: interrupted, cleaned up")
    else:
        splice(a)


if __name__ == "__main__":
    main()
