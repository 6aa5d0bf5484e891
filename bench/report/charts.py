"""PNG charts of a run's tables with gnuplot (Debian's gnuplot-nox, pngcairo terminal).

One chart per table: clustered bars, one cluster per row, one bar per allocator (the
medians), a logarithmic axis when the values span more than 30x. The data file and the
gnuplot script are kept beside each PNG (charts/<table>.dat, .gp) so that a chart can
be redrawn or restyled by hand.
"""
import os
import subprocess

COLORS = {"memdesc": "#d62728", "glibc": "#7f7f7f", "jemalloc": "#1f77b4",
          "mimalloc": "#2ca02c", "flat_array": "#9467bd", "Linux struct page": "#7f7f7f",
          "memdesc (added)": "#d62728"}


def file_name(tid):
    return tid.replace("/", "_") + ".png"


def _quote(s):
    return '"%s"' % s.replace('"', "'")


def _esc(s):
    return s.replace("\\", "\\\\").replace("'", "''")


def draw_one(cdir, t):
    """Draw table @t into @cdir. Return the PNG's name, or None if it has no data."""
    base = os.path.join(cdir, t["id"].replace("/", "_"))
    cols = t["columns"]
    values = []
    with open(base + ".dat", "w") as f:
        f.write("# row " + " ".join(_quote(c) for c in cols) + "\n")
        for r in t["rows"]:
            cells = []
            for c in cols:
                v = r["values"].get(c)
                if v and v["median"] is not None:
                    cells.append("%.6g" % v["median"])
                    values.append(v["median"])
                else:
                    cells.append("?")
            f.write(_quote(r["row"]) + " " + " ".join(cells) + "\n")
    if not values:
        return None
    positive = [v for v in values if v > 0]
    log = len(positive) == len(values) and max(positive) / min(positive) > 30
    width = max(800, min(1600, 120 + 22 * len(cols) * len(t["rows"])))
    plots = []
    for i, c in enumerate(cols):
        color = COLORS.get(c, "#ff7f0e")
        src = "'%s'" % _esc(base + ".dat") if i == 0 else "''"
        xtic = ":xtic(1)" if i == 0 else ""
        plots.append("%s using %d%s title '%s' lc rgb '%s'" % (src, i + 2, xtic, _esc(c), color))
    script = [
        "set terminal pngcairo size %d,480 font 'sans,9'" % width,
        "set output '%s'" % _esc(base + ".png"),
        "set title '%s' noenhanced" % _esc("%s: %s" % (t["id"], t["title"])),
        "set datafile missing '?'",
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set xrange [-0.6:%g]" % (len(t["rows"]) - 0.4),
        "set key top left noenhanced",
        "set xtics rotate by -30 noenhanced",
        "set ylabel '%s' noenhanced" % _esc(t["unit"] + (" (log scale)" if log else "")),
        "set grid ytics",
        "set yrange [%s:*]" % ("*" if log else "0"),
        "set logscale y" if log else "unset logscale y",
        "plot " + ", \\\n     ".join(plots),
    ]
    with open(base + ".gp", "w") as f:
        f.write("\n".join(script) + "\n")
    res = subprocess.run(["gnuplot", base + ".gp"], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("gnuplot failed on %s: %s" % (base + ".gp", res.stderr[-800:]))
    return os.path.basename(base + ".png")


def draw(outdir, summary):
    """Draw every table of @summary; return table id -> chart path relative to @outdir."""
    cdir = os.path.join(outdir, "charts")
    os.makedirs(cdir, exist_ok=True)
    out = {}
    for t in summary["tables"]:
        name = draw_one(cdir, t)
        if name:
            out[t["id"]] = "charts/" + name
    return out
