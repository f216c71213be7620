"""cdp - drive Debian's headless chromium over the DevTools protocol, with
nothing but the standard library: chromium's --remote-debugging-pipe (the
protocol's JSON messages, each ended by a NUL byte, on fds 3 and 4).

    with Chromium() as c:
        page = c.open("file:///tmp/report.html")   # waits for the load event
        page.evaluate("1 + 1")                     # -> 2
        page.screenshot("shot.png")                # the whole page

The browser runs in a network namespace of its own (unshare --net, as root),
so it has no network at all, with an empty profile in a temp dir and the
flags that keep it from calling home. Every request the page makes, every
console message and every exception is recorded (Page.requests, .console,
.exceptions) for the test to check.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
         "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]


class CdpError(Exception):
    pass


class Chromium:
    def __init__(self, exe=CHROMIUM, width=1400, height=1000, netns=True, timeout=60):
        self.width, self.height, self.timeout = width, height, timeout
        self.dir = tempfile.mkdtemp(prefix="corral-chromium-")
        self.log_path = os.path.join(self.dir, "chromium.log")
        cmd_r, self._w = os.pipe()  # our commands: chromium's fd 3
        self._r, res_w = os.pipe()  # its answers: chromium's fd 4
        argv = [exe] + FLAGS + ["--user-data-dir=" + os.path.join(self.dir, "profile"),
                                "--window-size=%d,%d" % (width, height), "about:blank"]
        wrap = ["sh", "-c", 'exec 3<&"$1" 4>&"$2"; shift 2; exec "$@"', "sh", str(cmd_r),
                str(res_w)]
        if netns:
            wrap = ["unshare", "--net", "--"] + wrap
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(wrap + argv, pass_fds=(cmd_r, res_w),
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._id = 0
        self._events = []
        self.send("Browser.getVersion")

    # ---------------------------------------------------------------- protocol

    def _read(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("chromium did not answer in time (log: %s)" % self.log_path)
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise CdpError("chromium closed the pipe (exit %r); log:\n%s"
                               % (self.proc.poll(), self.log()))
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=None):
        self._id += 1
        mid = self._id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._w, data):]
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            m = self._read(deadline)
            if m.get("id") == mid:
                if "error" in m:
                    raise CdpError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self._events.append(m)

    def events(self, method=None, session=None):
        """Events received so far (and takes them out of the queue)."""
        out = [e for e in self._events if (method is None or e.get("method") == method)
               and (session is None or e.get("sessionId") == session)]
        self._events = [e for e in self._events if e not in out]
        return out

    def wait_event(self, method, session=None, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            got = [e for e in self._events if e.get("method") == method
                   and (session is None or e.get("sessionId") == session)]
            if got:
                self._events.remove(got[0])
                return got[0]
            self._events.append(self._read(deadline))

    def pump(self, seconds):
        """Take in events for a while."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self._events.append(self._read(deadline))
        except CdpError:
            if self.proc.poll() is not None:
                raise

    # ---------------------------------------------------------------- pages

    def open(self, url):
        return Page(self, url)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout=10)
            except (CdpError, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)  # the session we started it in
                self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Page:
    def __init__(self, browser, url):
        self.b = browser
        tid = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.s = browser.send("Target.attachToTarget", {"targetId": tid, "flatten": True})[
            "sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(domain + ".enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": browser.width, "height": browser.height, "deviceScaleFactor": 1,
                   "mobile": False})
        self.requests, self.console, self.exceptions = [], [], []
        nav = self.send("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise CdpError("navigating to %s: %s" % (url, nav["errorText"]))
        browser.wait_event("Page.loadEventFired", self.s)
        self._collect()

    def send(self, method, params=None, timeout=None):
        return self.b.send(method, params, self.s, timeout)

    def _collect(self):
        for e in self.b.events(session=self.s):
            m, p = e.get("method"), e.get("params", {})
            if m == "Network.requestWillBeSent":
                self.requests.append(p["request"]["url"])
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                self.exceptions.append(d.get("exception", {}).get("description") or d.get("text"))
            elif m == "Runtime.consoleAPICalled":
                self.console.append((p["type"], " ".join(str(a.get("value", a.get("description")))
                                                         for a in p.get("args", []))))
            elif m == "Log.entryAdded":
                self.console.append((p["entry"]["level"], p["entry"]["text"]))

    def evaluate(self, expr, timeout=None):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True}, timeout)
        self._collect()
        if "exceptionDetails" in r:
            raise CdpError("evaluating %r: %s" % (expr[:80], r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_for(self, expr, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            v = self.evaluate(expr)
            if v:
                return v
            if time.monotonic() > deadline:
                raise CdpError("%r stayed false for %gs" % (expr, timeout))
            time.sleep(0.1)

    def screenshot(self, path):
        """The whole page as a PNG (the viewport stretched to its height)."""
        m = self.send("Page.getLayoutMetrics")
        size = m.get("cssContentSize") or m["contentSize"]
        h = int(size["height"] + 0.999)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.b.width, "height": h, "deviceScaleFactor": 1, "mobile": False})
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.b.width, "height": self.b.height, "deviceScaleFactor": 1,
                   "mobile": False})
        return h
