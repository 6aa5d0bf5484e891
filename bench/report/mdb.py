#!/usr/bin/env python3
"""mdb: the main job's runner. Runs the benchmark suite, prints a table per benchmark
with memdesc's ratio to glibc, jemalloc and mimalloc on every row, writes the raw
results, a Markdown report and PNG charts; compares two runs.

    mdb.py run --paths BUILD/bench/mdb_paths.json [--mode full|quick|smoke]
               [--group NAME]... [--reps N] [--out DIR]
    mdb.py compare OLD NEW        (result folders or their summary.json)
    mdb.py check DIR              (what the end-to-end test asserts about a run)

Groups: malloc (time of the malloc benchmarks), resident (resident memory per phase),
pages (page-level allocation, page -> descriptor lookup), metadata (bench_memdesc.c's
metadata bytes per MiB beside Linux's struct page), programs (real programs under
LD_PRELOAD). scripts/main is the front end; it builds first.

Numbers: the median of the repetitions (Google Benchmark's --benchmark_repetitions,
or runs of a program), with the spread (min to max) kept for compare. Single-threaded
benchmarks use CPU time (the machine may be shared: CPU time does not count the time
another process held the core), threaded ones wall time. Ratios are memdesc / peer:
below 1 memdesc is faster or smaller.
"""
import argparse
import datetime
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import charts  # noqa: E402
import programs  # noqa: E402

PEERS = ("glibc", "jemalloc", "mimalloc")

# Google Benchmark groups: filter, and a smaller filter for the smoke mode.
GB_GROUPS = {
    "malloc": ("^malloc/(pair|batch|producer_consumer|realloc_growth|realloc_buffers|"
               "large_churn|larson)/",
               "^malloc/(pair/.*/size:(16|65536)|batch/.*/size:32/order:2|"
               "producer_consumer/.*/size:64/.*|realloc_growth/.*/step:0|"
               "realloc_buffers/.*|large_churn/.*|larson/.*/threads:2)$"),
    "resident": ("^malloc/resident/", "^malloc/resident/"),
    "pages": ("^pages/", "^pages/(alloc_free/.*/pages:(1|17|512)|lookup/.*/MiB:64)$"),
    "metadata": ("^memdesc/meta/", "^memdesc/meta/single_page_folios"),
}
GROUPS = ("malloc", "resident", "pages", "metadata", "programs")

# mode -> (repetitions, --benchmark_min_time, resident-memory target MiB)
MODES = {"full": (5, 0.2, 128), "quick": (3, 0.01, 32), "smoke": (1, 0.0005, 4)}

# Table titles and units per benchmark family (the first two name components).
FAMILIES = {
    "malloc/pair": ("malloc + free of one block, one thread", "ns per pair"),
    "malloc/batch": ("10,000 mallocs, then the frees: order 0 FIFO, 1 LIFO, 2 shuffled",
                     "ns per malloc+free"),
    "malloc/producer_consumer": ("thread 0 allocates, thread 1 frees (remote frees)",
                                 "ns per block, wall"),
    "malloc/realloc_growth": ("realloc from 1 B to 1 MiB, step bytes (0: doubling)",
                              "ns per whole growth"),
    "malloc/realloc_buffers": ("two buffers grown in turn by 1/4 from 64 KiB to M MiB, "
                               "every new byte written", "ns per whole growth"),
    "malloc/large_churn": ("N live blocks of random sizes, 32 KiB to 256 KiB: free a "
                           "random one, allocate a new one", "ns per free+malloc"),
    "malloc/larson": ("Larson server workload: random sizes 16 B-1 KiB, blocks freed by "
                      "other threads", "ns per free+malloc, wall"),
    "malloc/resident": ("resident memory after each phase of a mixed workload (one child "
                        "process per allocator)", "MiB above the child's baseline"),
    "pages/alloc_free": ("N pages: folio_alloc_pages + folio_put against "
                         "aligned_alloc(4096, N * 4 KiB) + free, each page written",
                         "ns per pair"),
    "pages/lookup": ("page -> descriptor: pfn_to_memdesc against a flat word per page",
                     "ns per lookup"),
    "memdesc/meta": ("metadata per MiB in use (bench_memdesc.c) against Linux's 64-byte "
                     "struct page per 4 KiB", "bytes per MiB"),
    "programs/time": ("real programs under LD_PRELOAD: wall time", "seconds"),
    "programs/cpu": ("real programs under LD_PRELOAD: CPU time (user + system, the "
                     "process and its children; unlike wall time, not the time spent "
                     "waiting for a core)", "seconds"),
    "programs/rss": ("real programs under LD_PRELOAD: peak resident memory (ru_maxrss)",
                     "MiB"),
}

