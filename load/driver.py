"""The two sides of a load run: what each load process holds (:class:`Context`) and what the
master does around the load (:class:`MasterSide`: the environment, merging the workers'
journeys and histograms, the settle phase, the oracle, the gates and the report).

No Locust import here: the locustfile wires these into Locust's events.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from itertools import count
from pathlib import Path
from typing import Any

from load import gates as gate_rules
from load.env import ENV_FILE, read_env
from load.hdr import AckLatency
from load.journeys import Ledger, Requests, partition
from load.profiles import Profile
from load.settle import Fakes, lags, record, settle, verdict
from load.webhooks import BusinessClock, Signer
from simulators.oracle import save
from simulators.scenario import ScenarioError
from simulators.scenario import load as load_scenario
from simulators.seed import MasterData, SeedConfig, generate

ENV_START_TIMEOUT_S = 90.0
E2E = "E2E"  # request type of the end-to-end lags in Locust's statistics
EVENT_TYPES = ("return.created", "tracking.updated", "receipt.completed", "inspection.completed")
# A delivery attempt as a load process keeps it (Context.attempt) and ships it to the master.
ATTEMPT = ("event_id", "event_type", "correlation_id", "attempt", "status", "round_trip_s", "late_s", "fault", "sent_at_wall")
_masters: dict[str, MasterData] = {}


def master_data(config: dict[str, Any]) -> MasterData:
    key = json.dumps(config, sort_keys=True)
    if key not in _masters:
        _masters[key] = generate(SeedConfig(**config))
    return _masters[key]


def _scenario(name: str):
    try:
        return load_scenario(name)
    except ScenarioError as e:
        raise ValueError(f"--rh-scenario: {e}") from None


def _share(option: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"{option}: expected a share between 0 and 1, got {value}")
    return value


def _positive(option: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{option}: expected a number of seconds above 0, got {value}")
    return value


class Context:
    """One load process: its orders, its journeys, its latency histograms, its queues."""

    def __init__(self, options, worker_index: int) -> None:
        env = json.loads(options.rh_env_json)
        self.env = env
        self.scenario = _scenario(env["scenario"])
        self.master = master_data(env["seed_config"])
        self.worker = worker_index
        seed = self.master.config.seed
        self.rng = random.Random(f"{seed}:{options.rh_run}:{worker_index}")
        try:
            orders = partition(self.master, worker_index, options.rh_partitions)
        except ValueError as e:
            sys.stderr.write(f"error: {e}; this worker makes no returns (workers must join before the test starts)\n")
            orders = []
        self.requests = Requests(self.master, self.scenario, orders, self.rng)
        self.fakes = env["fakes"]
        creds = env["credentials"]
        self.auth = {
            "returns_portal": {"authorization": f"Bearer {creds['RH_RETURNS_PORTAL_API_KEY']}"},
            "wms": {"authorization": f"Bearer {creds['RH_WMS_API_KEY']}"},
            "carrier": {"authorization": f"Bearer {creds['RH_CARRIER_API_KEY']}"},
        }
        self.auth_json = {system: {**h, "content-type": "application/json"} for system, h in self.auth.items()}
        self.webhook_names = {t: f"webhook {t}" for t in EVENT_TYPES}
        self.webhook_url = env["webhook_url"]
        self.signer = Signer(env["secret"])
        self.clock = BusinessClock()
        self.ledger = Ledger()
        self.attempts: list[tuple] = []  # delivery attempts since the last drain (see attempt())
        self.pace_s = options.rh_pace
        self.duplicate_rate = options.rh_duplicate_rate
        self.ship_after_s = options.rh_ship_after
        self.receive_after_s = options.rh_receive_after
        self.poll_s = 0.5
        self.to_carrier: deque = deque()
        self.to_warehouse: deque = deque()
        self._ids = count(1)
        self._run = options.rh_run
        self._warned = False
        # The master data (hundreds of thousands of objects) lives as long as the process: out of
        # the cyclic collector's sight, a full collection under load no longer walks all of it.
        gc.freeze()

    def event_id(self) -> str:
        # Run, worker and a counter: unique across workers and across runs on one environment.
        return f"evt_{self._run}_w{self.worker}_{next(self._ids):07d}"

    def attempt(self, *fields) -> None:
        """One delivery attempt, as :data:`ATTEMPT` fields (a tuple: the cheapest thing to keep
        per request; the master turns them into latency histograms and the run's delivery journal)."""
        self.attempts.append(fields)

    def out_of_orders(self) -> None:
        if not self._warned:
            self._warned = True
            sys.stderr.write(f"warning: worker {self.worker} used every order of its share; start the environment with more --orders\n")

    def drain(self) -> dict[str, Any]:
        attempts, self.attempts = self.attempts, []
        return {"journeys": self.ledger.drain(), "attempts": attempts}


class MasterSide:
    """The master (or the single process): environment, merged results, settle, oracle, gates."""

    def configure(self, options) -> None:
        """Gates, shape and pace from the options (at init, and again as each test starts: the
        web UI may have changed them); ValueError naming the option that cannot be used."""
        try:
            gates = gate_rules.Gates.from_options(
                self.scenario, error_rate=options.sla_error_rate, ack_ms=options.sla_ack_ms, rma_lag_s=options.sla_rma_lag_s,
                credit_lag_s=options.sla_credit_lag_s, reconcile=not options.rh_no_reconcile)
        except gate_rules.GateError as e:
            raise ValueError(str(e)) from None
        profile = Profile(options.rh_shape, options.rh_rate, self.scenario.epoch, options.rh_compression,
                          options.rh_season_days, options.rh_step_rate, options.rh_step_s)
        pace_s = _positive("--rh-pace", options.rh_pace)
        _share("--rh-duplicate-rate", options.rh_duplicate_rate)
        _positive("--rh-settle", options.rh_settle)
        self.options, self.gates, self.profile, self.pace_s = options, gates, profile, pace_s

    def __init__(self, options, repo: Path) -> None:
        self.scenario = _scenario(options.rh_scenario)
        self.configure(options)
        self.dir = Path(options.rh_dir).resolve()
        self.proc: subprocess.Popen | None = None
        self.env = self._environment(options, repo)
        self.scenario = _scenario(self.env["scenario"]) if options.rh_env else self.scenario
        self.master = master_data(self.env["seed_config"])
        self.journeys: dict[str, dict[str, Any]] = {}
        self.ack = AckLatency()
        self.deliveries: list[tuple] = []  # every delivery attempt of the load (ATTEMPT fields), for the run record
        self.flushed: set[str] = set()
        self.workers = 0
        self.local: Context | None = None
        self.target_rates: list[float] = []
        self.exit_code = 0
        self.finishing = False  # settling and reconciling after a test: the web UI says so
        self.last: dict[str, Any] | None = None  # the last finished test's report and gates
        self.started = time.monotonic()
        self._runs = 0

    # -- the environment -----------------------------------------------------------------------

    def _environment(self, options, repo: Path) -> dict[str, Any]:
        if options.rh_env:
            return read_env(Path(options.rh_env))
        if options.rh_orders < 1:
            raise ValueError(f"--rh-orders: expected at least 1, got {options.rh_orders}")
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "load.env", "--dir", str(self.dir), "--scenario", options.rh_scenario,
                "--orders", str(options.rh_orders), "--stop-with", str(os.getpid())]
        if options.rh_sut_url:
            args += ["--sut-url", options.rh_sut_url]
        for name in filter(None, (d.strip() for d in options.rh_defects.split(","))):
            args += ["--defect", name]
        (self.dir / ENV_FILE).unlink(missing_ok=True)
        log = open(self.dir / "load-env.log", "wb")  # noqa: SIM115 (the child keeps it)
        # Its own session: a terminal's Ctrl-C reaches Locust alone, which settles and reconciles
        # against this environment before stopping it (close()).
        self.proc = subprocess.Popen(args, cwd=repo, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + ENV_START_TIMEOUT_S
        while not (self.dir / ENV_FILE).exists():
            if self.proc.poll() is not None:
                raise ValueError(f"the load environment did not start: {(self.dir / 'load-env.log').read_text()[-1500:].strip()}")
            if time.monotonic() > deadline:
                self.close()
                raise ValueError(f"the load environment did not start within {ENV_START_TIMEOUT_S:g} s (see {self.dir / 'load-env.log'})")
            time.sleep(0.1)
        return read_env(self.dir / ENV_FILE)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def next_run(self) -> str:
        self._runs += 1
        return f"{int(self.env['started_at']) % 100_000:05d}{self._runs}"

    # -- results from the load processes ---------------------------------------------------------

    def merge(self, data: dict[str, Any], final: bool = False, node: str | None = None) -> None:
        for journey in data.get("journeys") or ():
            self.journeys[journey["return_id"]] = journey
        attempts = data.get("attempts") or ()
        for fields in attempts:
            if fields[4] is not None:  # answered: round trip, plus how late it was sent
                self.ack.record(fields[5] + fields[6], fields[5])
        self.deliveries.extend(map(tuple, attempts))  # kept as tuples (half the memory of dicts) until the record
        if final and node is not None:
            self.flushed.add(node)

    # -- after the load ----------------------------------------------------------------------------

    def finish(self, stats, request_event) -> int:
        """Settle, reconcile, report the lags into Locust's statistics, check the gates. A Ctrl-C
        meanwhile (Locust has already stopped on the first) cuts the settling short, no more."""
        self.finishing = True
        try:
            with _ctrl_c_cuts_short() as interrupted:
                last = self._finish(stats, request_event, interrupted)
        finally:
            self.finishing = False
        # Shown (the web UI's tab) only now that Ctrl-C is Locust's again: a person who sees the
        # gates and presses Ctrl-C quits.
        self.last = last
        return self.exit_code

    def _finish(self, stats, request_event, interrupted: threading.Event) -> dict[str, Any]:
        wall = time.monotonic() - self.started
        report: dict[str, Any] = {"schema": "returns-harness/load-report/1", "sut": self.env["sut"],
                                  "shape": self.options.rh_shape, "returns": len(self.journeys)}
        stages: dict[str, int] = {}
        for j in self.journeys.values():
            stages[j["stage"]] = stages.get(j["stage"], 0) + 1
        report["stages"] = stages
        fakes = Fakes(self.env)
        run_verdict = None
        lag = {"rma": [], "credit_memo": [], "closed": []}
        try:
            if self.gates.reconcile and self.journeys:
                sys.stderr.write(f"\nreturns-harness load: settling (up to {self.options.rh_settle:g} s) for "
                                 f"{len(self.journeys)} returns; Ctrl-C reconciles now\n")
                statuses, waited = settle(fakes, self.journeys, self.options.rh_settle, cut_short=interrupted.is_set)
                report["settle_seconds"] = round(waited, 1)
                if interrupted.is_set():
                    report["settle_cut_short"] = True
                summary = {"load": {"returns": len(self.journeys), "stages": stages}, "sut": self.env["sut"]}
                run, state = record(self.scenario, self.master, fakes, self.journeys, statuses, summary, journal(self.deliveries),
                                    ack_p99_ms=self.gates.ack_ms.get(99.0))
                save(run, self.dir / "run")
                run_verdict = verdict(self.dir / "run", self.env["sut"], wall)
                (self.dir / "verdict.json").write_text(json.dumps(run_verdict, indent=1, default=str))
                lag = lags(state, self.journeys)
        finally:
            fakes.close()
        for name, samples in (("return requested → RMA", lag["rma"]), ("return requested → credit memo", lag["credit_memo"]),
                              ("return requested → closed", lag["closed"])):
            for s in samples:
                request_event.fire(request_type=E2E, name=name, response_time=s * 1000, response_length=0, exception=None,
                                   context={})
        requests = failures = 0
        for (name, method), entry in stats.entries.items():
            if method != E2E:
                requests += entry.num_requests
                failures += entry.num_failures
        ack = self.ack.summary()
        results = gate_rules.evaluate(self.gates, requests=requests, failures=failures, ack=ack, rma_lags=lag["rma"],
                                      credit_lags=lag["credit_memo"], verdict=run_verdict)
        report.update(requests=requests, failures=failures, ack_latency_ms=ack, gates=results,
                      lags_s={k: _summary(v) for k, v in lag.items()},
                      checks={c["name"]: c["valid"] for c in run_verdict["checks"]} if run_verdict else None)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "load-report.json").write_text(json.dumps(report, indent=1, default=str))
        _print(report, results, self.dir)
        self.exit_code = 1 if gate_rules.failed(results) else 0
        return {"report": report, "gates": results}


