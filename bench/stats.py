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


if __name__ == "__main__":
    {"gaps": gaps, "overlap": overlap, "drain": drain,
     "order": order}[sys.argv[1]](*sys.argv[2:])
