"""Then steps: the oracle's invariants and SLAs, and what became of the returns.

A failing step reports the check, why it matters, and each violation with its evidence; a
check that could decide nothing fails too (a scenario that exercises nothing proves nothing).
"""

from __future__ import annotations

from collections import Counter

import pytest

from simulators.bdd import vocabulary as v
from simulators.bdd.explain import check_failure
from simulators.bdd.steps.registry import step
from simulators.bdd.world import Outcome, WorldUnderTest

# Each invariant in words a reader of the feature understands, and the oracle's check behind it.
INVARIANTS = {
    "every approved return has exactly one RMA": "one-rma-per-approved-return",
    "no ineligible return gets an RMA": "one-rma-per-approved-return",
    "every refunded return has exactly one credit memo with the policy's amount": "one-credit-memo-per-refund",
    "no credit memo is posted before the return's inspection": "no-refund-before-inspection",
    "stock moves match the inspected dispositions": "stock-matches-dispositions",
    "every unit returned to a vendor is claimed from it once": "supplier-claims-match",
    "every inspected exchange gets exactly one replacement order": "one-replacement-per-exchange",
    "every RMA gets one label and one expected receipt before its parcel arrives": "one-asn-and-label-before-arrival",
    "no return's status ever moves backwards": "no-status-regression",
    "no return is left stalled": "every-return-ends",
    "nothing is done for a forged, stale or malformed delivery": "nothing-for-bad-input",
    "every throttled call waits as long as Retry-After says": "retry-after-honoured",
    "every write carries an Idempotency-Key": "idempotency-keys-on-writes",
    "every malformed message ends in the layer's dead-letter queue": "poison-dead-lettered",
    "every batch file cut short is refused whole": "truncated-file-refused",
}
OUTCOMES = ("closed", "rejected", "cancelled")
DESTINATIONS = {"available stock": "available", "refurbish stock": "refurbish", "scrap stock": "scrap",
                "quarantine stock": "quarantine", "a supplier claim": "supplier claim"}


def _holds(outcome: Outcome, name: str) -> None:
    check = outcome.check(name)
    if check["valid"] is not True:
        pytest.fail(check_failure(check, outcome.where()), pytrace=False)


def _invariant(sentence: str, check_name: str) -> None:
    def holds(returns_world: WorldUnderTest) -> None:
        _holds(returns_world.settle(), check_name)

    holds.__doc__ = f"The oracle's check `{check_name}` passes."
    holds.__name__ = "then_" + check_name.replace("-", "_")
    step("then", sentence, example=f"Then {sentence}", depth=1)(holds)


for _sentence, _check in INVARIANTS.items():
    _invariant(_sentence, _check)


@step("then", 'the check "{name}" passes', example='Then the check "supplier-claims-match" passes')
def named_check(returns_world: WorldUnderTest, name: str) -> None:
    """Any check of the oracle by name (docs/CONTRACT.md lists them), including SLAs judged against
    the scenario's own thresholds."""
    _holds(returns_world.settle(), name)


@step("then", "every check passes", example="Then every check passes")
def every_check(returns_world: WorldUnderTest) -> None:
    """Every invariant and SLA of the oracle holds (none fails; unknown ones are listed, not failed)."""
    outcome = returns_world.settle()
    failed = [c for c in outcome.verdict["checks"] if c["valid"] is False]
    if failed or not outcome.verdict["ok"]:
        reports = [check_failure(c, outcome.where()) for c in failed] or ["no check could decide anything: did any return happen?"]
        pytest.fail("\n\n".join(reports), pytrace=False)


@step("then", "every return is {outcome:Word}", example="Then every return is closed")
def every_return(returns_world: WorldUnderTest, outcome: str) -> None:
    """Where every return ended in the world: closed, rejected or cancelled."""
    wanted = outcome.strip().lower()
    if wanted not in OUTCOMES:
        raise v.bad_value(f"unknown outcome {outcome!r}; expected one of: {', '.join(OUTCOMES)}")
    run = returns_world.settle()
    ended = run.verdict["summary"]["by_outcome"]
    if not ended or set(ended) != {wanted}:
        stalled = [f"  {x['return_id']}: {x['message']}" for x in run.check("every-return-ends")["violations"][:10]]
        pytest.fail("\n".join([f"not every return is {wanted}: {dict(ended)}", *stalled, run.where()]), pytrace=False)


