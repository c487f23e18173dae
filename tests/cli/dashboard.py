#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's chromium, driven headless
through chromedriver's WebDriver protocol (plain HTTP and JSON, so the
standard library is enough).

usage: dashboard.py GATERUN DASHBOARD_URL TOKEN SCREENSHOT.png

Loads the page, starts two wrapped commands, checks the page shows them
(count, PIDs, commands), types the token, raises the limit and kills all
with the page's own buttons (the kill's confirm() answered through
WebDriver), checks the gate itself changed, and saves a screenshot.
Every process it starts is stopped by PID at the end.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

GATERUN, PAGE, TOKEN, SHOT = sys.argv[1:5]
ELEM = "element-6066-11e4-a52e-4f735466cecf"   # W3C WebDriver, 12.2
CARD = 'section[data-gate="default"]'


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Driver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.sid = None

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        url = self.base + (f"/session/{self.sid}" if self.sid else "") + path
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)["value"]
        except urllib.error.HTTPError as e:
            value = json.load(e)["value"]
            raise WebDriverError(value.get("error"), value.get("message"))

    def js(self, script, *args):
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        found = self.call("POST", "/element", {"using": "css selector", "value": css})
        if ELEM not in found:
            raise AssertionError(f"find {css}: {found!r}")
        return found[ELEM]

    def click(self, css):
        """Click the element now matching css: the page redraws every
        second, so a stale element is looked up again."""
        for _ in range(20):
            try:
                return self.call("POST", f"/element/{self.find(css)}/click", {})
            except WebDriverError as e:
                if e.kind not in ("stale element reference", "no such element"):
                    raise
                time.sleep(0.05)
        raise AssertionError(f"cannot click {css}")


class WebDriverError(Exception):
    def __init__(self, kind, msg):
        super().__init__(f"{kind}: {msg}")
        self.kind = kind


def until(what, fn, timeout=15):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except (WebDriverError, OSError) as e:   # OSError: not up yet
            last = e
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def card_text(d):
    return d.js(f"const c = document.querySelector('{CARD}'); return c ? c.innerText : '';")


def gate_status():
    out = subprocess.run([GATERUN, "--status", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    procs = []
    profile = tempfile.mkdtemp(prefix="gaterun-chromium-")
    port = free_port()
    # chromedriver and the browser it starts in a process group of their
    # own, whose ID is chromedriver's PID: stopped by that at the end.
    drv = subprocess.Popen(["chromedriver", f"--port={port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    d = Driver(port)
    try:
        until("chromedriver", lambda: d.call("GET", "/status").get("ready"))
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": shutil.which("chromium") or "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-quic", "--no-first-run",
                         "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1200,760",
                         f"--user-data-dir={profile}"]}}}}
        d.sid = d.call("POST", "/session", caps)["sessionId"]
        d.call("POST", "/url", {"url": PAGE})
        until("the page to go live", lambda: d.js(
            "return document.getElementById('conn').textContent") == "live")
        until("an idle gate", lambda: "0 / 3" in card_text(d))

        for _ in range(2):
            procs.append(subprocess.Popen([GATERUN, "--", "sleep", "1000"]))
        until("two commands in gaterun", lambda: gate_status()["active_processes"] == 2)
        pids = gate_status()["active_pids"]
        text = until("two commands on the page", lambda: (lambda t: t if "2 / 3" in t and
                     all(str(p) in t for p in pids) else "")(card_text(d)))
        assert text.count("sleep 1000") == 2, text
        print(f"page shows: {' '.join(text.split()[:12])} ...")
        procs.append(subprocess.Popen([GATERUN, "-g", "batch", "--", "sleep", "1000"]))
        until("a second gate's card", lambda: d.js(
            "return document.querySelectorAll('section.card').length") == 2)

        # The token, typed; then the limit raised with the page's button.
        d.call("POST", f"/element/{d.find('#token')}/value", {"text": TOKEN + "\ue007"})
        until("the stream back with the token", lambda: d.js(
            "return document.getElementById('conn').textContent") == "live")
        d.js(f"const i = document.querySelector('{CARD} input');"
             "i.value = '4'; i.dispatchEvent(new Event('input'));")
        d.click(f"{CARD} button.setlimit")
        until("the limit message", lambda: "limit 3 \u2192 4" in card_text(d))
        assert gate_status()["max_allowed"] == 4
        until("2 / 4 on the page", lambda: "2 / 4" in card_text(d))
        d.call("POST", "/url", {"url": PAGE})   # a fresh page for the picture
        until("the page live again", lambda: "2 / 4" in card_text(d))
        time.sleep(2.5)                        # a little sparkline history
        png = base64.b64decode(d.call("GET", "/screenshot"))
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        with open(SHOT, "wb") as f:
            f.write(png)
        print(f"screenshot: {SHOT} ({len(png)} bytes)")

        # Kill all: the page asks first; the answer goes through WebDriver.
        d.call("POST", f"/element/{d.find('#token')}/clear", {})
        d.call("POST", f"/element/{d.find('#token')}/value", {"text": TOKEN + "\ue007"})
        d.click(f"{CARD} button.killall")
        asked = until("the confirm dialog", lambda: d.call("GET", "/alert/text"))
        assert asked == "Stop every command of gate default?", asked
        d.call("POST", "/alert/accept", {})
        until("the kill message", lambda: "killed 2" in card_text(d))
        for p in procs[0:2]:
            assert p.wait(timeout=15) == 128 + 15 or p.returncode == -15, p.returncode
        until("0 / 4 on the page", lambda: "0 / 4" in card_text(d))
        print("dashboard: shown, limit raised, killed from the page")
        return 0
    finally:
        if d.sid:
            try:
                d.call("DELETE", "")
            except Exception:
                pass
        # Wrapped commands left by a failure: through the gate, by PID.
        for gate in ("default", "batch"):
            subprocess.run([GATERUN, "-g", gate, "--kill-all", "--grace", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        try:
            os.killpg(drv.pid, 9)
        except ProcessLookupError:
            pass
        drv.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