RESIDENT_PHASES = ("1_peak", "2_freed_3_4", "3_refill", "4_freed_all", "5_trimmed")


# --------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------

class Progress:
    """One line on stderr, rewritten in place: group, count, what runs, elapsed time."""

    def __init__(self):
        self.t0 = time.time()
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, group, done, total, what):
        now = time.time()
        if not self.tty and now - self.last < 5 and done != total:
            return
        self.last = now
        el = int(now - self.t0)
        line = "[%02d:%02d] %-9s %4d/%-4d %s" % (el // 60, el % 60, group, done, total, what)
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:150])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def end(self):
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


# --------------------------------------------------------------------------------------
# Running Google Benchmark
# --------------------------------------------------------------------------------------

def gb_list(binary, regex):
    out = subprocess.run([binary, "--benchmark_list_tests=true",
                          "--benchmark_filter=" + regex],
                         check=True, capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def gb_run(binary, group, regex, reps, min_time, out_json, env, progress):
    """Run one group; Google Benchmark's JSON goes to @out_json. Return it parsed."""
    names = set(gb_list(binary, regex))
    total = len(names) * reps
    argv = [binary, "--benchmark_filter=" + regex, "--benchmark_color=false",
            "--benchmark_repetitions=%d" % reps, "--benchmark_min_time=%g" % min_time,
            "--benchmark_out=" + out_json, "--benchmark_out_format=json"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=env)
    done, log = 0, []
    progress(group, 0, total, "starting")
    for line in p.stdout:
        log.append(line)
        word = line.split(" ", 1)[0]
        if word in names:
            done += 1
            progress(group, done, total, word)
    if p.wait() != 0:
        sys.stderr.write("".join(log[-30:]))
        raise SystemExit("memdesc-bench failed in group %s (exit %d)" % (group, p.returncode))
    with open(out_json) as f:
        return json.load(f)


def family_of(run_name):
    parts = run_name.split("/")
    return "/".join(parts[:2])


def row_of(run_name):
    """The row key: the name without the family, the allocator and the run options."""
    parts = run_name.split("/")[2:]
    keep = [p for p in parts if not (p.startswith("alloc:") or p == "real_time"
                                     or p.startswith("min_time:"))]
    return "/".join(keep) or "-"


def to_ns(value, unit):
    return value * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]


def stat(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "n": len(vals)}


class Table:
    """Rows x columns of statistics; columns[0] is memdesc, the others its peers."""

    def __init__(self, tid, columns=None, extra=None):
        self.id = tid
        self.title, self.unit = FAMILIES.get(tid, (tid, ""))
        self.columns = list(columns or [])
        self.extra = extra or []    # informational columns, no ratio
        self.rows = {}              # key -> column -> [values]

    def add(self, row, column, value):
        if column not in self.columns and column not in self.extra:
            self.columns.append(column)
        self.rows.setdefault(row, {}).setdefault(column, []).append(value)

    def summary(self):
        rows = []
        for key, cols in self.rows.items():
            rows.append({"row": key, "values": {c: stat(v) for c, v in cols.items()}})
        return {"id": self.id, "title": self.title, "unit": self.unit,
                "columns": self.columns, "extra": self.extra, "rows": rows}


def gb_tables(doc, tables):
    """Fold Google Benchmark's JSON into tables (one per family)."""
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        name = b["run_name"]
        fam = family_of(name)
        row = row_of(name)
        col = b.get("label") or "memdesc"
        err = b.get("error_occurred")
        if fam == "malloc/resident":
            t = tables.setdefault(fam, Table(fam, ["memdesc", *PEERS], ["live"]))
            for ph in RESIDENT_PHASES:
                t.add("phase:" + ph, col, None if err else b.get("rss_" + ph))
                if col == "memdesc" and not err:
                    t.add("phase:" + ph, "live", b.get("live_" + ph))
            continue
        if fam == "memdesc/meta":
            t = tables.setdefault(fam, Table(fam, ["memdesc (added)", "Linux struct page"],
                                             ["memdesc (process total)"]))
            t.add(row, "memdesc (added)", None if err else b.get("meta_delta_B_per_MiB"))
            t.add(row, "Linux struct page", None if err else
                  b.get("linux_struct_page_B_per_MiB"))
            t.add(row, "memdesc (process total)", None if err else
                  b.get("meta_total_B_per_MiB"))
            continue
        t = tables.setdefault(fam, Table(fam, ["memdesc"]))
        wall = "/real_time" in name
        value = b["real_time"] if wall else b["cpu_time"]
        t.add(row, col, None if err else to_ns(value, b.get("time_unit", "ns")))


