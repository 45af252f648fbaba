"""The oracle: the correct reference passes every check under a storm of faults, and each known
defect of the reference makes its check fail (a check that cannot fail is worth nothing).
Then `returns-harness run` and `reconcile` end to end, with their exit codes."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from reference_middleware.defects import BUSINESS_CLOCK, Defect
from simulators.domain import Condition
from simulators.oracle import query, reconcile, tables
from simulators.oracle.checks import CHECKS, Check
from simulators.scenario import Scenario
from tests.early_runs import verdict_of
from tests.test_reference_world import storm

# Each defect, the run that shows it, and the checks it must make fail. The storm has every fault;
# the quiet run has none, so there a defect must fail its checks and nothing else ("only").
CAUGHT_BY = {
    "no-dedupe": ("storm", {"one-rma-per-approved-return"}),
    "no-idempotency-key": ("storm", {"idempotency-keys-on-writes"}),
    "trusts-order": ("storm", {"no-status-regression"}),
    "refund-before-inspection": ("storm", {"no-refund-before-inspection"}),
    "no-retry": ("storm", {"every-return-ends"}),
    "ignores-retry-after": ("storm", {"retry-after-honoured"}),
    "double-restock": ("storm", {"stock-matches-dispositions"}),
    "stock-at-rma-site": ("storm", {"stock-matches-dispositions"}),
    "ignores-cancellation": ("storm", {"cancelled-stays-cancelled"}),
    "skips-refunded": ("quiet only", {"portal-shows-the-refund"}),
    "skips-signature-check": ("storm", {"nothing-for-bad-input"}),
    "wrong-refund-amount": ("storm", {"one-credit-memo-per-refund"}),
    "slow": ("quiet only", {"acknowledgement-latency"}),  # 600 ms a step is nothing to an SLA in hours, in the layer's time
    "skips-supplier-claim": ("quiet only", {"supplier-claims-match"}),
    "no-replacement": ("quiet only", {"one-replacement-per-exchange"}),
    "skips-asn": ("quiet only", {"one-asn-and-label-before-arrival"}),
    "nightly-refunds": ("quiet only", {"inspection-to-credit"}),
    "rma-batch": ("quiet only", {"request-to-rma"}),
    "batch-closing": ("quiet only", {"request-to-closed"}),
}
# Defects whose failure needs what only a whole `chaos` run has: tested there.
CAUGHT_ELSEWHERE = {"ack-before-store": ("tests/test_chaos.py, under the kill nemesis", {"every-return-ends"}),
                    "requeues-poison": ("tests/test_broker.py, over the message broker", {"poison-dead-lettered"}),
                    "accepts-truncated-batch": ("tests/test_batch.py, in batch files", {"truncated-file-refused"})}
CAUGHT = set().union(*(checks for _, checks in (CAUGHT_BY | CAUGHT_ELSEWHERE).values()))


def short_storm():
    """The storm, shorter and faster, with forged and malformed deliveries, ERP throttling and
    opened items (which carry a restocking fee) frequent enough to happen in a few dozen returns.
    Its SLAs are out of reach: under these faults their figures depend on the machine's load."""
    scenario = storm()
    relaxed = scenario.slas.model_copy(update={"request_to_rma_hours_p95": 10_000, "inspection_to_credit_hours_p95": 10_000,
                                               "request_to_closed_days_p95": 10_000, "ack_latency_ms_p99": 60_000})
    carrier = scenario.carrier.model_copy(update={"misroute_rate": 0.15})  # parcels restocked at another site than the RMA's
    customer = scenario.customer.model_copy(update={"cancel_requested_rate": 0.1})  # cancelled before any approval
    # Four business hours an inspection (240 ms at this clock): room for a layer that refunds on
    # receipt to do so before the inspection, even on a machine busy with other runs (at 12
    # minutes, 12 ms, it sometimes could not, and the defect went unseen).
    warehouse = scenario.warehouse.model_copy(update={"inspect_minutes": 240, "condition_mix": {
        Condition.NEW: 0.2, Condition.OPENED: 0.7, Condition.DAMAGED: 0.05, Condition.DEFECTIVE: 0.05}})
    events = scenario.faults.events.model_copy(update={"forged_rate": 0.08, "malformed_rate": 0.04})
    api = [rule.model_copy(update={"limit": 3}) if rule.kind == "rate_limit" else rule for rule in scenario.faults.api]
    api[0] = api[0].model_copy(update={"active_from": datetime(2026, 12, 26, 9, tzinfo=UTC),  # the outage, in busy hours
                                       "active_until": datetime(2026, 12, 26, 13, tzinfo=UTC)})
    return scenario.model_copy(update={"time_scale": 60_000, "volumes": scenario.volumes.model_copy(update={"days": 0.6}),
                                       "faults": scenario.faults.model_copy(update={"events": events, "api": api}),
                                       "slas": relaxed, "warehouse": warehouse, "carrier": carrier, "customer": customer})


