#!/usr/bin/env python3
"""Small statistics for bench/run.sh: latencies from stamp logs, overlap."""
import json
import sys


def stamps(path):
    with open(path) as f:
        return sorted(int(line.split()[1]) for line in f if line.strip())


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def gaps(path):
    """Hand-off gaps in ms between consecutive stamps: p50 p99 max n."""
    s = stamps(path)
    d = [(b - a) / 1e6 for a, b in zip(s, s[1:])]
    print("%.3f %.3f %.3f %d" % (pct(d, 50), pct(d, 99), max(d), len(d)))


def overlap(path):
    """Largest number of s..e intervals open at once."""
    ev = []
    with open(path) as f:
        for line in f:
            t, ns = line.split()
            ev.append((int(ns), 0 if t == "e" else 1))
    n = m = 0
    for _, k in sorted(ev):
        n += 1 if k else -1
        m = max(m, n)
    print(m)


def drain(path):
    """Seconds from the holder's stamp (h) to the last probe's (s)."""
    h = s = 0
    with open(path) as f:
        for line in f:
            t, ns = line.split()
            if t == "h":
                h = int(ns)
            else:
                s = max(s, int(ns))
    print("%.3f" % ((s - h) / 1e9))


def order(path, queue):
    """Whether the probes (tagged with their wrapper's PID) started in the
    order of the queue that --status --json showed."""
    with open(queue) as f:
        want = [w["wrapper_pid"] for w in json.load(f)["waiters"]]
    with open(path) as f:
        ev = sorted((int(ns), int(t)) for t, ns in (l.split() for l in f))
    got = [t for _, t in ev]
    print("in order (%d of %d)" % (len(got), len(want)) if got == want
          else "NOT in order (%d started, %d queued)" % (len(got), len(want)))


def med(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def compare(raw, meta, reps, n_lat, n_drain, nj, n_sem, *builds):
    """bench/compare.sh's tables: each cell the median of its rounds."""
    cells = {}
    with open(raw) as f:
        for line in f:
            fs, row, col, val = line.rstrip("\n").split("\t")
            cells.setdefault((fs, row, col), []).append(
                [float(x) for x in val.split()])

    def cell(fs, row, col):
        v = cells.get((fs, row, col))
        if not v:
            return None
        return [med([r[i] for r in v]) for i in range(len(v[0]))]

    def fmt(c, nd):
        return "–" if c is None else " / ".join("%.*f" % (nd, x) for x in c)

    cols = []
    for b in builds:
        cols += [b, b + " -x"]
    cols += ["setlock", "flock", "tsp", "sem", "xargs", "timeout", "true"]
    rows = [
        ("lat", "hand-off p50 / p99, ms (%s hand-offs; sem %s; xargs -P1: "
         "no gate)" % (n_lat, n_sem), 3),
        ("latkill", "hand-off, holder SIGKILLed, p50 / p99, ms", 3),
        ("drain", "%s x true queued at limit 1, drain s (xargs -P1: no "
         "gate)" % n_drain, 3),
        ("tp", "%s x sleep 0.02 at limit 5, s (flock: 5 lock files; "
         "xargs -P5)" % nj, 3),
        ("one", "one call on an idle gate, ms (`X -- /bin/true`)", 3),
        ("pss", "PSS of one of 5 waiters, kB", 0),
    ]
    with open(meta) as f:
        print("## Side by side: issue 12's table (`bench/compare.sh`)\n")
        print("Each cell is the median of %s round(s); every round measures "
              "every cell once, in turn, so load from other work falls on "
              "all columns alike. The machine is shared (2 cores): compare "
              "within this run only.\n" % reps)
        for line in f:
            print("- " + line.strip())
        print()
    for fs in ("tmpfs", "ext4"):
        print("### State and lock files on %s\n" % fs)
        print("| what | " + " | ".join(cols) + " |")
        print("|---|" + "---:|" * len(cols))
        for row, label, nd in rows:
            print("| %s | " % label + " | ".join(
                fmt(cell(fs, row, c), nd) for c in cols) + " |")
        print()
    print("### Against the issue's goals (ratios of the medians above)\n")
    print("| build | fs | hand-off p50 vs flock / -x vs setlock | "
          "p99 fork / -x, ms | drain vs flock / -x vs setlock | "
          "throughput vs xargs -P5, fork / -x | one call vs timeout / "
          "-x vs setlock | one call ext4 / tmpfs, fork / -x | "
          "PSS vs flock / -x vs setlock |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")

    def r(fs, row, a, b, i=0):
        x, y = cell(fs, row, a), cell(fs, row, b)
        return "–" if x is None or y is None else "%.2f" % (x[i] / y[i])
    for b in builds:
        bx = b + " -x"
        for fs in ("tmpfs", "ext4"):
            one_e = [cell("ext4", "one", c) for c in (b, bx)]
            one_t = [cell("tmpfs", "one", c) for c in (b, bx)]
            ext = " / ".join("–" if e is None or t is None else
                             "%.2f" % (e[0] / t[0])
                             for e, t in zip(one_e, one_t))
            p99 = " / ".join(fmt(cell(fs, "lat", c) and
                                 cell(fs, "lat", c)[1:], 3) for c in (b, bx))
            print("| %s | %s | %s / %s | %s | %s / %s | %s / %s | %s / %s "
                  "| %s | %s / %s |" % (
                      b, fs, r(fs, "lat", b, "flock"),
                      r(fs, "lat", bx, "setlock"), p99,
                      r(fs, "drain", b, "flock"),
                      r(fs, "drain", bx, "setlock"),
                      r(fs, "tp", b, "xargs"), r(fs, "tp", bx, "xargs"),
                      r(fs, "one", b, "timeout"), r(fs, "one", bx, "setlock"),
                      ext if fs == "ext4" else "",
                      r(fs, "pss", b, "flock"), r(fs, "pss", bx, "setlock")))
    print()
    print("Goals: hand-off and drain fork mode <= flock and -x <= setlock "
          "(ratio <= 1), p99 < 1 ms; throughput <= 1.05; one call fork <= "
          "1 and -x <= 1.05; ext4 / tmpfs <= 1.05; PSS <= flock.")


def plotdata(raw, *builds):
    """For gnuplot: per column, the median hand-off p50 and one call (ms)
    on tmpfs and ext4 (sem left out: 100x the others)."""
    cells = {}
    with open(raw) as f:
        for line in f:
            fs, row, col, val = line.rstrip("\n").split("\t")
            cells.setdefault((fs, row, col), []).append(
                float(val.split()[0]))
    cols = []
    for b in builds:
        cols += [b, b + " -x"]
    cols += ["setlock", "flock", "tsp", "xargs", "timeout"]
    for c in cols:
        v = [cells.get((fs, row, c)) for row in ("lat", "one")
             for fs in ("tmpfs", "ext4")]
        print('"%s" %s' % (c, " ".join("%.3f" % med(x) if x else "NaN"
                                       for x in v)))


if __name__ == "__main__":
    {"gaps": gaps, "overlap": overlap, "drain": drain,
     "order": order, "compare": compare, "plotdata": plotdata}[sys.argv[1]](*sys.argv[2:])
