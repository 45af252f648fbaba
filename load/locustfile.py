"""Locust load test of an integration layer at peak returns season.

    locust -f load/locustfile.py --headless -t 60s --rh-shape steady --rh-rate 120 --csv out/load

Without ``--rh-env`` the master (or the single process) starts the load environment itself
(``python -m load.env``: the fakes and the reference, or ``--rh-sut-url``) and stops it at the
end. After the load it settles, reconciles every return the load made, checks the SLA gates
and exits 1 when one fails. See docs/LOAD.md.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path

import gevent
from locust import events
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `locust -f load/locustfile.py` puts only load/ on the path
    sys.path.insert(0, str(REPO))

from load.driver import Context, MasterSide  # noqa: E402
from load.profiles import SHAPES  # noqa: E402
from load.shapes import ReturnsShape  # noqa: E402,F401  (Locust finds the shape here)
from load.users import Carrier, Customer, Warehouse  # noqa: E402,F401
from load import webui  # noqa: E402

log = logging.getLogger("returns-harness.load")
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per admin call while settling


class _ShapeReadsRunTime(logging.Filter):
    """Locust warns that a shape ignores --run-time unless it reads it: ours does (ReturnsShape)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("have no impact on LoadShapes" in message or "will be ignored: --run-time" in message)


logging.getLogger("locust.main").addFilter(_ShapeReadsRunTime())


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    g = parser.add_argument_group("returns-harness")

    def add(*flags, ui: bool = True, **kwargs) -> None:
        # An argument group's add_argument is argparse's, not Locust's: say here what Locust's
        # web UI looks for. What the environment is started with (at init) cannot change from
        # the UI, so it is not offered there.
        action = g.add_argument(*flags, **kwargs)
        action.include_in_web_ui, action.is_secret, action.is_required, action.is_multiple = ui, False, False, False

    add("--rh-env", ui=False, default="", help="load-env.json of a running `python -m load.env` (default: start one)")
    add("--rh-dir", ui=False, default="rh-load", help="where the started environment, the run record and the report go")
    add("--rh-sut-url", ui=False, default="", help="webhook URL of your integration layer (default: the reference)")
    add("--rh-defects", ui=False, default="", help="reference defects to switch on, comma-separated (e.g. slow,no-dedupe)")
    add("--rh-scenario", ui=False, default="baseline", help="scenario: seed, policy, mixes and default SLAs")
    add("--rh-orders", ui=False, type=int, default=20_000, help="seeded sales orders of a started environment")
    add("--rh-shape", default="steady", choices=SHAPES, help="steady, post-holiday-peak, promotion-spike, recall or step")
    add("--rh-rate", type=float, default=60.0, help="returns/minute: the profile's base rate, or the first step")
    add("--rh-compression", type=float, default=4032.0, help="simulated seconds per wall second for seasonal shapes")
    add("--rh-season-days", type=float, default=14.0, help="days of the season a seasonal shape plays")
    add("--rh-step-rate", type=float, default=60.0, help="returns/minute added per step (shape step)")
    add("--rh-step-s", type=float, default=30.0, help="seconds per step (shape step)")
    add("--rh-pace", type=float, default=1.0, help="seconds between two tasks of one user (its schedule)")
    add("--rh-duplicate-rate", type=float, default=0.02, help="share of events delivered twice (same id)")
    add("--rh-ship-after", type=float, default=1.0, help="seconds from approval to the carrier's first scan")
    add("--rh-receive-after", type=float, default=1.0, help="seconds from the delivered scan to the receipt")
    add("--rh-settle", type=float, default=60.0, help="seconds to wait after the load for the layer to finish")
    add("--rh-no-reconcile", action="store_true", help="skip the settle phase and the oracle")
    add("--sla-error-rate", default="", help="failed requests, at most this share (default 0.01)")
    add("--sla-ack-ms", default="", help="ack latency from the intended send time, e.g. p50=100,p99=500 (default: scenario's p99)")
    add("--sla-rma-lag-s", default="", help="return requested -> RMA, e.g. p95=5 (default: the scenario's hours)")
    add("--sla-credit-lag-s", default="", help="return requested -> credit memo, e.g. p95=30 (default: none)")
    # Set by the master, read by the workers (Locust hands custom options to workers at spawn).
    add("--rh-env-json", ui=False, default="", help="(internal)")
    add("--rh-partitions", ui=False, type=int, default=1, help="(internal)")
    add("--rh-run", ui=False, default="", help="(internal)")


_MAIN = gevent.getcurrent()  # Locust's main greenlet: it imports this file, and it handles Ctrl-C


