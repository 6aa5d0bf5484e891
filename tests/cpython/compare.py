#!/usr/bin/env python3
"""CPython's own regression tests with and without memdesc as malloc.

Runs the test modules listed in modules.txt (beside this file) with Debian's
/usr/bin/python3 and its test suite (package libpython3.11-testsuite), once with the C
library's malloc and once with LD_PRELOAD=<libmemdesc-malloc.so>, both with
PYTHONMALLOC=malloc so that every Python object, not only the blocks above pymalloc's
512 bytes, comes from the malloc under test. Each run is `python -m test -j N
--junit-xml`; the result of every test case (passed, failed, error, skipped) is read
from the XML and the two runs must agree exactly: per module the same counts and the
same failing and skipped tests. Prints a table per module (counts, and the seconds its
test cases took in each run) and writes it to --out.

Lines "!PATTERN  # why" in modules.txt name test cases left out of both runs (regrtest
--ignore): known differences, printed with every report, each with its reason.

A module whose two runs differ is run again, alone, both ways: a difference that does
not come back is reported as FLAKY (with the first results) and does not fail the run;
one that does fails it. Exit 0 when the runs agree, 1 when not, 77 (skip) when
/usr/bin/python3 or its test suite is missing.

    compare.py LIBMEMDESC_MALLOC_SO [--jobs N] [--out FILE] [--modules test_a,test_b]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

PYTHON = "/usr/bin/python3"
SKIP = 77


def suite_dir():
    """The test package of Debian's python3, or None."""
    try:
        out = subprocess.run([PYTHON, "-c", "import test, os; print(os.path.dirname(test.__file__))"],
                             capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    d = out.stdout.strip()
    return d if out.returncode == 0 and os.path.exists(os.path.join(d, "test_dict.py")) else None


def parse(xml_path):
    """{module: {test: status}} from regrtest's JUnit XML; status in
    passed/failure/error/skipped."""
    res = {}
    root = ET.parse(xml_path).getroot()
    for tc in root.iter("testcase"):
        name = tc.get("name", "")
        parts = name.split(".")
        module = parts[1] if len(parts) > 1 and parts[0] == "test" else parts[0]
        status = "passed"
        for kind in ("failure", "error", "skipped"):
            if tc.find(kind) is not None:
                status = kind
                break
        res.setdefault(module, {})[name] = (status, float(tc.get("time", "0") or 0))
    return res


def run(modules, ignores, jobs, preload, workdir, tag):
    """One regrtest run; returns ({module: {test: (status, time)}}, seconds, rc)."""
    xml_path = os.path.join(workdir, f"{tag}.xml")
    env = dict(os.environ, PYTHONMALLOC="malloc", PYTHONDONTWRITEBYTECODE="1")
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    cmd = [PYTHON, "-m", "test", "-j", str(jobs), "--timeout", "150",
           "--tempdir", os.path.join(workdir, tag), "--junit-xml", xml_path]
    for pat, _ in ignores:
        cmd += ["--ignore", pat]
    cmd += modules
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=workdir, capture_output=True, text=True)
    secs = time.monotonic() - t0
    with open(os.path.join(workdir, f"{tag}.log"), "w") as f:
        f.write(proc.stdout + proc.stderr)
    if not os.path.exists(xml_path):
        sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        return {}, secs, proc.returncode
    return parse(xml_path), secs, proc.returncode


def counts(tests):
    c = {"passed": 0, "failure": 0, "error": 0, "skipped": 0}
    for status, _ in tests.values():
        c[status] += 1
    return c


def verdict(a, b):
    """The differences between two runs of one module (empty: the same)."""
    if a is None or b is None:
        return ["missing from the %s run" % ("base" if a is None else "memdesc")]
    diffs = []
    for name in sorted(set(a) | set(b)):
        sa = a.get(name, ("absent", 0))[0]
        sb = b.get(name, ("absent", 0))[0]
        if sa != sb:
            diffs.append(f"{name}: {sa} without, {sb} with memdesc")
    return diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("preload", help="libmemdesc-malloc.so")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", help="write the table here too")
    ap.add_argument("--modules", help="comma-separated, instead of modules.txt")
    args = ap.parse_args()

    if not os.access(PYTHON, os.X_OK) or suite_dir() is None:
        print(f"cpython: SKIP: {PYTHON} or its test suite (libpython3.11-testsuite) is missing")
        return SKIP
    modules, ignores = [], []
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "modules.txt")) as f:
        for line in f:
            item, _, why = line.partition("#")
            item = item.strip()
            if item.startswith("!"):
                ignores.append((item[1:], why.strip()))
            elif item:
                modules.append(item)
    if args.modules:
        modules = args.modules.split(",")
    preload = os.path.abspath(args.preload)

    with tempfile.TemporaryDirectory(prefix="memdesc-cpython-") as work:
        base, t_base, _ = run(modules, ignores, args.jobs, None, work, "base")
        md, t_md, _ = run(modules, ignores, args.jobs, preload, work, "memdesc")
        failed, flaky = [], []
        for m in modules:
            diffs = verdict(base.get(m), md.get(m))
            if not diffs:
                continue
            b2, _, _ = run([m], ignores, 1, None, work, f"base-{m}")
            m2, _, _ = run([m], ignores, 1, preload, work, f"memdesc-{m}")
            if verdict(b2.get(m), m2.get(m)):
                failed.append((m, diffs))
            else:
                flaky.append((m, diffs))
                base[m], md[m] = b2[m], m2[m]

        ver = subprocess.run([PYTHON, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
        lines = [f"CPython {ver} test suite via {PYTHON}, PYTHONMALLOC=malloc, "
                 f"-j {args.jobs}; memdesc: LD_PRELOAD={preload}",
                 f"{'module':<22} {'tests':>5} {'pass':>5} {'fail':>4} {'err':>4} {'skip':>4}"
                 f"  {'same':>4}  {'s without':>9} {'s with':>7}"]
        for m in modules:
            a, b = base.get(m, {}), md.get(m, {})
            c = counts(a)
            same = "yes" if not verdict(base.get(m), md.get(m)) else "NO"
            ta = sum(t for _, t in a.values())
            tb = sum(t for _, t in b.values())
            lines.append(f"{m:<22} {len(a):>5} {c['passed']:>5} {c['failure']:>4} {c['error']:>4} "
                         f"{c['skipped']:>4}  {same:>4}  {ta:>9.2f} {tb:>7.2f}")
        tot_a = sum(len(base.get(m, {})) for m in modules)
        lines.append(f"{len(modules)} modules, {tot_a} test cases; wall time of the runs: "
                     f"{t_base:.1f} s without, {t_md:.1f} s with memdesc")
        for pat, why in ignores:
            lines.append(f"LEFT OUT of both runs: {pat}: {why}")
        for m, diffs in flaky:
            lines.append(f"FLAKY {m}: the first runs differed, a rerun of both agreed: "
                         + "; ".join(diffs[:5]))
        for m, diffs in failed:
            lines.append(f"DIFFERENT {m}: " + "; ".join(diffs[:20]))
        report = "\n".join(lines) + "\n"
        sys.stdout.write(report)
        if args.out:
            with open(args.out, "w") as f:
                f.write(report)
        if failed:
            for tag in ("base", "memdesc"):
                with open(os.path.join(work, f"{tag}.log")) as f:
                    sys.stdout.write(f"--- regrtest output, {tag} run (end) ---\n" + f.read()[-3000:])
            return 1
    print(f"cpython: {len(modules)} modules: the same results with and without memdesc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