def quiet() -> Scenario:
    """No faults, the default SLAs but a tight one for closing: what a defect breaks on its own."""
    return Scenario.model_validate(TINY)


RUNS_AT_ONCE = 5  # live runs side by side: each mostly waits on its simulated clock (the 20 runs use 1.1 cores)
# Judged on wall-clock latency: run alone after the others, so the machine's quiet seconds can
# decide it (beside four other runs no second is quiet, and the busy rule rightly says UNKNOWN).
ALONE = ("slow",)


def _runs() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Name -> (scenario file, options): the correct reference under the storm, a slow but
    correct one and a plain one on the quiet scenario, and each defect in its run."""
    runs = {"correct": ("storm", ()), "slower": ("quiet", ("--react-delay=2",)), "plain": ("quiet", ())}
    return runs | {defect: (run.split()[0], (f"--defect={defect}",)) for defect, (run, _) in CAUGHT_BY.items()}


def start_side_by_side(early) -> Path:
    """Start every run but the ALONE ones, RUNS_AT_ONCE at a time (tests/conftest.py does so when
    the session starts: they mostly wait on their compressed clocks); where they report."""
    base = early.root / "oracle"
    if not base.exists():
        base.mkdir()
        for name, scenario in (("storm", short_storm()), ("quiet", quiet())):
            (base / f"{name}.yaml").write_text(yaml.safe_dump(scenario.model_dump(mode="json")))
    for name, (scenario, options) in _runs().items():
        if name not in ALONE:
            early.start(f"oracle-{name}", ["run", f"{scenario}.yaml", "--report-dir", name, *options], group="oracle", at_once=RUNS_AT_ONCE,
                        cwd=base)
    return base


@pytest.fixture(scope="module")
def verdicts(early_runs) -> dict[str, tuple[Path, dict]]:
    """Every run of this module, as a user runs it (`returns-harness run FILE --defect ...`): name
    -> (report directory, verdict), and "outputs": name -> the finished command."""
    base = start_side_by_side(early_runs)  # already started, unless this module runs on its own
    runs = _runs()
    outputs = {name: early_runs.result(f"oracle-{name}") for name in runs if name not in ALONE}
    for name in ALONE:  # after the others, on a machine they left quiet
        scenario, options = runs[name]
        outputs[name] = harness("run", f"{scenario}.yaml", "--report-dir", name, *options, cwd=base)
    return {name: (base / name, verdict_of(finished, base / name)) for name, finished in outputs.items()} | {"outputs": outputs}


def failed(verdict: dict) -> list[str]:
    return [c["name"] for c in verdict["checks"] if c["valid"] is False]


@pytest.fixture(scope="module")
def correct(verdicts):
    return verdicts["correct"]


def test_the_correct_reference_passes_every_check_under_the_storm(correct):
    _, verdict = correct
    assert failed(verdict) == [] and verdict["ok"]
    decided = {c["name"] for c in verdict["checks"] if c["valid"] is True}
    storm_checks = set().union(*(checks for run, checks in CAUGHT_BY.values() if run == "storm"))
    assert storm_checks <= decided  # every check a defect must fail here was actually exercised


def test_every_check_has_a_defect_that_fails_it_and_every_defect_is_tried():
    assert {c.name for c in CHECKS} == CAUGHT
    assert set(CAUGHT_BY) | set(CAUGHT_ELSEWHERE) == {d.value for d in Defect}


@pytest.mark.parametrize("defect", sorted(CAUGHT_BY))
def test_each_defect_fails_its_check_with_evidence(verdicts, defect):
    run, checks = CAUGHT_BY[defect]
    _, verdict = verdicts[defect]
    assert checks <= set(failed(verdict)) and not verdict["ok"]
    if run == "quiet only":
        assert set(failed(verdict)) == checks
    for check in (c for c in verdict["checks"] if c["name"] in checks):
        if check["kind"] == "invariant":
            violation = check["violations"][0]
            assert violation["return_id"].startswith("RET-") and violation["message"]
        else:
            assert check["sla"]["observed"] > check["sla"]["threshold"]
            # Named with the clock it was judged on: the batch defects schedule by business time.
            assert check["sla"]["clock"] == ("business" if defect in BUSINESS_CLOCK else "wall")
    assert verdict["time"]["clock"] == ("business" if defect in BUSINESS_CLOCK else "wall")


def test_a_correct_layer_that_takes_two_seconds_to_react_to_every_event_passes(verdicts):
    """Its time counts at face value: two wall seconds, not two days of compressed business time."""
    _, verdict = verdicts["slower"]
    assert verdict["ok"] and failed(verdict) == [], failed(verdict)
    assert verdict["sut"]["react_delay_s"] == 2 and verdict["time"]["clock"] == "wall"
    rma = next(c for c in verdict["checks"] if c["name"] == "request-to-rma")["sla"]
    assert rma["clock"] == "wall" and rma["observed"] < 0.1  # hours: the 2 s delay is 2 s, not 17 business hours


def test_a_saved_run_reconciles_to_the_same_verdict(correct):
    path, verdict = correct
    again = reconcile(path / "run")
    assert [(c["name"], c["valid"], c["counts"]) for c in again["checks"]] == [(c["name"], c["valid"], c["counts"]) for c in verdict["checks"]]


def edited(run_dir: Path, into: Path, *statements: str) -> Path:
    """A copy of a saved run, changed by SQL statements over its tables."""
    con, small = tables.open_saved(run_dir)
    for table in tables.SCHEMA:
        con.execute(f"CREATE TABLE copy AS SELECT * FROM {table}; DROP VIEW {table}; ALTER TABLE copy RENAME TO {table}")
    for statement in statements:
        con.execute(statement)
    return tables.save(con, small, into)


def test_every_check_says_what_exposed_it_and_the_coverage_counts_what_happened(correct):
    """Exposure is named for every check; the event cells add up to the faults the world injected,
    and the API cells show the storm's throttling where it happened."""
    from simulators.oracle.coverage import EXPOSURE

    _, verdict = correct
    assert set(EXPOSURE) == {c.name for c in CHECKS}
    assert all(c["exposure"] and all(isinstance(n, int) for n in c["exposure"].values()) for c in verdict["checks"])
    cells = verdict["coverage"]
    injected = verdict["summary"]["faults_injected"]
    for kind, n in injected.items():
        assert sum(row.get(kind) or 0 for row in cells["events"].values()) == n, kind
    told_to_wait = sum(row["rate_limit"] + row["concurrency_limit"] + row["outage"] for row in cells["api"].values())
    retry = next(c for c in verdict["checks"] if c["name"] == "retry-after-honoured")
    assert told_to_wait > 0 and sum(retry["exposure"].values()) == told_to_wait
    (answered,) = query(correct[0] / "run", "SELECT count(*) FROM journal WHERE status IN (429, 503) AND retry_after_s IS NOT NULL "
                                            "AND fault_kind IN ('rate_limit', 'concurrency_limit', 'outage')")[0]
    assert answered == told_to_wait


