"""The reference integration layer, a separate process, against the fakes over real sockets.

Each test plays one situation from production (a duplicate, a late scan, an outage, a lost
response...) with a scripted world and asserts on what the fakes hold afterwards; each known
defect has a test showing the behaviour it breaks. Whole seasons with every fault at once run
in test_reference_world.py.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import REFERENCE_SEED as SEED
from tests.reference_process import ReferenceProcess, wait_until
from tests.reference_script import WAIT_S, Script, approved, through_inspection


@pytest.fixture
def fleet(reference_fleet):
    return reference_fleet


@pytest.fixture
def orders(reference_orders):
    """Each test takes its own orders, so that returns never collide across tests."""
    return reference_orders


def start(fleet, tmp_path, *defects: str, database: str | None = None) -> Script:
    ref = ReferenceProcess(tmp_path, defects=defects, database=database)
    ref.start(fleet.env())
    ref.wait_healthy()
    return Script(fleet, ref, SEED)


@pytest.fixture
def run(fleet, tmp_path, request):
    """``run(*defects)`` starts a reference; it is stopped and the fakes healed afterwards."""
    scripts: list[Script] = []

    def starter(*defects: str, database: str | None = None) -> Script:
        workdir = tmp_path / f"ref{len(scripts)}"
        workdir.mkdir()
        script = start(fleet, workdir, *defects, database=database)
        scripts.append(script)
        return script

    yield starter
    for script in scripts:
        script.heal()
        script.ref.stop()
        script.close()


# -- the correct reference ---------------------------------------------------------------------


def test_one_return_runs_from_request_to_refund_exactly_once(run, orders):
    script = run()
    ret = approved(script, next(orders["eligible"]))
    rma = script.rmas(ret["id"])
    assert len(rma) == 1 and rma[0]["external_reference"] == ret["id"]
    assert len(script.get("carrier", "/labels", rma_id=rma[0]["id"])) == 1
    assert len(script.get("wms", "/expected-receipts", rma_id=rma[0]["id"])) == 1
    script.send(script.scan(ret, "in_transit", ret["requested_at"]))
    script.wait_status(ret["id"], "in_transit")
    through_inspection(script, ret)
    script.wait_status(ret["id"], "closed")
    memos = script.memos(rma[0]["id"])
    expected = sum(line["unit_price"]["amount"] * line["quantity"] for line in ret["lines"])
    assert [m["total"]["amount"] for m in memos] == [expected]  # new condition: a full refund
    units = sum(line["quantity"] for line in ret["lines"])
    assert sum(a["quantity"] for a in script.adjustments(rma[0]["id"])) == units
    assert {a["stock_status"] for a in script.adjustments(rma[0]["id"])} == {"available"}
    assert [h["to"] for h in script.history(ret["id"])] == ["requested", "approved", "in_transit", "received", "refunded", "closed"]
    assert all(h["correlation_id"] == ret["id"] for h in script.history(ret["id"])[1:])
    status = script.ref.status(ret["id"])
    assert status["status"] == "closed" and status["finished"]


def test_a_return_outside_the_window_is_rejected_and_nothing_is_written(run, orders):
    script = run()
    ret = script.new_return(next(orders["late"]))
    script.send(script.created(ret))
    script.wait_status(ret["id"], "rejected")
    assert script.rmas(ret["id"]) == []
    assert "window" in script.get("returns_portal", f"/returns/{ret['id']}")["rejection_reason"]


def test_a_signed_event_for_a_return_the_portal_does_not_know_writes_nothing(run, orders):
    script = run()
    ret = script.new_return(next(orders["eligible"]))
    unknown = {**ret, "id": "RET-999999"}
    assert script.send(script.created(unknown)).status_code == 200  # stored: the signature is good
    wait_until(lambda: any(j["state"] == "dead" for j in script.http.get(f"{script.ref.url}/returns/RET-999999").json()["jobs"]),
               WAIT_S, what="the job of the unknown return to be refused")
    writes = [e for system in ("erp", "carrier", "wms", "returns_portal")
              for e in script.get(system, "/__admin/journal", correlation_id="RET-999999")["entries"] if e["method"] != "GET"]
    assert writes == [] and script.rmas("RET-999999") == []


def test_duplicate_and_semantic_duplicate_deliveries_do_nothing_twice(run, orders):
    script = run()
    ret = script.new_return(next(orders["eligible"]))
    event = script.created(ret)
    assert script.send(event).json()["outcome"] == "new"
    assert script.send(event).json()["outcome"] == "duplicate"
    assert script.send(script.created(ret)).json()["outcome"] == "semantic-duplicate"  # new id, same fact
    script.wait_status(ret["id"], "approved")
    _, inspection = through_inspection(script, ret)
    again = script.event("inspection.completed", inspection, ret["id"])
    script.send(again)
    script.send(again)
    script.wait_status(ret["id"], "closed")
    script.wait_idle()
    rma = script.rmas(ret["id"])
    assert len(rma) == 1
    assert len(script.memos(rma[0]["id"])) == 1
    assert sum(a["quantity"] for a in script.adjustments(rma[0]["id"])) == sum(l["quantity"] for l in ret["lines"])


def test_forged_stale_and_malformed_deliveries_are_refused_and_change_nothing(run, orders):
    script = run()
    ret = script.new_return(next(orders["eligible"]))
    forged = script.send(script.created(ret), forged=True)
    assert forged.status_code == 401 and forged.headers["content-type"] == "application/problem+json"
    assert script.send(script.created(ret), skew_s=-600).status_code == 401  # signed 10 minutes ago
    assert script.send(script.created(ret), body=b'{"id": "evt_x", "type": "return.cr').status_code == 400
    assert script.send(script.created(ret), body=b" " * (2 << 20)).status_code == 413  # refused before it is all read
    assert script.send(script.created(ret), body=b'{"id": "evt_\xff"}').status_code == 400  # signed, not UTF-8: malformed
    assert script.send(script.created(ret), body=b'{"id": "evt_\xff"}', forged=True).status_code == 401
    missing = script.created(ret)
    del missing["data"]["lines"]
    refused = script.send(missing)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["data.lines"]
    assert script.metric("reference_dead_letters") == 3
    assert script.http.get(f"{script.ref.url}/returns/{ret['id']}").status_code == 404
    assert script.rmas(ret["id"]) == [] and script.status(ret["id"]) == "requested"


def test_a_late_scan_does_not_move_a_received_return_back(run, orders):
    script = run()
    ret = approved(script, next(orders["eligible"]))
    receipt = script.receive(ret)
    script.send(script.event("receipt.completed", receipt, ret["id"]))
    script.wait_status(ret["id"], "received")
    script.send(script.scan(ret, "in_transit", ret["requested_at"]))  # delayed in the carrier's pipes
    script.wait_idle()
    assert script.status(ret["id"]) == "received"
    assert not any(h["regression"] for h in script.history(ret["id"]))


def test_an_inspection_before_its_receipt_waits_for_it(run, orders):
    script = run()
    ret = approved(script, next(orders["eligible"]))
    receipt = script.receive(ret)
    inspection = script.inspect(receipt)
    script.send(script.event("inspection.completed", inspection, ret["id"]))
    script.wait_idle()
    assert script.metric("reference_jobs_waiting") == 1
    assert script.memos(script.rmas(ret["id"])[0]["id"]) == []
    script.send(script.event("receipt.completed", receipt, ret["id"]))
    script.wait_status(ret["id"], "closed")
    assert [h["to"] for h in script.history(ret["id"])][-3:] == ["received", "refunded", "closed"]


def test_an_erp_outage_delays_the_work_and_loses_none_of_it(run, orders):
    script = run()
    rule = script.add_fault("erp", kind="outage", path="/return-authorizations*", retry_after_s=1)
    ret = script.new_return(next(orders["eligible"]))
    script.send(script.created(ret))
    wait_until(lambda: script.metric("reference_retries") >= 2, 30, what="two retries")
    assert script.status(ret["id"]) == "requested"
    script.http.delete(f"{script.env['RH_ERP_URL']}/__admin/faults/{rule['id']}")
    script.wait_status(ret["id"], "approved")
    assert len(script.rmas(ret["id"])) == 1


def test_a_lost_response_is_replayed_not_done_twice(run, orders):
    script = run()
    script.add_fault("erp", kind="commit_then_lose", method="POST", path="/return-authorizations", first_n=1, lose="drop")
    ret = approved(script, next(orders["eligible"]))
    assert len(script.rmas(ret["id"])) == 1
    assert script.metric("reference_retries") >= 1


def test_an_expired_token_is_fetched_again_once_for_everyone_and_the_work_goes_on(run, orders):
    script = run()
    journal = f"{script.env['RH_ERP_URL']}/__admin/journal"
    since = max([e["seq"] for e in script.http.get(journal, params={"limit": 10_000}).json()["entries"]], default=0)
    # The ERP revokes the token on the first order lookup: every call in flight with it gets 401.
    script.add_fault("erp", kind="token_expiry", path="/sales-orders/*", first_n=1)
    returns = [script.new_return(next(orders["eligible"])) for _ in range(6)]
    for ret in returns:
        assert script.send(script.created(ret)).status_code == 200
    for ret in returns:
        script.wait_status(ret["id"], "approved")
    # Counted before this test's own ERP lookups below, which fetch tokens of their own.
    fetched = script.http.get(journal, params={"path": "/oauth/token", "since": since, "limit": 10_000}).json()["entries"]
    assert len(fetched) == 2  # the first token, and one new one after the revocation, however many calls met it
    assert all(len(script.rmas(ret["id"])) == 1 for ret in returns)


def test_status_metrics_and_health_answer(run):
    script = run()
    assert script.http.get(f"{script.ref.url}/healthz").json() == {"status": "ok", "defects": [], "clock": "wall"}
    assert script.http.get(f"{script.ref.url}/returns/RET-999999").status_code == 404
    text = script.http.get(f"{script.ref.url}/metrics").text
    for name in ("reference_jobs_pending", "reference_inbox_lag_seconds", "reference_dead_letters", "reference_retries"):
        assert name in text


# -- each known defect breaks what it says ------------------------------------------------------


def test_defect_no_dedupe_makes_a_second_rma_from_a_duplicate_delivery(run, orders):
    script = run("no-dedupe")
    ret = script.new_return(next(orders["eligible"]))
    event = script.created(ret)
    script.send(event)
    script.send(event)
    script.wait_idle()
    assert len(script.rmas(ret["id"])) == 2


def test_defect_no_idempotency_key_turns_a_lost_response_into_two_rmas(run, orders):
    script = run("no-idempotency-key")
    script.add_fault("erp", kind="commit_then_lose", method="POST", path="/return-authorizations", first_n=1, lose="drop")
    ret = approved(script, next(orders["eligible"]))
    assert len(script.rmas(ret["id"])) == 2


def test_defect_trusts_order_moves_a_received_return_back_to_in_transit(run, orders):
    script = run("trusts-order")
    ret = approved(script, next(orders["eligible"]))
    receipt = script.receive(ret)
    script.send(script.event("receipt.completed", receipt, ret["id"]))
    script.wait_status(ret["id"], "received")
    script.send(script.scan(ret, "in_transit", ret["requested_at"]))
    script.wait_status(ret["id"], "in_transit")
    assert script.history(ret["id"])[-1]["regression"]


def test_defect_refund_before_inspection_refunds_on_receipt(run, orders):
    script = run("refund-before-inspection")
    ret = approved(script, next(orders["eligible"]))
    receipt = script.receive(ret)
    script.send(script.event("receipt.completed", receipt, ret["id"]))
    script.wait_status(ret["id"], "refunded")
    assert len(script.memos(script.rmas(ret["id"])[0]["id"])) == 1
    assert script.get("wms", "/inspections", receipt_id=receipt["id"]) == []  # nobody graded it


def test_defect_no_retry_drops_the_work_of_a_failed_call(run, orders):
    script = run("no-retry")
    rule = script.add_fault("erp", kind="outage", path="/return-authorizations*", retry_after_s=1, first_n=1)
    ret = script.new_return(next(orders["eligible"]))
    script.send(script.created(ret))
    script.wait_idle()
    assert script.metric("reference_jobs_dead") == 1
    assert rule["id"]
    assert script.rmas(ret["id"]) == [] and script.status(ret["id"]) == "requested"


def test_defect_ignores_retry_after_hammers_a_throttled_erp(run, orders):
    def throttled_calls(*defects: str) -> int:
        script = run(*defects)
        script.add_fault("erp", kind="rate_limit", path="/return-authorizations*", limit=1, per_s=3600, retry_after_s=2)
        script.rmas("RET-000000")  # spends the one call an hour the limit allows
        ret = script.new_return(next(orders["eligible"]))
        script.send(script.created(ret))
        started = time.monotonic()
        wait_until(lambda: time.monotonic() - started > 1.5 or script.metric("reference_retries") > 50, 10, what="1.5 s of throttling")
        fired = sum(rule["fired"] for rule in script.http.get(f"{script.env['RH_ERP_URL']}/__admin/faults").json())
        # Stopped before the next run's rule exists: a late retry of this one would spend its allowance.
        script.ref.stop()
        script.heal()
        return fired

    assert throttled_calls() <= 2  # Retry-After is 2 s: one refusal, at most one more

    assert throttled_calls("ignores-retry-after") > 20


def test_defect_double_restock_adjusts_stock_once_per_inspection_delivery(run, orders):
    script = run("double-restock")
    ret = approved(script, next(orders["eligible"]))
    _, inspection = through_inspection(script, ret)
    script.wait_status(ret["id"], "closed")
    script.send(script.event("inspection.completed", inspection, ret["id"]))  # redelivered
    script.wait_idle()
    units = sum(line["quantity"] for line in ret["lines"])
    assert sum(a["quantity"] for a in script.adjustments(script.rmas(ret["id"])[0]["id"])) == 2 * units


def test_defect_skips_signature_check_accepts_a_forged_delivery(run, orders):
    script = run("skips-signature-check")
    ret = script.new_return(next(orders["eligible"]))
    assert script.send(script.created(ret), forged=True).status_code == 200
    script.wait_status(ret["id"], "approved")


def test_defect_wrong_refund_amount_ignores_the_restocking_fee(run, orders):
    def refunded(*defects: str) -> tuple[int, int]:
        script = run(*defects)
        ret = approved(script, next(orders["eligible"]))
        through_inspection(script, ret, condition="opened")  # size_fit: the customer's reason, the fee applies
        script.wait_status(ret["id"], "closed")
        value = sum(line["unit_price"]["amount"] * line["quantity"] for line in ret["lines"])
        return script.memos(script.rmas(ret["id"])[0]["id"])[0]["total"]["amount"], value

    correct, value = refunded()
    assert correct < value  # the restocking fee came off
    wrong, value = refunded("wrong-refund-amount")
    assert wrong == value


def test_defect_slow_answers_every_delivery_late(run, orders):
    script = run("slow")
    ret = script.new_return(next(orders["eligible"]))
    started = time.monotonic()
    assert script.send(script.created(ret)).status_code == 200
    assert time.monotonic() - started >= 0.3  # the acknowledgement alone waited slow_ms


def test_the_command_refuses_bad_flags_naming_them(tmp_path):
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    partial = "RH_ERP_URL=http://127.0.0.1:1\n"
    whole = "".join(f"RH_{s}_URL=http://127.0.0.1:1\nRH_{s}_API_KEY=k\n" for s in ("ERP", "WMS", "CARRIER", "RETURNS_PORTAL"))
    secret = ("--webhook-secret", "whsec_eA==")
    # (the fakes' env file it finds, its flags) -> what it must say on stderr, besides exit 2 and no traceback
    cases = {
        (None, (*secret, "--fakes-env", str(tmp_path / "none"))): ["cannot read the fakes' env file"],
        (partial, secret): ["RH_WMS_URL"],
        (partial, ("--defect", "no-such-defect")): ["unknown defect(s) no-such-defect"],
        (whole, (*secret, "--database", "mysql://db/returns")): ["--database: expected sqlite:///FILE"],
        (whole, (*secret, "--database", "sqlite:///no/such/dir/ref.db")): ["--database: cannot open"],
        (whole, ("--webhook-secret", "not-base64")): ["not a Standard Webhooks secret"],
        (whole, (*secret, "--log-level", "loud")): ["--log-level: expected one of debug, info, warning, error"],
        (whole, (*secret, "--database", "postgresql://rh:hunter2@127.0.0.1:1/returns")): ["rh:***@127.0.0.1:1"],
    }

    def run_cli(case) -> subprocess.CompletedProcess:
        env, args = case
        cwd = tmp_path / f"case{list(cases).index(case)}"
        cwd.mkdir()
        if env is not None:
            (cwd / ".env.fakes").write_text(env)
        return subprocess.run([sys.executable, "-m", "simulators.cli", "reference", *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                              check=False)

    with ThreadPoolExecutor(4) as pool:  # each is a process of its own, mostly starting up
        done = dict(zip(cases, pool.map(run_cli, cases), strict=True))
    for case, expected in cases.items():
        answer = done[case]
        assert answer.returncode == 2 and all(e in answer.stderr for e in expected) and "Traceback" not in answer.stderr, (case, answer.stderr)
        assert "hunter2" not in answer.stderr