@contextlib.contextmanager
def _ctrl_c_cuts_short():
    """While finishing, Ctrl-C (SIGINT) stops the waiting, not the process: the returns that
    arrived are still reconciled and the gates checked. Outside the main thread, nothing changes."""
    pressed = threading.Event()

    def on_sigint(_signum, _frame) -> None:
        if not pressed.is_set():
            sys.stderr.write("\nreturns-harness load: Ctrl-C: no more waiting; reconciling what has arrived\n")
        pressed.set()

    try:  # asked, not checked: under gevent each greenlet looks like a thread of its own
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: signals are not ours to take
        yield pressed
        return
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def journal(attempts: list[tuple]) -> list[dict[str, Any]]:
    """The load's delivery attempts as the run record's ``deliveries``: the fields the oracle reads
    (``status``, ``latency_ms`` from the intended send time) and shows as evidence."""
    out = []
    for fields in attempts:
        attempt = dict(zip(ATTEMPT, fields, strict=True))
        round_trip, late = attempt.pop("round_trip_s"), attempt.pop("late_s")
        answered = attempt["status"] is not None  # no answer: no latency (as the world's Deliverer journals it)
        attempt["latency_ms"] = round((round_trip + late) * 1000, 3) if answered else None
        attempt["round_trip_ms"] = round(round_trip * 1000, 3) if answered else None
        out.append(attempt)
    return out


