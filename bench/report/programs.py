"""Whole-program benchmarks: real programs timed under each allocator by LD_PRELOAD.

Each workload runs under memdesc (this build's libmemdesc-malloc.so), glibc (nothing
preloaded), jemalloc (libjemalloc.so.2) and mimalloc (libmimalloc.so.2), several times,
the allocators interleaved run by run so that a change in the machine's load hits them
alike, and their order rotated from run to run, so that none always runs first (after
another workload) or right after the same allocator. For every run: wall time and peak
resident memory (ru_maxrss from wait4, which covers the process and the children it
waited for: gcc's cc1, as and ld). The first line of a program's output is kept: every
allocator must produce the same one.

Workloads (sizes per mode in SIZES):
    python3  bench/programs/pywork.py: dictionaries, sorting, JSON, bytes
    gcc      gcc -O2 building one program from N generated C files (driver, cc1, as, ld)
    sort     sort(1) of generated lines (LC_ALL=C)
    mtwork   memdesc-mtwork: threads that allocate, realloc, hand blocks to each other
    mtwork-small  the same with no large blocks (LARGE_EVERY 0): with mtwork, it tells
             what the small blocks cost from what the 4-260 KiB ones add
    fork     memdesc-forkbench: N times fork, the child mallocs, frees and _exits, the
             parent waits; no heap in use (the fork handlers' cost)
    fork-heap8  the same with 8 MiB of heap in use (page tables to copy)
python3, gcc and sort are the Debian packages' programs, /usr/bin/NAME (what
scripts/setup installs), not whatever comes first in PATH: a pyenv or conda python3
there is another build, with its own allocation pattern and figures. Where
/usr/bin/NAME is missing, PATH's. In the full mode, the programs of the malloc layer's
preload tests (tests/preload/), when they are in the tree:
    python3-alloc_heavy  tests/preload/alloc_heavy.py (small objects, big buffers,
                         cycles, threads)
    mt_alloc             tests/preload/mt_alloc.c (8 threads, every malloc entry point)
"""
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(os.path.dirname(HERE), "programs")

# mode -> (runs per allocator, pywork rounds and entries, gcc files, sort lines,
#          mtwork threads and operations per thread, forks)
SIZES = {
    "full": (5, (4, 60000), 12, 1000000, 4, 1000000, 2000),
    "quick": (3, (1, 60000), 6, 200000, 2, 200000, 500),
    "smoke": (1, (1, 5000), 1, 20000, 2, 20000, 50),
}

ALLOCATORS = ("memdesc", "glibc", "jemalloc", "mimalloc")
SHORT = {"memdesc": "md", "glibc": "gl", "jemalloc": "je", "mimalloc": "mi"}


def _gen_c_file(path, k):
    """A C file with enough functions, switches and structs to keep cc1 busy."""
    rnd = random.Random(k)
    lines = ["#include <stddef.h>", "#include <string.h>", ""]
    lines.append("struct rec%d { int a[%d]; double d; const char *s; };" % (k, 4 + k % 5))
    for f in range(40):
        lines.append("int f%d_%d(int x, struct rec%d *r)" % (k, f, k))
        lines.append("{")
        lines.append("\tint acc = x;")
        lines.append("\tfor (int i = 0; i < %d; i++) {" % rnd.randint(3, 50))
        lines.append("\t\tswitch ((acc + i) %% %d) {" % 12)
        for c in range(12):
            lines.append("\t\tcase %d: acc = acc * %d + r->a[%d] - i; break;"
                         % (c, rnd.randint(2, 97), c % 4))
        lines.append("\t\tdefault: acc ^= (int)strlen(r->s ? r->s : \"\");")
        lines.append("\t\t}")
        lines.append("\t\tr->d += acc * 0.5;")
        lines.append("\t}")
        lines.append("\treturn acc;")
        lines.append("}")
        lines.append("")
    if k == 0:
        lines.append("int main(void) { struct rec0 r = { {0}, 0, \"x\" };"
                     " return f0_0(1, &r) & 1; }")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _gen_lines(path, n):
    rnd = random.Random(1)
    words = ["alpha", "beta", "gamma", "delta", "memdesc", "folio", "slab", "xarray",
             "vmem", "magazine", "page", "radix", "tree", "node", "arena"]
    with open(path, "w") as f:
        for i in range(n):
            f.write("%s %d %s %08x\n" % (rnd.choice(words), rnd.randrange(1 << 30),
                                          rnd.choice(words), i * 2654435761 & 0xffffffff))


