#!/usr/bin/env python3
"""Count every signal delivered: the command the signal tests run.

sigspy.py LOG: catch INT, HUP, QUIT, USR1, USR2, WINCH, CONT and TERM;
append "ready PID" to LOG ("-": standard output), then "got NAME" for each
delivery, one line each, even when two arrive back to back (the C-level
handler writes one byte per delivery to the wake-up fd). Exit 0 on TERM.
"""
import os
import signal
import sys

NAMES = ["INT", "HUP", "QUIT", "USR1", "USR2", "WINCH", "CONT", "TERM"]


def main():
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    for n in NAMES:
        signal.signal(getattr(signal, "SIG" + n), lambda *_: None)
    log = sys.stdout if sys.argv[1] == "-" else open(sys.argv[1], "a")
    print("ready %d" % os.getpid(), file=log, flush=True)
    while True:
        for b in os.read(r, 64):
            name = signal.Signals(b).name[3:]
            print("got " + name, file=log, flush=True)
            if name == "TERM":
                return 0


if __name__ == "__main__":
    sys.exit(main())
