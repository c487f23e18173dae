#!/usr/bin/env python3
"""Chaos test of gaterun: many wrappers on a few gates while, at random,
wrappers and commands are SIGKILLed, wrappers get TERM or INT, limits go up
and down, --kill-all and --status run. Afterwards it checks:

  - at no command start were more slots taken than the limit in force
    when the last of the running commands was granted its slot (a wrapper
    of -N 2, one in five, takes two; the others one); see check_limits;
  - every command that ran was a holder of its gate (its probe found the
    record naming it);
  - every gate ends with 0 active and 0 waiting (no leaked slot, no ghost);
  - every wrapper left alone ran its command and exited 0 (no starvation),
    or, for a weight of 2 asked when the limit was 1, exited 125 at once;
  - first come, first served: no wrapper ever holds a slot while one seen
    queued ahead of it still waits (checked on every --status snapshot);
  - no process it started is left (checked by PID).

Prints the figures and exits 1 on any violation.

    chaos.py GATERUN PROBE [--seconds S] [--gates N] [--wrappers M] [--seed X]
    chaos.py --self-test      (the limit check on made-up runs: self_test)
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

LIMITS = (1, 2, 3, 4)


def zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


class Chaos:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.dir = tempfile.mkdtemp(prefix="gaterun-chaos-")
        self.env = dict(os.environ, GATERUN_DIR=os.path.join(self.dir, "state"))
        if a.store:     # another store (Redis): GATERUN_DIR would win
            del self.env["GATERUN_DIR"]
            self.env["GATERUN_STORE"] = a.store
        self.log = os.path.join(self.dir, "probe.log")
        self.errlog = open(os.path.join(self.dir, "stderr.log"), "w")
        self.gates = ["g%d" % i for i in range(a.gates)]
        self.limit_events = {g: [] for g in self.gates}   # (begin, end, value)
        self.live = []          # wrapper records still running
        self.done = []
        self.next_id = 0
        self.kill_time = {}     # probe id -> ns a kill was sent to it
        self.killall_times = {g: [] for g in self.gates}
        self.ahead = {}         # wrapper id -> ids seen queued ahead of it
        self.fifo_bad = []
        self.n = dict(started=0, wrapper_kills=0, cmd_kills=0, terms=0,
                      limit_changes=0, kill_alls=0, statuses=0)

    def gaterun(self, *args, check=True):
        r = subprocess.run([self.a.gaterun, *args], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("gaterun %s: %d %s" % (args, r.returncode, r.stderr))
        return r

    def set_limit(self, g, v):
        b = now_ns()
        self.gaterun("-g", g, "--limit", str(v))
        self.limit_events[g].append((b, now_ns(), v))
        self.n["limit_changes"] += 1

    def start(self, heavy=None):
        """A wrapper on a gate at random, with options at random; or, given
        heavy (a gate), one of weight 2 on it with no other option."""
        g = heavy or self.rng.choice(self.gates)
        wid = "w%d" % self.next_id
        self.next_id += 1
        ms = self.rng.choice((5, 10, 20, 40, 80))
        args = [self.a.gaterun, "-g", g]
        if not heavy and self.rng.random() < 0.25 and not self.a.store:
            args.append("-x")      # refused on Redis: a lease needs a wrapper
        if not heavy and self.rng.random() < 0.1:
            args += ["-w", "0.3"]
        weight = 2 if heavy or self.rng.random() < 0.2 else 1
        if weight > 1:
            args += ["-N", str(weight)]
        args += ["--", self.a.probe, self.log, wid, str(ms)]
        p = subprocess.Popen(args, env=self.env, stdout=subprocess.DEVNULL,
                             stderr=self.errlog)
        self.live.append(dict(id=wid, gate=g, p=p, harmed=False,
                              timed="-w" in args, exec="-x" in args,
                              weight=weight))
        self.n["started"] += 1

    def probe_pid(self, w):
        """The probe of wrapper w, if it runs: the wrapper itself (-x) or
        its child."""
        if w["exec"]:
            return w["p"].pid
        try:
            with open("/proc/%d/task/%d/children" % (w["p"].pid, w["p"].pid)) as f:
                kids = f.read().split()
            return int(kids[0]) if kids else None
        except OSError:
            return None

    def act(self):
        r = self.rng.random()
        if len(self.live) < self.a.wrappers and r < 0.55:
            self.start()
        elif r < 0.62 and self.live:
            w = self.rng.choice(self.live)
            w["harmed"] = True
            self.kill_time.setdefault(w["id"], now_ns())  # the first harm ends it
            w["p"].send_signal(signal.SIGKILL)
            self.n["wrapper_kills"] += 1
        elif r < 0.68 and self.live:
            w = self.rng.choice(self.live)
            pid = self.probe_pid(w)
            if pid:
                w["harmed"] = True
                self.kill_time.setdefault(w["id"], now_ns())  # the first harm ends it
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.n["cmd_kills"] += 1
                except ProcessLookupError:
                    pass
        elif r < 0.73 and self.live:
            w = self.rng.choice(self.live)
            w["harmed"] = True
            self.kill_time.setdefault(w["id"], now_ns())  # the first harm ends it
            w["p"].send_signal(self.rng.choice((signal.SIGTERM, signal.SIGINT)))
            self.n["terms"] += 1
        elif r < 0.80:
            self.set_limit(self.rng.choice(self.gates), self.rng.choice(LIMITS))
        elif r < 0.81 and not self.a.store:  # refused on Redis
            g = self.rng.choice(self.gates)
            b = now_ns()
            for w in self.live:
                if w["gate"] == g:
                    w["harmed"] = True
                    self.kill_time.setdefault(w["id"], b)
            self.killall_times[g].append(b)
            self.gaterun("-g", g, "--kill-all", "--grace", "1", check=False)
            self.n["kill_alls"] += 1
        else:
            g = self.rng.choice(self.gates)
            out = self.gaterun("-g", g, "--status", "--json").stdout
            st = json.loads(out)
            self.n["statuses"] += 1
            pid2id = {w["p"].pid: w["id"] for w in self.live}
            order = [x for x in (pid2id.get(w["wrapper_pid"])
                                 for w in st["waiters"]) if x]
            holders = {pid2id.get(h["wrapper_pid"]) for h in st["slots"]}
            # FIFO, exactly: nobody holds a slot while someone once seen
            # ahead of it in the queue still waits.
            waiting = set(order)
            for h in holders:
                for a in self.ahead.get(h, ()):
                    if a in waiting:
                        self.fifo_bad.append("%s holds a slot while %s, "
                                             "queued ahead of it, waits" % (h, a))
            for i, b in enumerate(order):
                self.ahead.setdefault(b, set()).update(order[:i])
        self.reap()

    def reap(self):
        for w in list(self.live):
            rc = w["p"].poll()
            if rc is not None:
                w["rc"] = rc
                self.live.remove(w)
                self.done.append(w)

    def run(self):
        for g in self.gates:
            self.set_limit(g, self.rng.choice(LIMITS))
        end = time.time() + self.a.seconds
        while time.time() < end:
            self.act()
            time.sleep(self.rng.random() * 0.01)
        # Drain: limits up, nothing more harmed, everyone finishes. One
        # request of weight 2 more per gate, left alone: on a loaded machine
        # (ASan, load 10) the loop above starts few wrappers, and all those
        # of weight 2 could be harmed, refused or timed out; these must run.
        for g in self.gates:
            self.set_limit(g, max(LIMITS))
            self.start(heavy=g)
        deadline = time.time() + 120
        while self.live and time.time() < deadline:
            self.reap()
            time.sleep(0.02)
        for w in self.live:      # bounded: anything left is a failure
            w["p"].kill()
            w["p"].wait()
            w["rc"] = "hung"
            self.done.append(w)
        self.live = []

    # ---- checks ----------------------------------------------------------
    def intervals(self):
        """Each command's start, end, PID and grant (the time its holder
        record carries, None if its probe found none: see probe.c)."""
        st, en, pids, grant = {}, {}, {}, {}
        with open(self.log) as f:
            for line in f:
                tag, wid, pid, ns, *g = line.split()
                (st if tag == "s" else en)[wid] = int(ns)
                pids[wid] = int(pid)
                if tag == "s":
                    grant[wid] = int(g[0]) if g and g[0] != "-" else None
        for wid in st:
            if wid not in en or (wid in self.kill_time and self.kill_time[wid] < en[wid]):
                en[wid] = min(en.get(wid, 1 << 62), self.kill_time.get(wid, 1 << 62))
        return st, en, pids, grant

    def limit_at(self, g, t):
        """The largest limit a transaction that stamped time t can have
        read: that of the last change whose gaterun had exited before t,
        and that of any change whose gaterun ran at t. Exact, not a window:
        transactions on a gate are serialized (one lock, or WATCH/EXEC on
        one key) and the stamp is taken inside one, so a change that ended
        before the stamp committed before that transaction read, and one
        begun after it committed after that transaction wrote."""
        cand, last = [], None
        for b, e, v in self.limit_events[g]:
            if e < t:
                last = v
            elif b <= t:
                cand.append(v)
        if last is not None:
            cand.append(last)
        return max(cand) if cand else max(LIMITS)

    def check_limits(self, st, en, grant):
        """Never more than the limit, judged at each command start t on the
        commands running then (a killed one taken to end when the first
        kill was sent, so a measured run is never longer than the real
        one). Each of them was a holder when the last of them to be granted
        (the latest stamp, see probe.c) was admitted, so together they
        weigh no more than the limit that transaction read (limit_at).
        Judged by grant, not by start: a command starts some time after
        its grant (the waiter wakes, reads its slot, its child execs; under
        ASan on a loaded machine, over a second), and one granted before a
        lowering may start after it; a window from grant to start would be
        a guess that a slow enough start breaks."""
        bad, worst = [], {}
        for wid in sorted(st):
            if grant[wid] is None:
                bad.append("gate %s: %s ran with no holder record naming "
                           "it" % (self.gate_of[wid], wid))
        for wid, t in st.items():
            g = self.gate_of[wid]
            run = [o for o, s in st.items() if self.gate_of[o] == g and
                   s <= t and en.get(o, 1 << 62) > t]
            open_now = sum(self.flags[o]["weight"] for o in run)
            last = max((grant[o] for o in run if grant[o] is not None),
                       default=None)
            lim = self.limit_at(g, last) if last is not None else max(LIMITS)
            worst[g] = max(worst.get(g, (0, 0)), (open_now, lim))
            if open_now > lim:
                bad.append(self.over(g, t, run, st, en, grant, open_now, lim))
        return bad, worst

    def over(self, g, t, run, st, en, grant, n, lim):
        """What a start over the limit is reported with: each command
        running (start, grant and end, in ms from t) and the limit
        changes of the 2 s around (ms from t to the change's gaterun
        starting and ending, value)."""
        ms = lambda x: (x - t) // 1000000 if x is not None else None
        who = ["%s%s%s%s rc=%s [start %d, grant %s..end %d]" % (
            o, "(x)" if self.flags[o]["exec"] else "",
            "(w)" if self.flags[o]["timed"] else "",
            "(killed at %d)" % ms(self.kill_time[o]) if o in self.kill_time else "",
            self.flags[o].get("rc"), ms(st[o]), ms(grant[o]),
            ms(en.get(o, 1 << 62))) for o in run]
        near = [(ms(b), ms(e), v) for b, e, v in self.limit_events[g]
                if abs(b - t) < 2_000_000_000]
        return ("gate %s: %d running at %d, limit %d at the last grant: %s; "
                "limit changes (ms, ms, value) %s" % (g, n, t, lim, who, near))

    def check(self):
        st, en, pids, grant = self.intervals()
        self.gate_of = {w["id"]: w["gate"] for w in self.done}
        self.flags = {w["id"]: w for w in self.done}
        bad, worst = self.check_limits(st, en, grant)
        # Commands orphaned by a SIGKILLed wrapper hold their slots until
        # they end: let them (they sleep 80 ms at most).
        deadline = time.time() + 10
        while time.time() < deadline and any(
                os.path.exists("/proc/%d" % p) and not zombie(p) for p in pids.values()):
            time.sleep(0.02)
        leaked = 0
        for g in self.gates:
            s = json.loads(self.gaterun("-g", g, "--status", "--json").stdout)
            leaked += s["active_processes"] + s["waiting"]
            if s["active_processes"] or s["waiting"]:
                bad.append("gate %s ends with %d active, %d waiting" %
                           (g, s["active_processes"], s["waiting"]))
        starved = 0
        for w in self.done:
            if w["harmed"] or (w["timed"] and w["rc"] == 75):
                continue
            if w["weight"] > 1 and w["rc"] == 125 and w["id"] not in st:
                continue    # asked for 2 while the limit was 1: refused
            if w["rc"] != 0 or w["id"] not in en:
                starved += 1
                bad.append("wrapper %s (gate %s) left alone ended %s" %
                           (w["id"], w["gate"], w["rc"]))
        heavy = sum(1 for w in self.done if w["weight"] > 1 and w["id"] in st)
        if heavy == 0:
            bad.append("no request of weight 2 ever ran")
        inversions = len(self.fifo_bad)
        bad += self.fifo_bad
        left = [w["p"].pid for w in self.done if w["rc"] == "hung"]
        for pid in pids.values():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if self.log.encode() in f.read():
                        left.append(pid)
                        os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if left:
            bad.append("processes left behind: %s" % left)
        print("chaos: %d s, %d gates, seed %d: %d wrappers started, %d wrappers "
              "SIGKILLed, %d commands SIGKILLed, %d TERM/INT, %d limit changes, "
              "%d kill-alls, %d status calls" % (
                  self.a.seconds, len(self.gates), self.a.seed, self.n["started"],
                  self.n["wrapper_kills"], self.n["cmd_kills"], self.n["terms"],
                  self.n["limit_changes"], self.n["kill_alls"], self.n["statuses"]))
        for g in self.gates:
            o, lim = worst.get(g, (0, 0))
            print("chaos: gate %s: max running at a start %d, limit at the last grant %d" % (g, o, lim))
        print("chaos: %d commands ran (%d of weight 2); leaked slots %d; "
              "starved %d; order inversions %d; processes left %d" % (
                  len(st), heavy, leaked, starved, inversions, len(left)))
        for b in bad[:20]:
            print("chaos: FAIL: " + b)
        self.errlog.flush()
        with open(self.errlog.name) as f:
            errs = [l for l in f if "cannot start" not in l]
        print("chaos: %d lines on the wrappers' stderr%s" % (
            len(errs), "".join("\nchaos:   " + l.rstrip() for l in errs[:10])))
        return not bad


def self_test():
    """check_limits on made-up runs of gate g, limit 4 lowered to 1 by a
    gaterun that ran from 1.0 s to 1.1 s: a command of weight 2 granted at
    0.9 s that started at 2.0 s is within its limit (a 200 ms window took
    it for one let in over the lowered limit); two of weight 1 granted at
    1.5 s and 1.7 s, both running at 2.0 s, are over it; one with no
    holder record is reported. 0 if all three are judged so."""
    S = 1_000_000_000
    c = Chaos.__new__(Chaos)
    c.limit_events = {"g": [(0, S // 10, 4), (S, S + S // 10, 1)]}
    c.kill_time = {}
    ok = True
    for want, runs in ((0, [("a", 2, 9 * S // 10, 2 * S, 21 * S // 10)]),
                       (1, [("a", 1, 15 * S // 10, 16 * S // 10, 25 * S // 10),
                            ("b", 1, 17 * S // 10, 2 * S, 22 * S // 10)]),
                       (1, [("a", 1, None, 2 * S, 21 * S // 10)])):
        c.gate_of = {r[0]: "g" for r in runs}
        c.flags = {r[0]: dict(weight=r[1], exec=False, timed=False, rc=0)
                   for r in runs}
        bad, _ = c.check_limits({r[0]: r[3] for r in runs},
                                {r[0]: r[4] for r in runs},
                                {r[0]: r[2] for r in runs})
        print("chaos: self-test: %d reported, %d wanted%s" % (
            len(bad), want, "".join("\nchaos:   " + b for b in bad)
            if len(bad) != want else ""))
        ok = ok and len(bad) == want
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    ap = argparse.ArgumentParser()
    ap.add_argument("gaterun")
    ap.add_argument("probe")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--gates", type=int, default=2)
    ap.add_argument("--wrappers", type=int, default=30)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--store", help="a GATERUN_STORE locator (redis://...) "
                    "instead of a directory: no -x, no --kill-all there")
    c = Chaos(ap.parse_args())
    try:
        c.run()
        ok = c.check()
    finally:
        for w in c.live:
            w["p"].kill()
        shutil.rmtree(c.dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