def _ctrl_c_to_main(_signum, _frame) -> None:
    """Ctrl-C as Locust handles it, but always in its main greenlet: Python raises it in whichever
    greenlet is running, and one serving a web request then prints a traceback of its own."""
    if gevent.getcurrent() is _MAIN:
        raise KeyboardInterrupt
    gevent.get_hub().loop.run_callback(_MAIN.throw, KeyboardInterrupt)


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


@events.init.add_listener
def _init(environment, **_kw) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message("rh_flush", _flush)
        environment.events.report_to_master.add_listener(lambda client_id, data: _report(environment, data))
        return
    signal.signal(signal.SIGINT, _ctrl_c_to_main)
    try:
        side = MasterSide(environment.parsed_options, REPO)
    except ValueError as e:
        _fail(str(e))
    environment.rh_master = side
    webui.install(environment, side)
    if not environment.host:  # workers get it from the master at spawn
        from urllib.parse import urlsplit

        parts = urlsplit(side.env["webhook_url"])
        environment.host = f"{parts.scheme}://{parts.netloc}"
    environment.parsed_options.rh_env_json = json.dumps(side.env)
    if isinstance(runner, MasterRunner):
        runner.register_message("rh_flushed", lambda environment, msg, **kw: side.merge(msg.data, final=True, node=msg.node_id))
        environment.events.worker_report.add_listener(lambda client_id, data: side.merge(data.get("rh") or {}))


@events.test_start.add_listener
def _test_start(environment, **_kw) -> None:
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        _wait_for_finish(environment)  # a new test from the web UI while the last one reconciles
    if isinstance(runner, MasterRunner):
        environment.parsed_options.rh_partitions = max(1, runner.worker_count)
        environment.parsed_options.rh_run = environment.rh_master.next_run()
        environment.rh_master.workers = runner.worker_count
        _configure(environment)
        return
    if isinstance(runner, LocalRunner):
        environment.parsed_options.rh_partitions = 1
        environment.parsed_options.rh_run = environment.rh_master.next_run()
    if not isinstance(runner, WorkerRunner):
        _configure(environment)
    index = runner.worker_index if isinstance(runner, WorkerRunner) else 0
    environment.rh = Context(environment.parsed_options, index)
    if isinstance(runner, LocalRunner):
        environment.rh_master.local = environment.rh


def _configure(environment) -> None:
    """The shape, pace and gates as this test was started with them (the web UI may have changed
    them since init); a value that cannot be used stops the test, saying which."""
    try:
        environment.rh_master.configure(environment.parsed_options)
    except ValueError as e:
        log.error("returns-harness: %s; the test stops", e)
        environment.runner.quit()


def _report(environment, data: dict) -> None:
    ctx = getattr(environment, "rh", None)
    if ctx is not None:
        data["rh"] = ctx.drain()


def _flush(environment, msg, **_kw) -> None:
    """The master wants everything: stop the users, then send what is left."""
    environment.runner.stop()
    ctx = getattr(environment, "rh", None)
    environment.runner.send_message("rh_flushed", ctx.drain() if ctx else {})


@events.test_stop.add_listener
def _test_stop(environment, **_kw) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    if environment.web_ui is not None:
        # Locust answers the web UI's Stop only when this returns: settling there would hang the
        # page for up to --rh-settle seconds. The tab shows the progress; quitting waits for it.
        environment.rh_finishing = gevent.spawn(_finish, environment)
    else:
        _finish(environment)


def _finish(environment) -> None:
    runner = environment.runner
    side = environment.rh_master
    if isinstance(runner, MasterRunner):
        side.flushed.clear()
        runner.send_message("rh_flush", None)
        deadline = time.monotonic() + 20
        while len(side.flushed) < side.workers and time.monotonic() < deadline:
            gevent.sleep(0.1)
        if len(side.flushed) < side.workers:
            log.warning("only %d of %d workers sent their journeys; the others' returns are not reconciled",
                        len(side.flushed), side.workers)
    elif side.local is not None:
        side.merge(side.local.drain())
    code = side.finish(runner.stats, environment.events.request)
    if code:
        environment.process_exit_code = code
    gevent.sleep(1.5)  # let Locust's CSV writer (every second) write the end-to-end lags


def _wait_for_finish(environment) -> None:
    """The last test's settling and reconciliation, if it is still going (web UI runs)."""
    finishing = getattr(environment, "rh_finishing", None)
    if finishing is not None and not finishing.dead:
        log.info("returns-harness: waiting for the last test's reconciliation")
        finishing.join()


@events.quitting.add_listener
def _quitting(environment, **_kw) -> None:
    side = getattr(environment, "rh_master", None)
    if side is not None:
        _wait_for_finish(environment)
        if side.exit_code and environment.process_exit_code is None:
            environment.process_exit_code = side.exit_code
        side.close()