def program_tables(records, tables):
    tt = tables.setdefault("programs/time", Table("programs/time", ["memdesc", *PEERS]))
    tc = tables.setdefault("programs/cpu", Table("programs/cpu", ["memdesc", *PEERS]))
    tm = tables.setdefault("programs/rss", Table("programs/rss", ["memdesc", *PEERS]))
    for r in records:
        tt.add(r["workload"], r["allocator"], r["seconds"])
        tc.add(r["workload"], r["allocator"], r["cpu_seconds"])
        tm.add(r["workload"], r["allocator"],
               None if r["maxrss_kib"] is None else r["maxrss_kib"] / 1024.0)


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------

def fmt(v):
    if v is None:
        return "n/a"
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 100:
        return "%.1f" % v
    if abs(v) >= 10:
        return "%.2f" % v
    return "%.3g" % v


def fmt_ratio(x):
    if x is None:
        return "n/a"
    return "%.2f" % x if x >= 0.1 else "%.2g" % x


def ratio(a, b):
    if a is None or b is None or b["median"] == 0:
        return None
    return a["median"] / b["median"]


# The programs on which the malloc issue states its time target (issue 5: geometric
# mean of time at or below mimalloc's; resident memory is a target per program).
GEOMEAN_PROGRAMS = ("python3", "gcc", "sort", "mtwork")


def geomean_row(t):
    """For programs/time and programs/cpu: the row of geometric means over
    GEOMEAN_PROGRAMS, when every column has all of them (each ratio is then the ratio of
    the means), else None."""
    if t["id"] not in ("programs/time", "programs/cpu"):
        return None
    by_row = {r["row"]: r["values"] for r in t["rows"]}
    if any(w not in by_row for w in GEOMEAN_PROGRAMS):
        return None
    values = {}
    for c in t["columns"]:
        meds = [by_row[w].get(c) and by_row[w][c]["median"] for w in GEOMEAN_PROGRAMS]
        if any(m is None or m <= 0 for m in meds):
            return None
        values[c] = {"median": math.exp(sum(math.log(m) for m in meds) / len(meds))}
    return {"row": "geometric mean (%s)" % ", ".join(GEOMEAN_PROGRAMS), "values": values}