def system_program(name):
    """The Debian package's @name (/usr/bin/@name), else @name as PATH finds it."""
    path = os.path.join("/usr/bin", name)
    if os.access(path, os.X_OK):
        return path
    return shutil.which(name) or name


def workloads(mode, paths, tmp):
    """(name, argv, cwd, env additions) for each workload of @mode, inputs made in @tmp."""
    _, (rounds, entries), nfiles, nlines, threads, ops, forks = SIZES[mode]
    src = os.path.join(tmp, "gcc")
    os.makedirs(src, exist_ok=True)
    for k in range(nfiles):
        _gen_c_file(os.path.join(src, "f%d.c" % k), k)
    lines = os.path.join(tmp, "lines.txt")
    _gen_lines(lines, nlines)
    cfiles = ["f%d.c" % k for k in range(nfiles)]
    python3 = system_program("python3")
    extra = []
    if mode == "full":
        heavy = os.path.join(os.path.dirname(os.path.dirname(PROGRAMS)), "tests", "preload",
                             "alloc_heavy.py")
        if os.path.isfile(heavy):
            extra.append(("python3-alloc_heavy", [python3, heavy], tmp, {}))
        if paths.get("mt_alloc"):
            extra.append(("mt_alloc", [paths["mt_alloc"]], tmp, {}))
    if paths.get("forkbench"):
        extra.append(("fork", [paths["forkbench"], str(forks), "0"], tmp, {}))
        extra.append(("fork-heap8", [paths["forkbench"], str(forks), "8"], tmp, {}))
    return [
        ("python3", [python3, os.path.join(PROGRAMS, "pywork.py"), str(rounds),
                     str(entries)],
         tmp, {}),
        ("gcc", [system_program("gcc"), "-O2", "-o", os.path.join(tmp, "prog")] + cfiles, src,
         {}),
        ("sort", [system_program("sort"), "-o", os.path.join(tmp, "sorted.txt"), lines], tmp,
         {"LC_ALL": "C"}),
        ("mtwork", [paths["mtwork"], str(threads), str(ops)], tmp, {}),
        ("mtwork-small", [paths["mtwork"], str(threads), str(ops), "0"], tmp, {}),
    ] + extra


def run_order(r):
    """The allocators in the order of run @r (from 0): ALLOCATORS rotated by r."""
    k = r % len(ALLOCATORS)
    return ALLOCATORS[k:] + ALLOCATORS[:k]