def _summary(samples: list[float]) -> dict[str, Any]:
    from simulators.oracle.checks import percentile

    if not samples:
        return {"count": 0}
    return {"count": len(samples), **{f"p{p}": round(percentile(samples, p), 3) for p in (50, 95, 99)}, "max": round(max(samples), 3)}


def _print(report: dict[str, Any], results: list[dict[str, Any]], directory: Path) -> None:
    out = sys.stderr
    ack = report["ack_latency_ms"]
    stages = " · ".join(f"{stage} {n}" for stage, n in sorted(report["stages"].items(), key=lambda s: -s[1])) or "none"
    out.write(f"\nreturns-harness load: {report['returns']} returns ({stages})\n")
    columns = ("count", "p50", "p90", "p99", "max")
    out.write(f"  {'ack latency ms':<16}" + "".join(f"{k:>10}" for k in columns) + "\n")
    for kind in ("corrected", "uncorrected"):
        row = ack[kind]
        out.write(f"  {kind:<16}" + "".join(f"{str(row.get(k)):>10}" for k in columns) + "\n")
    if report.get("settle_cut_short"):
        out.write("  settling was cut short (Ctrl-C): returns still on their way were judged as they stood\n")
    for r in results:
        mark = "PASS" if r["passed"] else "FAIL"
        out.write(f"  gate {mark}  {gate_rules.describe(r)}\n")
    for r in gate_rules.failed(results):
        out.write(f"SLA gate FAILED: {gate_rules.describe(r)}\n")
    out.write(f"report: {directory / 'load-report.json'}; run record: {directory / 'run'}"
              f" (returns-harness reconcile {directory})\n")
    out.flush()