def table_lines(t, markdown):
    """The table as text lines: value columns, extra columns, ratio columns."""
    cols = t["columns"]
    peers = cols[1:]
    head = ["row"] + cols + t["extra"] + ["%s/%s" % (cols[0], p) for p in peers]
    body = []
    gm = geomean_row(t)
    for r in t["rows"] + ([gm] if gm else []):
        v = r["values"]
        line = [r["row"]] + [fmt(v.get(c) and v[c]["median"]) for c in cols]
        line += [fmt(v.get(c) and v[c]["median"]) for c in t["extra"]]
        for p in peers:
            x = ratio(v.get(cols[0]), v.get(p))
            line.append(fmt_ratio(x))
        body.append(line)
    if markdown:
        out = ["| " + " | ".join(head) + " |",
               "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in body]
        return out
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    out = ["  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                     for i, h in enumerate(head))]
    for line in body:
        out.append("  ".join(x.ljust(widths[0]) if i == 0 else x.rjust(widths[i])
                             for i, x in enumerate(line)))
    return out


def print_tables(summary):
    for t in summary["tables"]:
        print()
        print("== %s: %s (%s)" % (t["id"], t["title"], t["unit"]))
        for line in table_lines(t, False):
            print("   " + line)


def behind(summary):
    """Rows where memdesc is behind jemalloc or mimalloc (median ratio above 1.05)."""
    out = []
    for t in summary["tables"]:
        if t["columns"][:1] != ["memdesc"]:
            continue
        for r in t["rows"]:
            for p in ("jemalloc", "mimalloc"):
                x = ratio(r["values"].get("memdesc"), r["values"].get(p))
                if x is not None and x > 1.05:
                    out.append((t["id"], r["row"], p, x))
    return out


def write_report(outdir, summary, chart_files):
    m = summary["meta"]
    lines = ["# memdesc beside glibc, jemalloc and mimalloc", "",
             "Run of %s, mode **%s** (%d repetitions, medians), commit `%s`, %s, "
             "%d CPUs, load average %s at the start and %s at the end."
             % (m["date"], m["mode"], m["reps"], m["commit"], m["cpu"], m["ncpu"],
                m["load_start"], m["load_end"]), "",
             "Ratios are memdesc / peer: below 1 memdesc is faster (or smaller). "
             "Single-threaded rows are CPU time, threaded rows wall time. Raw data: "
             "`bench-*.json` (Google Benchmark), `programs.csv` (whole programs), "
             "`summary.json` (the medians and spreads below, read by `--compare`).", ""]
    for t in summary["tables"]:
        lines += ["## %s" % t["id"], "", "%s (%s)." % (t["title"], t["unit"]), ""]
        lines += table_lines(t, True)
        lines.append("")
        if t["id"] in chart_files:
            lines += ["![%s](%s)" % (t["id"], chart_files[t["id"]]), ""]
    b = behind(summary)
    lines += ["## Where memdesc is behind jemalloc or mimalloc", ""]
    if b:
        lines += ["| table | row | peer | memdesc/peer |", "|---|---|---|---:|"]
        lines += ["| %s | %s | %s | %.2f |" % x for x in b]
    else:
        lines.append("Nowhere in this run.")
    lines.append("")
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(lines))


# --------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------

def git_commit():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        out = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, check=True).stdout.strip()
        return out or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def cmd_run(a):
    with open(a.paths) as f:
        paths = json.load(f)
    reps, min_time, rss_mib = MODES[a.mode]
    if a.reps:
        reps = a.reps
    groups = a.group or list(GROUPS)
    for g in groups:
        if g not in GROUPS:
            raise SystemExit("unknown group %r (one of %s)" % (g, ", ".join(GROUPS)))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = a.out or os.path.join(a.results, "%s-%s" % (stamp, a.mode))
    os.makedirs(outdir, exist_ok=True)
    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "mode": a.mode, "reps": reps, "min_time": min_time, "groups": groups,
            "commit": git_commit(), "cpu": cpu_model(), "ncpu": os.cpu_count(),
            "load_start": loadavg()}
    env = dict(os.environ, MDB_RSS_MIB=str(rss_mib))
    env.pop("LD_PRELOAD", None)
    progress = Progress()
    tables = {}
    t0 = time.time()
    try:
        for g in groups:
            if g == "programs":
                records = programs.run(a.mode, paths, progress)
                with open(os.path.join(outdir, "programs.csv"), "w") as f:
                    f.write("workload,allocator,run,seconds,cpu_seconds,maxrss_kib,status,"
                            "output\n")
                    for r in records:
                        f.write("%s,%s,%d,%s,%s,%s,%s,\"%s\"\n" % (
                            r["workload"], r["allocator"], r["run"],
                            "" if r["seconds"] is None else "%.4f" % r["seconds"],
                            "" if r["cpu_seconds"] is None else "%.4f" % r["cpu_seconds"],
                            "" if r["maxrss_kib"] is None else r["maxrss_kib"],
                            r["status"], r["output"].replace('"', "'")))
                program_tables(records, tables)
                for w, per in programs.summarize(records).items():
                    outs = {o for s in per.values() for o in s["outputs"]}
                    if len(outs) > 1:
                        sys.stderr.write("\nprograms: %s printed different first lines "
                                         "under different allocators: %s\n" % (w, outs))
                continue
            full, smoke = GB_GROUPS[g]
            doc = gb_run(paths["bench"], g, smoke if a.mode == "smoke" else full, reps,
                         min_time, os.path.join(outdir, "bench-%s.json" % g), env, progress)
            gb_tables(doc, tables)
    finally:
        progress.end()
    meta["load_end"] = loadavg()
    meta["seconds"] = round(time.time() - t0, 1)
    summary = {"meta": meta, "tables": [t.summary() for t in tables.values()]}
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    chart_files = charts.draw(outdir, summary)
    write_report(outdir, summary, chart_files)
    print_tables(summary)
    b = behind(summary)
    print()
    print("memdesc behind jemalloc or mimalloc (ratio > 1.05) in %d of the row/peer pairs"
          % len(b))
    print("mode %s, %d repetitions, %.0f s, load average %s -> %s"
          % (a.mode, reps, meta["seconds"], meta["load_start"], meta["load_end"]))
    print("results: %s (report.md, %d charts)" % (outdir, len(chart_files)))
    if a.results and not a.out:
        latest = os.path.join(a.results, "latest")
        if os.path.islink(latest):
            os.unlink(latest)
        if not os.path.exists(latest):
            os.symlink(os.path.basename(outdir), latest)
    return 0


def load_summary(path):
    if os.path.isdir(path):
        path = os.path.join(path, "summary.json")
    with open(path) as f:
        return json.load(f)