def run_one(argv, cwd, env):
    """Run once; return (seconds, CPU seconds, peak RSS KiB, exit code, first output
    line). CPU seconds: user + system time of the process and the children it waited
    for, from wait4 like ru_maxrss. It leaves out the time spent waiting for a core, so
    where it disagrees with wall time the machine's load moved the wall time; wall time
    stays the figure the targets are stated in."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        p.returncode = rc  # reaped here, by wait4: Popen must not wait again
        out.seek(0)
        err.seek(0)
        first = out.read().decode(errors="replace").splitlines()[:1]
        if rc != 0:
            sys.stderr.write("\n%s failed (%d): %s\n"
                             % (argv[0], rc, err.read().decode(errors="replace")[-500:]))
    cpu = ru.ru_utime + ru.ru_stime
    return seconds, cpu, ru.ru_maxrss, rc, first[0] if first else ""


def run(mode, paths, progress, only=None):
    """Run every workload (or those named in @only); return the per-run records."""
    runs = SIZES[mode][0]
    records = []
    with tempfile.TemporaryDirectory(prefix="mdb-programs-") as tmp:
        wl = [w for w in workloads(mode, paths, tmp) if not only or w[0] in only]
        total = len(wl) * runs * len(ALLOCATORS)
        done = 0
        for name, argv, cwd, extra in wl:
            for r in range(runs):
                for alloc in run_order(r):
                    lib = paths["preload"].get(alloc, "")
                    done += 1
                    progress("programs", done, total, "%s under %s, run %d" % (name, alloc, r + 1))
                    if alloc != "glibc" and not lib:
                        records.append(dict(workload=name, allocator=alloc, run=r + 1,
                                            seconds=None, cpu_seconds=None, maxrss_kib=None,
                                            status="missing",
                                            output=""))
                        continue
                    env = dict(os.environ, **extra)
                    env.pop("LD_PRELOAD", None)
                    if lib:
                        env["LD_PRELOAD"] = lib
                    sec, cpu, rss, rc, first = run_one(argv, cwd, env)
                    records.append(dict(workload=name, allocator=alloc, run=r + 1,
                                        seconds=sec if rc == 0 else None,
                                        cpu_seconds=cpu if rc == 0 else None,
                                        maxrss_kib=rss if rc == 0 else None,
                                        status="ok" if rc == 0 else "exit %d" % rc,
                                        output=first))
    return records


def summarize(records):
    """workload -> allocator -> {time: stats, rss: stats, outputs: set}."""
    out = {}
    for rec in records:
        slot = out.setdefault(rec["workload"], {}).setdefault(
            rec["allocator"], {"t": [], "c": [], "m": [], "outputs": set()})
        if rec["seconds"] is not None:
            slot["t"].append(rec["seconds"])
            slot["c"].append(rec["cpu_seconds"])
            slot["m"].append(rec["maxrss_kib"] / 1024.0)
            slot["outputs"].add(rec["output"])
    return out


def stats(values):
    """{median, min, max, n} of @values, or None when empty."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def print_row(name, values, fmt):
    """One line: @values (allocator -> number or None) by @fmt, then each one's ratio to
    glibc's."""
    g = values.get("glibc")
    row = " ".join(fmt % values[al] if values.get(al) else "%10s" % "-" for al in ALLOCATORS)
    rat = " ".join("%9.2f" % (values[al] / g) if values.get(al) and g else "%9s" % "-"
                   for al in ALLOCATORS if al != "glibc")
    print("%-12s %s   %s" % (name, row, rat))


def geomeans(medians):
    """Allocator -> geometric mean of its medians over the workloads (@medians: workload
    -> allocator -> median or None), for the allocators with a median everywhere."""
    out = {}
    for al in ALLOCATORS:
        meds = [per.get(al) for per in medians.values()]
        if all(meds):
            out[al] = math.exp(sum(math.log(m) for m in meds) / len(meds))
    return out


def main():
    """Run some workloads alone and print median wall times, CPU times (user + system)
    and peak resident memory, and their ratios to glibc's:
    programs.py --paths BUILD/bench/mdb_paths.json [--mode quick] [--runs N] fork,fork-heap8
    """
    import argparse
    import json
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--paths", required=True)
    ap.add_argument("--mode", choices=sorted(SIZES), default="quick")
    ap.add_argument("--runs", type=int, help="runs per allocator (default per mode)")
    ap.add_argument("only", help="comma-separated workload names")
    a = ap.parse_args()
    with open(a.paths) as f:
        paths = json.load(f)
    if a.runs:
        SIZES[a.mode] = (a.runs,) + SIZES[a.mode][1:]
    recs = run(a.mode, paths, lambda *x: None, only=set(a.only.split(",")))
    summary = summarize(recs)
    for key, title, fmt in (("t", "wall s", "%10.4f"), ("c", "cpu s", "%10.4f"),
                            ("m", "peak MiB", "%10.1f")):
        print("%-12s %s" % (title, " ".join("%10s" % al for al in ALLOCATORS))
              + "   " + " ".join("%9s" % (SHORT[al] + "/glibc") for al in ALLOCATORS
                                  if al != "glibc"))
        medians = {w: {al: (stats(per[al][key]) or {}).get("median") for al in per}
                   for w, per in summary.items()}
        for w, med in medians.items():
            print_row(w, med, fmt)
        if key != "m" and len(medians) > 1:
            print_row("geomean", geomeans(medians), fmt)


if __name__ == "__main__":
    main()
