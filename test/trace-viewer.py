#!/usr/bin/env python3
# trace-viewer.py - imports traces into chrome://tracing's own importer
# (Catapult's trace viewer, tr.Model and tr.importer.Import) in headless
# Chromium, and says what it made of each: for the tests of the timeline
# (test-cli-tracepage.c), which check that the JSON herd writes opens
# there with no import warning.
#
# Usage: trace-viewer.py FILE...
# Prints "viewer: WHERE", then per file one line
#     FILE slices=N flows=N threads=N warnings=N
# and a line "warning: TYPE: MESSAGE" per import warning (the first 20).
# Exits 0 once every file was imported, 1 on a failure, 77 (the tests'
# skip code) with "skip: WHY" on stdout when there is nothing to import
# with: no Chromium, or neither chrome://tracing nor a copy of Catapult's
# viewer.
#
# Where the importer comes from. Chromium removed chrome://tracing: in
# Debian's Chromium 156, the page is refused as an internal debugging
# page, and once those are enabled (the profile's Local State) loading it
# fails (net::ERR_FAILED): the trace viewer is not built in any more. It
# is tried first all the same. Then Catapult's viewer as Go's `go tool
# trace` embeds it (trace_viewer_full.html, with the webcomponents polyfill
# for its HTML import), which Go's source package installs
# (HERD_TRACE_VIEWER names another copy): the same importer that
# chrome://tracing ran.
#
# Chromium is driven through the DevTools protocol on a pipe
# (--remote-debugging-pipe: JSON messages ending in a NUL, ours on its
# fd 3, its on fd 4), with a profile and home of its own, removed at the
# end; it stays in our process group, so that whoever kills the group
# kills it too.
import glob
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77
STEP = 60  # seconds for any one step

VIEWERS = [
    "/usr/share/go-*/src/cmd/trace/static/trace_viewer_full.html",
    "/usr/lib/go-*/src/cmd/trace/static/trace_viewer_full.html",
    "/usr/share/go-*/src/internal/trace/traceviewer/static/trace_viewer_full.html",
    "/usr/lib/go-*/src/internal/trace/traceviewer/static/trace_viewer_full.html",
    "/usr/local/go/src/cmd/trace/static/trace_viewer_full.html",
    "/usr/local/go/src/internal/trace/traceviewer/static/trace_viewer_full.html",
]

IMPORT_JS = """(function (text) {
  const m = new tr.Model();
  const o = new tr.importer.ImportOptions();
  o.showImportWarnings = false;
  new tr.importer.Import(m, o).importTraces([text]);
  let slices = 0, threads = 0;
  for (const t of m.getAllThreads()) { threads++; slices += t.sliceGroup.length; }
  return JSON.stringify({slices: slices, threads: threads, flows: m.flowEvents.length,
    warnings: m.importWarnings.map(w => w.type + ": " + w.message)});
})(%s)"""


def skip(why):
    print("skip: " + why)
    sys.exit(SKIP)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    skip("chromium is not installed (apt-get install chromium)")


def find_viewer():
    env = os.environ.get("HERD_TRACE_VIEWER")
    if env:
        return env if os.path.exists(env) else None
    for pat in VIEWERS:
        for path in sorted(glob.glob(pat), reverse=True):
            if os.path.exists(os.path.join(os.path.dirname(path), "webcomponents.min.js")):
                return path
    return None


class Browser:
    def __init__(self, chromium, home):
        prof = os.path.join(home, "profile")
        os.mkdir(prof)
        # Internal debugging pages (chrome://tracing is one) enabled.
        with open(os.path.join(prof, "Local State"), "w") as f:
            json.dump({"internal_only_uis_enabled": True}, f)
        cmd_r, self.cmd_w = os.pipe()
        self.ev_r, ev_w = os.pipe()

        def fds():
            a, b = os.dup(cmd_r), os.dup(ev_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        env = dict(os.environ, HOME=home, TMPDIR=home, XDG_CONFIG_HOME=home,
                   XDG_CACHE_HOME=home)
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--allow-file-access-from-files",
             "--remote-debugging-pipe", "--user-data-dir=" + prof, "about:blank"],
            preexec_fn=fds, close_fds=False, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(ev_w)
        self.buf = b""
        self.last = 0
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]

    def call(self, method, params=None):
        self.last += 1
        msg = {"id": self.last, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        end = time.time() + STEP
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.last:
                    if "error" in reply:
                        raise RuntimeError("%s: %s" % (method, reply["error"]))
                    return reply["result"]
            left = end - time.time()
            if left <= 0 or not select.select([self.ev_r], [], [], left)[0]:
                raise RuntimeError("%s: no answer in %d s" % (method, STEP))
            data = os.read(self.ev_r, 1 << 20)
            if not data:
                raise RuntimeError("%s: Chromium went away" % method)
            self.buf += data

    def navigate(self, url):
        return self.call("Page.navigate", {"url": url}).get("errorText")

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError("script: %s" % r["exceptionDetails"].get("exception", {})
                               .get("description", r["exceptionDetails"].get("text")))
        return r["result"].get("value")

    def wait_for_tr(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            if self.eval("typeof tr === 'object' && typeof tr.Model === 'function' && "
                         "!!tr.importer && typeof tr.importer.Import === 'function'"):
                return True
            if self.eval("!!window.importFailed"):
                return False
            time.sleep(0.2)
        return False

    def close(self):
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    if len(sys.argv) < 2:
        print("usage: trace-viewer.py FILE...", file=sys.stderr)
        return 2
    chromium = find_chromium()
    home = tempfile.mkdtemp(prefix="herd-trace-viewer-")
    browser = None
    try:
        browser = Browser(chromium, home)
        err = browser.navigate("chrome://tracing")
        if not err and browser.wait_for_tr(10):
            print("viewer: chrome://tracing")
        else:
            why = "chrome://tracing: " + (err or "no trace viewer in the page")
            viewer = find_viewer()
            if not viewer:
                skip(why + "; no copy of Catapult's trace viewer (trace_viewer_full.html, "
                     "in Go's source package golang-src, or HERD_TRACE_VIEWER)")
            page = os.path.join(home, "viewer.html")
            static = os.path.dirname(viewer)
            with open(page, "w") as f:
                f.write('<!DOCTYPE html><html><head>'
                        '<script src="file://%s/webcomponents.min.js"></script>'
                        '<link rel="import" href="file://%s" '
                        'onerror="window.importFailed = true">'
                        '</head><body></body></html>' % (static, viewer))
            err = browser.navigate("file://" + page)
            if err or not browser.wait_for_tr(STEP):
                print("%s: the trace viewer did not load (%s)" % (viewer, err or "no tr"),
                      file=sys.stderr)
                return 1
            print("viewer: %s (%s)" % (viewer, why))
        for path in sys.argv[1:]:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            got = json.loads(browser.eval(IMPORT_JS % json.dumps(text)))
            print("%s slices=%d flows=%d threads=%d warnings=%d" % (
                path, got["slices"], got["flows"], got["threads"], len(got["warnings"])))
            for w in got["warnings"][:20]:
                print("warning: " + w)
        return 0
    except (RuntimeError, OSError, ValueError) as e:
        print("trace-viewer.py: %s" % e, file=sys.stderr)
        return 1
    finally:
        if browser:
            browser.close()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