def with_small(run_dir: Path, into: Path, change) -> Path:
    """A copy of a saved run whose small parts (scenario, summary, timeline) ``change`` edits."""
    shutil.copytree(run_dir, into)
    small = {name: orjson.loads((into / f"{name}.json").read_bytes()) for name in tables.SMALL}
    change(small)
    for name, value in small.items():
        (into / f"{name}.json").write_bytes(orjson.dumps(value))
    return into


def test_a_timing_fail_the_harness_own_lateness_could_explain_is_unknown_not_fail(correct, tmp_path):
    """The same slow acknowledgements: FAIL when the harness kept time, UNKNOWN (with why and
    what to do) when its own event loop stalled as long as the excess."""
    path, verdict = correct
    ack = next(c for c in verdict["checks"] if c["name"] == "acknowledgement-latency")["sla"]
    assert verdict["harness"]["loop_stall_ms"]["count"] > 0  # the run measured itself

    def judged(stall_p99_ms: float, name: str) -> dict:
        def change(small):
            small["scenario"]["slas"]["ack_latency_ms_p99"] = ack["observed"] - 5  # over the limit by 5 ms
            small["summary"]["harness"]["loop_stall_ms"].update(p99=stall_p99_ms, max=stall_p99_ms)
            small["summary"]["harness"].pop("cpu_pressure", None)  # the harness's lateness alone (a busy machine: below)
        again = reconcile(with_small(path / "run", tmp_path / name, change))
        return again, next(c for c in again["checks"] if c["name"] == "acknowledgement-latency")

    kept_time, check = judged(1.0, "kept")
    assert check["valid"] is False and not kept_time["harness"]["behind"]
    fell_behind, check = judged(50.0, "behind")
    assert check["valid"] is None and "harness's own lateness" in check["reason"] and "--time-scale" in check["reason"]
    assert fell_behind["harness"]["behind"] and fell_behind["ok"]  # nothing the layer did failed


