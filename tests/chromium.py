"""Headless Chromium over the DevTools protocol on a pipe, with no extra dependency: the report
tests open report.html in it, and a person can look at a report the same way:

    python tests/chromium.py rh-report/report.html report.png [--width 1280]

writes a full-page screenshot (on Debian or Ubuntu: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")


def find_chromium() -> str | None:
    """``$CHROMIUM`` if set, else the first Chromium or Chrome on the PATH."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
    it reads NUL-terminated JSON commands on fd 3 and writes answers and events on fd 4)."""

    def __init__(self, binary: str, profile: Path, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.events: list[dict] = []
        self._next_id = 0
        self._buffer = b""
        commands_r, self._commands = os.pipe()
        self._answers, answers_w = os.pipe()
        # Chromium wants the pipes on fds 3 and 4: a tiny Python trampoline puts them there and execs
        # it (no preexec_fn, which is unsafe when the test process runs threads).
        trampoline = ("import os, sys\n"
                      "a, b = int(sys.argv[1]), int(sys.argv[2])\n"
                      "b = os.dup(b) if b == 3 else b  # so that putting a on 3 does not close it\n"
                      "os.dup2(a, 3); os.dup2(b, 4); os.set_inheritable(3, True); os.set_inheritable(4, True)\n"
                      "[os.close(fd) for fd in {a, b} - {3, 4}]\n"
                      "os.execv(sys.argv[3], sys.argv[3:])")
        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", trampoline, str(commands_r), str(answers_w), binary,
                 "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-pipe",
                 f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(commands_r, answers_w))
        os.close(commands_r)
        os.close(answers_w)

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Chromium did not answer in {self.timeout} s; its log:\n{self.log_tail()}")
            if select.select([self._answers], [], [], left)[0]:
                chunk = os.read(self._answers, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium exited ({self.process.poll()}); its log:\n{self.log_tail()}")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        data = json.dumps(command).encode() + b"\0"
        while data:
            data = data[os.write(self._commands, data):]
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + self.timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            self.events.append(self._message(deadline))

    def open(self, url: str) -> str:
        """A new tab showing ``url``, loaded; returns its session."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable", session=session)
        self.events = [e for e in self.events if e.get("sessionId") != session]
        navigated = self.send("Page.navigate", {"url": url}, session=session)
        assert not navigated.get("errorText"), navigated
        self.wait_for("Page.loadEventFired", session)
        self.evaluate(session, "new Promise(done => requestAnimationFrame(() => setTimeout(done, 100)))")
        return session

    def evaluate(self, session: str, expression: str):
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                           session=session)
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def problems(self, session: str) -> list[str]:
        """Console errors, uncaught exceptions and browser-logged errors (failed loads, CSP) in a tab."""
        found = []
        for event in (e for e in self.events if e.get("sessionId") == session):
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}".strip())
        return found

    def screenshot(self, session: str, path: Path, *, width: int = 1280) -> Path:
        """A PNG of the whole page at ``width`` CSS pixels, written to ``path``."""
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        height = self.evaluate(session, "document.documentElement.scrollHeight")
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
                         session=session)
        Path(path).write_bytes(base64.b64decode(shot["data"]))
        return Path(path)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._answers)


def main() -> int:
    parser = argparse.ArgumentParser(description="Screenshot a report page in headless Chromium.")
    parser.add_argument("page", type=Path, help="the report.html to open")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels (default 1280)")
    args = parser.parse_args()
    binary = find_chromium()
    if binary is None:
        sys.exit("no Chromium found; on Debian or Ubuntu: apt-get install -y chromium")
    if not args.page.is_file():
        sys.exit(f"{args.page} does not exist")
    with tempfile.TemporaryDirectory(prefix="rh-chromium-") as profile:
        browser = Chromium(binary, Path(profile))
        try:
            tab = browser.open(args.page.resolve().as_uri())
            browser.screenshot(tab, args.png, width=args.width)
            for problem in browser.problems(tab):
                print("page problem:", problem, file=sys.stderr)
        finally:
            browser.close()
    print(args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