@step("then", "every returned unit ends in {destination}", example="Then every returned unit ends in refurbish stock")
def destination(returns_world: WorldUnderTest, destination: str) -> None:
    """What the ERP holds for the inspected units: `available stock`, `refurbish stock`,
    `scrap stock`, `quarantine stock` or `a supplier claim`, and nothing else."""
    wanted = DESTINATIONS.get(destination.strip().lower())
    if wanted is None:
        raise v.bad_value(f"unknown destination {destination!r}; expected one of: {', '.join(DESTINATIONS)}")
    run = returns_world.settle()
    got = Counter(dict(run.query("SELECT CASE kind WHEN 'claim' THEN 'supplier claim' ELSE stock_status END, sum(quantity) "
                                 "FROM documents WHERE kind IN ('adjustment', 'claim') GROUP BY ALL")))
    (inspected,) = run.query("SELECT coalesce(sum(inspected_units), 0) FROM expected")[0]
    if set(got) != {wanted} or got[wanted] != inspected:
        pytest.fail(f"{inspected} unit(s) were inspected; the ERP holds {dict(got) or 'nothing'}, expected all in {destination}\n"
                    f"  {run.where()}", pytrace=False)


# -- SLAs: a percentile of the oracle's samples against the threshold the step states ------------

SLAS = {
    "returns are closed within": ("request-to-closed", "days"),
    "return requests get an RMA within": ("request-to-rma", "hours"),
    "refunds follow their inspection within": ("inspection-to-credit", "hours"),
    "webhooks are acknowledged within": ("acknowledgement-latency", "ms"),
}
SECONDS = {"days": 86_400, "hours": 3600, "ms": 0.001}
EXAMPLE_LIMIT = {"days": 5, "hours": 4, "ms": 500}


def _sla(sentence: str, check_name: str, measured: str) -> None:
    def within(returns_world: WorldUnderTest, percent: str, amount: str, unit: str) -> None:
        from simulators.oracle.checks import percentile

        p = v.number(percent, "the percentage", minimum=0)
        if not 0 < p <= 100:
            raise v.bad_value(f"the percentage must be above 0 and at most 100, got {percent}")
        limit = v.duration(amount, unit) / SECONDS[measured]
        run = returns_world.settle()
        sla = run.check(check_name).get("sla") or {}
        samples = sla.get("distribution") or []
        if not samples:
            pytest.fail(f"nothing to measure for {check_name}: no sample in this run\n  {run.where()}", pytrace=False)
        observed = percentile(samples, p)
        if observed > limit:
            slowest = ", ".join(f"{s:g}" for s in sorted(samples)[-5:])
            pytest.fail(f"{check_name}: p{p:g} is {observed:g} {measured}, over the {limit:g} {measured} allowed "
                        f"({sum(s > limit for s in samples)} of {len(samples)} over; slowest: {slowest})\n  {run.where()}",
                        pytrace=False)

    within.__doc__ = f"A percentile of `{check_name}` (measured in {measured}) within the stated limit."
    within.__name__ = "then_" + check_name.replace("-", "_")
    step("then", f"{{percent:Number}}% of {sentence} {{amount:Number}} {{unit:Unit}}",
         example=f"Then 95% of {sentence} {EXAMPLE_LIMIT[measured]} {measured}", depth=1)(within)


for _sentence, (_check, _unit) in SLAS.items():
    _sla(_sentence, _check, _unit)


@step("then", "no exchange gets a credit memo", example="Then no exchange gets a credit memo")
def no_memo_for_exchanges(returns_world: WorldUnderTest) -> None:
    """Inspected exchanges are settled by a replacement order, never by money."""
    run = returns_world.settle()
    exchanges = {rid for (rid,) in run.query("SELECT return_id FROM expected WHERE resolution = 'exchange' AND inspected_units > 0")}
    if not exchanges:
        pytest.fail(f"no exchange was inspected in this run: nothing to check\n  {run.where()}", pytrace=False)
    check = run.check("one-credit-memo-per-refund")
    paid = [x for x in check["violations"] if x["return_id"] in exchanges]
    if paid:
        pytest.fail(check_failure({**check, "valid": False, "violations": paid}, run.where()), pytrace=False)