def test_acknowledgements_slow_only_while_the_machine_was_busy_are_unknown_not_fail(correct, tmp_path):
    """Slow answers in the seconds when tasks waited for a CPU (PSI) and fast ones otherwise: the
    machine's doing as much as the layer's, UNKNOWN. Slow in the quiet seconds too: FAIL."""
    path, verdict = correct
    started = verdict["summary"]["harness"]["started_wall"]
    second = f"floor(sent_wall - {started})::INTEGER"

    def judged(name: str, slow_where: str, pressure: bool = True, quiet_from: int | None = None) -> dict:
        run = edited(path / "run", tmp_path / f"{name}-tables",
                     f"UPDATE deliveries SET latency_ms = CASE WHEN {slow_where} THEN 900 ELSE 10 END WHERE latency_ms IS NOT NULL")
        seconds = range(int(query(run, f"SELECT max({second}) FROM deliveries")[0][0]) + 1)

        def change(small):
            small["scenario"]["slas"]["ack_latency_ms_p99"] = 500
            small["summary"]["harness"]["loop_stall_ms"].update(p99=1.0, max=1.0)  # the harness itself kept time
            busy_at = (lambda t: t % 2 == 0) if quiet_from is None else (lambda t: t < quiet_from)
            small["summary"]["harness"]["cpu_pressure"] = [[t, 90.0 if busy_at(t) else 5.0] for t in seconds] if pressure else None
        again = reconcile(with_small(run, tmp_path / name, change))
        return next(c for c in again["checks"] if c["name"] == "acknowledgement-latency")

    busy_only = judged("busy-only", f"{second} % 2 = 0")
    assert busy_only["valid"] is None and "waited for a CPU" in busy_only["reason"] and "quieter machine" in busy_only["reason"]
    assert judged("always", "true")["valid"] is False  # slow in the quiet seconds too: the layer's
    assert judged("no-psi", f"{second} % 2 = 0", pressure=False)["valid"] is False  # no way to tell: the verdict stands
    # Busy all but the last seconds, which hold 2% of the answers, slow throughout: the quiet answers
    # alone exceed the 1% a p99 allows the whole run, so however fast the busy ones might have been,
    # the layer fails. (Not just the last second: in some runs it holds a single answer.)
    per_second = query(path / "run", f"SELECT {second} AS s, count(*) FROM deliveries WHERE latency_ms IS NOT NULL GROUP BY s ORDER BY s DESC")
    total, tail = sum(n for _, n in per_second), 0
    for quiet_from, n in per_second:
        tail += n
        if tail >= 0.02 * total:
            break
    assert judged("quiet-tail", "true", quiet_from=quiet_from)["valid"] is False