def cmd_compare(a):
    """Flag every value whose median moved by more than the noise of the two runs."""
    old, new = load_summary(a.old), load_summary(a.new)
    olds = {t["id"]: t for t in old["tables"]}
    flagged, compared = [], 0
    for t in new["tables"]:
        ot = olds.get(t["id"])
        if ot is None:
            continue
        orows = {r["row"]: r for r in ot["rows"]}
        for r in t["rows"]:
            o = orows.get(r["row"])
            if o is None:
                continue
            for c, nv in r["values"].items():
                ov = o["values"].get(c)
                if not nv or not ov or not ov["median"]:
                    continue
                compared += 1
                change = nv["median"] / ov["median"] - 1
                # Noise: the larger relative spread (max - min) / median of the two runs,
                # and never less than 5%.
                noise = max(0.05, *((s["max"] - s["min"]) / s["median"]
                                    for s in (nv, ov) if s["median"]))
                if abs(change) > noise:
                    flagged.append((t["id"], r["row"], c, ov["median"], nv["median"],
                                    change, noise))
    print("compared %d values of %s (%s) and %s (%s)"
          % (compared, a.old, old["meta"]["mode"], a.new, new["meta"]["mode"]))
    if not flagged:
        print("no change beyond the noise")
        return 0
    print("%d changes beyond the noise (+ is slower or bigger):" % len(flagged))
    w = max(len("%s %s %s" % f[:3]) for f in flagged)
    for tid, row, col, o, n, ch, noise in flagged:
        print("  %-*s  %10s -> %-10s %+6.1f%%  (noise %.1f%%)"
              % (w, "%s %s %s" % (tid, row, col), fmt(o), fmt(n), ch * 100, noise * 100))
    return 0


def cmd_check(a):
    """A finished run: every row has a number in every column; report and charts."""
    s = load_summary(a.dir)
    problems = []
    for t in s["tables"]:
        if not t["rows"]:
            problems.append("%s: no rows" % t["id"])
        for r in t["rows"]:
            for c in t["columns"]:
                v = r["values"].get(c)
                if not v or v["median"] is None:
                    problems.append("%s %s: no number for %s" % (t["id"], r["row"], c))
    ids = {t["id"] for t in s["tables"]}
    want = {"malloc/pair", "malloc/batch", "malloc/producer_consumer",
            "malloc/realloc_growth", "malloc/realloc_buffers", "malloc/large_churn",
            "malloc/larson",
            "malloc/resident",
            "pages/alloc_free", "pages/lookup", "memdesc/meta", "programs/time",
            "programs/cpu", "programs/rss"}
    groups = set(s["meta"]["groups"])
    for tid in want:
        g = {"malloc/resident": "resident", "memdesc/meta": "metadata"}.get(
            tid, tid.split("/")[0])
        if g in groups and tid not in ids:
            problems.append("table %s missing" % tid)
    report = os.path.join(a.dir, "report.md")
    if not os.path.isfile(report) or os.path.getsize(report) == 0:
        problems.append("report.md missing")
    else:
        times = next((t for t in s["tables"] if t["id"] == "programs/time"), None)
        gm = times and geomean_row(times)
        with open(report) as f:
            text = f.read()
        if times and (gm is None or "| %s |" % gm["row"] not in text):
            problems.append("programs/time: no geometric-mean row in report.md")
    cdir = os.path.join(a.dir, "charts")
    pngs = [p for p in os.listdir(cdir) if p.endswith(".png")] if os.path.isdir(cdir) else []
    for tid in ids:
        name = charts.file_name(tid)
        if name not in pngs:
            problems.append("chart %s missing" % name)
    for p in pngs:
        with open(os.path.join(cdir, p), "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                problems.append("chart %s is not a PNG" % p)
    for p in problems:
        print("check: " + p)
    print("check: %d tables, %d charts, %d problems" % (len(ids), len(pngs), len(problems)))
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--paths", required=True, help="mdb_paths.json of a build")
    r.add_argument("--mode", choices=sorted(MODES), default="full")
    r.add_argument("--group", action="append", help="one of %s" % ", ".join(GROUPS))
    r.add_argument("--reps", type=int, help="repetitions (default per mode)")
    r.add_argument("--out", help="result folder (default RESULTS/<date>-<mode>)")
    r.add_argument("--results", default="results", help="parent of the result folders")
    c = sub.add_parser("compare")
    c.add_argument("old")
    c.add_argument("new")
    k = sub.add_parser("check")
    k.add_argument("dir")
    a = ap.parse_args()
    if a.cmd == "run" and shutil.which("gnuplot") is None:
        raise SystemExit("gnuplot is missing (Debian: gnuplot-nox); scripts/setup installs it")
    return {"run": cmd_run, "compare": cmd_compare, "check": cmd_check}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