def test_a_return_lost_while_the_layer_was_not_answering_is_undecidable_not_a_fail(correct, tmp_path):
    """Deliveries the harness gave up on during a silence would be retried for days by a real
    sender: the loss is reported with the window, as UNKNOWN. The same loss with the layer
    answering is a FAIL."""
    path, _ = correct
    rid, t0 = query(path / "run", "SELECT correlation_id, min(sent_wall) FROM deliveries WHERE event_type = 'return.created' "
                                  "AND correlation_id IN (SELECT return_id FROM rmas) GROUP BY ALL ORDER BY 1 LIMIT 1")[0]
    lost = f"DELETE FROM rmas WHERE return_id = '{rid}'"

    def rma_check(run_dir: Path) -> tuple[dict, dict]:
        verdict = reconcile(run_dir)
        return verdict, next(c for c in verdict["checks"] if c["name"] == "one-rma-per-approved-return")

    _, answered = rma_check(edited(path / "run", tmp_path / "answered", lost))
    assert answered["valid"] is False and answered["counts"]["lost"] == 1
    silent = edited(path / "run", tmp_path / "silent", lost, f"""
        UPDATE deliveries SET status = NULL, error = 'cannot connect to the layer',
               final = CASE WHEN correlation_id = '{rid}' THEN 'gave up' ELSE final END
        WHERE sent_wall BETWEEN {t0} AND {t0} + 3""")
    verdict, check = rma_check(silent)
    assert check["valid"] is None and "stopped answering" in check["reason"] and "cannot connect" in check["reason"]
    assert verdict["layer_silences"] and rid in verdict["layer_silences"][0]["given_up"]
    # A forged copy given up in the silence is no excuse: no correct layer would have acted on it.
    forged = edited(silent, tmp_path / "forged", f"UPDATE deliveries SET fault = 'forged' WHERE correlation_id = '{rid}' AND final = 'gave up'")
    verdict, check = rma_check(forged)
    assert check["valid"] is False and verdict["layer_silences"] and rid not in verdict["layer_silences"][0]["given_up"]


def test_an_ineligible_request_that_only_arrived_forged_is_excused_not_lost(correct, tmp_path):
    path, _ = correct
    (rid,) = query(path / "run", "SELECT return_id FROM expected WHERE NOT eligible "
                                "AND return_id NOT IN (SELECT correlation_id FROM faults) ORDER BY return_id LIMIT 1")[0]
    # Never rejected: the layer never heard of it.
    unheard = edited(path / "run", tmp_path / "unheard", f"UPDATE returns SET status = 'requested' WHERE id = '{rid}'")

    def ends(run_dir: Path) -> dict:
        return next(c for c in reconcile(run_dir)["checks"] if c["name"] == "every-return-ends")

    assert ends(unheard)["counts"]["lost"] == 1
    forged = edited(unheard, tmp_path / "forged", f"INSERT INTO faults VALUES (1000000, 'forged', 'evt_forged', 'return.created', '{rid}')")
    assert ends(forged)["counts"].get("lost", 0) == 0 and ends(forged)["valid"] is True


def test_a_return_the_world_stopped_waiting_for_is_caught_up_if_the_layer_finished_it(correct, tmp_path):
    """The world's patience is capped in wall seconds; a layer that finished the return after it
    ran out (a backlog on a busy machine) did not lose it. One that never did, did."""
    path, _ = correct
    (rid,) = query(path / "run", "SELECT return_id FROM expected WHERE outcome = 'closed' AND return_id NOT IN (SELECT "
                                "correlation_id FROM faults WHERE kind IN ('malformed', 'forged', 'clock-skew')) ORDER BY return_id LIMIT 1")[0]

    def ends(run_dir: Path) -> dict:
        return next(c for c in reconcile(run_dir)["checks"] if c["name"] == "every-return-ends")

    gave_up = edited(path / "run", tmp_path / "gave-up", f"UPDATE expected SET outcome = 'stalled:awaiting-refund' WHERE return_id = '{rid}'")
    assert ends(gave_up)["valid"] is True and ends(gave_up)["counts"]["caught-up"] == 1
    unfinished = edited(gave_up, tmp_path / "unfinished", f"UPDATE returns SET status = 'inspected' WHERE id = '{rid}'")
    check = ends(unfinished)
    assert check["valid"] is False and check["counts"]["lost"] == 1
    assert check["violations"][0]["message"] == "awaiting-refund (portal: inspected)"
    # A forged carrier scan is no excuse for a refund the layer never made: it needed the
    # receipt and the inspection, which it had. A forged inspection is.
    scan = edited(unfinished, tmp_path / "scan", f"INSERT INTO faults VALUES (1000000, 'forged', 'evt_scan', 'tracking.updated', '{rid}')")
    assert ends(scan)["counts"]["lost"] == 1
    inspection = edited(unfinished, tmp_path / "inspection",
                        f"INSERT INTO faults VALUES (1000000, 'forged', 'evt_insp', 'inspection.completed', '{rid}')")
    excused = check["counts"].get("excused", 0)
    assert ends(inspection)["counts"].get("lost", 0) == 0 and ends(inspection)["counts"]["excused"] == excused + 1


def test_a_checker_that_raises_is_unknown_with_its_error_not_a_crash(correct, monkeypatch):
    path, _ = correct

    def broken_checker(con, scenario):
        return con.execute("SELECT no_such_column FROM expected").fetchall()

    import simulators.oracle

    first = CHECKS[0]
    monkeypatch.setattr(simulators.oracle, "CHECKS", [Check(first.name, first.kind, first.title, first.meaning, broken_checker), *CHECKS[1:]])
    verdict = reconcile(path / "run")
    broken = next(c for c in verdict["checks"] if c["name"] == first.name)
    assert broken["valid"] is None and "no_such_column" in broken["error"]
    assert all(c["valid"] is True for c in verdict["checks"] if c["name"] != first.name and c["counts"])


# -- the command ---------------------------------------------------------------------------------

# A live run's outcomes follow the layer's pace (which return the warehouse grades first, and so
# with which draw), so every case a defect needs is made common enough to appear in any run:
# ~14 inspected returns, 40% exchanges, and defective items (mostly returned to their vendor).
TINY = {
    "name": "tiny",
    "seed": 3,
    "time_scale": 30_000,  # 24 business hours are 2.9 wall seconds
    "volumes": {"days": 0.6, "returns_per_day": 60},
    "customer": {"cancel_rate": 0, "never_ship_rate": 0, "ship_delay_days_median": 0.3,
                 "resolution_mix": {"refund": 0.5, "exchange": 0.4, "store_credit": 0.1}},
    "carrier": {"transit_days_median": 0.4, "exception_rate": 0, "return_to_sender_rate": 0},
    "warehouse": {"condition_mix": {"new": 0.45, "opened": 0.3, "damaged": 0.05, "defective": 0.2}},
    # Every return here closes within 1.5 days; 3 leaves room, and is what batch-closing breaks.
    # The batch defects are judged in business time, where the reference's own work is compressed
    # too: an RMA within 8 business hours (0.96 wall seconds) is room for a busy machine, and
    # rma-batch's 12-hour hold breaks it.
    "slas": {"request_to_closed_days_p95": 3, "request_to_rma_hours_p95": 8},
}


def harness(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulators.cli", *args], capture_output=True, text=True, timeout=180, cwd=cwd, check=False)


def verdict_counts(report_dir) -> dict:
    return {c["name"]: c["counts"] for c in orjson.loads((report_dir / "verdict.json").read_bytes())["checks"]}


def test_run_verifies_the_reference_writes_reports_and_reconcile_reads_them_back(verdicts, tmp_path):
    out, verdict = verdicts["plain"]  # `returns-harness run quiet.yaml --report-dir plain`
    done = verdicts["outputs"]["plain"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / ".env.fakes").stat().st_mode & 0o077 == 0  # credentials and the webhook secret: the owner's only
    secrets = [v for k, v in (line.split("=", 1) for line in (out / ".env.fakes").read_text().splitlines() if "=" in line)
               if k.endswith(("_SECRET", "_API_KEY"))]
    assert len(secrets) == 5  # the ERP's client secret, three API keys, the webhook secret
    for path in (p for p in out.rglob("*") if p.is_file() and p.name != ".env.fakes"):
        text = (str(query(path.parent, f"SELECT * FROM {path.stem}")) if path.suffix == ".parquet"
                else path.read_bytes().decode("utf-8", "replace"))
        assert not [s for s in secrets if s in text], f"a secret in {path}"
    assert "one-rma-per-approved-return" in done.stdout and "PASS" in done.stdout
    assert re.search(r"^tiny \(seed 3\), \d+ s: season day", done.stdout, re.M)  # no terminal: plain progress lines for a CI log
    assert verdict_counts(out)["one-rma-per-approved-return"]["ok"] > 5
    assert verdict["ok"] and verdict["sut"]["kind"] == "reference"
    for name in ("junit.xml", "report.html", "run/expected.parquet"):
        assert (out / name).is_file()
    again = harness("reconcile", str(out), "--report-dir", "again", "--format", "json", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    # The verdict on stdout, for jq or a pipeline; the table for people on stderr.
    assert orjson.loads(again.stdout) == orjson.loads((tmp_path / "again" / "verdict.json").read_bytes())
    assert orjson.loads(again.stdout)["ok"] and "PASS" in again.stderr


def test_run_exits_1_when_a_defect_is_caught(verdicts):
    done = verdicts["outputs"]["skips-asn"]  # `returns-harness run quiet.yaml --defect=skips-asn`
    assert done.returncode == 1, done.stdout + done.stderr
    assert "one-asn-and-label-before-arrival" in done.stdout and "FAIL" in done.stdout


def test_run_exits_2_on_bad_flags_and_3_when_the_layer_is_unreachable(tmp_path):
    # Configuration mistakes are usage errors that say what to change, never a traceback (exit 1
    # would read as "a check failed").
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("")
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = {
            ("run", "--defect", "no-such-defect"): (2, "--defect: unknown no-such-defect"),
            ("reconcile", "nowhere"): (2, "nowhere does not exist"),
            ("reconcile", "empty"): (2, "is not a saved run"),
            ("run", "--sut-url", "http://127.0.0.1:9/webhooks"): (3, "unreachable"),
            ("run", "--report-dir", "a-file"): (2, "--report-dir a-file: is a file, not a directory"),
            ("run", "latin1.yaml"): (2, "latin1.yaml: not UTF-8 text"),
            ("run", "--sut-url", f"http://127.0.0.1:{port}/webhooks", "--base-port", str(port - 1)): (2, "choose another --base-port"),
            ("reconcile", "nowhere", "--report-dir", "a-file"): (2, "--report-dir a-file: is a file"),
        }
        with ThreadPoolExecutor(4) as pool:  # each is a process of its own, mostly starting up
            done = dict(zip(cases, pool.map(lambda args: harness(*args, cwd=tmp_path), cases), strict=True))
    for args, (code, expected) in cases.items():
        answer = done[args]
        assert answer.returncode == code and expected in answer.stderr.replace("\n", " ") and "Traceback" not in answer.stderr, (args, answer.stderr)


def test_counts_stay_complete_when_the_listing_stops(verdicts, monkeypatch):
    """A million returns cannot each carry evidence: a check lists its first LISTED violations,
    and its counts (and the report) still say how many there were."""
    from simulators.oracle import checks
    from simulators.report.html import render_html

    path, _ = verdicts["no-dedupe"]
    monkeypatch.setattr(checks, "LISTED", 1)
    again = reconcile(path / "run")
    rmas = next(c for c in again["checks"] if c["name"] == "one-rma-per-approved-return")
    assert len(rmas["violations"]) == 1 and rmas["violations_found"] == rmas["counts"]["duplicated"] >= 2
    assert rmas["violations"][0]["evidence"]["deliveries"] and rmas["violations"][0]["evidence"]["documents"]
    assert f"one-rma-per-approved-return: {rmas['violations_found'] - 1}" in render_html(again)


def test_a_damaged_saved_run_is_refused_with_the_file_named(correct, tmp_path):
    path, _ = correct
    damaged = tmp_path / "damaged"
    shutil.copytree(path / "run", damaged)
    (damaged / "journal.parquet").write_bytes(b"not parquet")
    done = harness("reconcile", str(damaged), cwd=tmp_path)
    assert done.returncode == 2 and "journal.parquet: not a readable Parquet table" in done.stderr.replace("\n", ""), done.stderr
    assert "Traceback" not in done.stderr


def test_a_run_saves_and_reconciles_in_a_folder_whose_name_has_a_quote(tmp_path):
    from simulators.oracle import RunRecord, save
    from simulators.scenario import load

    run = RunRecord(scenario=load("baseline").model_dump(mode="json"), expected={}, state={}, journals={})
    saved = save(run, tmp_path / "o'brien's run")
    verdict = reconcile(saved)
    assert not verdict["ok"] and all(c["error"] is None for c in verdict["checks"])


def test_a_run_saved_by_an_earlier_version_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "expected.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="earlier returns-harness .* run the scenario again"):
        reconcile(tmp_path)


def test_a_run_that_verified_nothing_does_not_pass(correct, tmp_path):
    path, _ = correct
    nothing = edited(path / "run", tmp_path / "nothing", *(f"DELETE FROM {table}" for table in tables.SCHEMA))
    verdict = reconcile(nothing)
    assert not verdict["ok"] and failed(verdict) == []


def test_the_traceability_table_is_complete_agrees_with_the_defect_runs_and_is_current():
    """Every check has what exercises it and a defect that fails it; the table names the same
    defects this module (and tests/test_chaos.py) run; docs/TRACEABILITY.md is generated from it."""
    from simulators.oracle.coverage import EXPOSURE
    from simulators.oracle.traceability import FAILED_BY, render

    names = {c.name for c in CHECKS}
    assert set(FAILED_BY) == names and all(FAILED_BY.values())
    assert all(EXPOSURE[name] for name in names)
    ran: dict[str, set[str]] = {}
    for defect, (_, checks) in (CAUGHT_BY | CAUGHT_ELSEWHERE).items():
        for name in checks:
            ran.setdefault(name, set()).add(defect)
    assert {name: set(defects) for name, defects in FAILED_BY.items()} == ran
    doc = Path(__file__).parent.parent / "docs" / "TRACEABILITY.md"
    assert doc.read_text() == render(), "run: python -m simulators.oracle.traceability > docs/TRACEABILITY.md"
