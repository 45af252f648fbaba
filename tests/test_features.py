"""The Gherkin suite: it passes against the reference; each feature that targets a defect class
fails with that defect on, in exactly the scenarios it should; the step library works from a
repository of its own; unknown steps and bad values fail with a message naming them.

Every live run is a pytest subprocess (tests/feature_runs.py); the runs go side by side, started
together by one module fixture."""

from __future__ import annotations

import subprocess
import sys

import pytest

from simulators.sut import known_defects
from tests.feature_runs import FEATURES, REPO, run_features, run_pytest

# Which shipped feature targets which defect of the reference, and the scenarios (pytest test
# names) it must fail with that defect on; every other scenario of the feature must pass.
CAUGHT = {
    "no-dedupe": ("duplicates", {"test_one_rma_one_label_and_one_asn_per_return_however_often_it_is_announced",
                                 "test_stock_moves_once_per_inspection_however_often_it_is_delivered",
                                 "test_one_credit_memo_per_refund"}),
    "double-restock": ("duplicates", {"test_stock_moves_once_per_inspection_however_often_it_is_delivered"}),
    "skips-asn": ("duplicates", {"test_one_rma_one_label_and_one_asn_per_return_however_often_it_is_announced"}),
    "trusts-order": ("ordering", {"test_late_carrier_scans_do_not_move_a_refunded_return_back_to_in_transit",
                                  "test_an_inspection_that_arrives_before_its_receipt_waits_for_it"}),
    "refund-before-inspection": ("refunds", {"test_no_refund_before_the_inspection",
                                             "test_opened_items_are_refunded_less_the_restocking_fee"}),
    "wrong-refund-amount": ("refunds", {"test_opened_items_are_refunded_less_the_restocking_fee"}),
    "no-retry": ("erp_outage", {"test_returns_requested_during_the_maintenance_window_still_go_through"}),
    "ignores-retry-after": ("rate_limit", {"test_calls_refused_with_429_wait_for_retryafter_and_every_return_still_ends"}),
    "no-idempotency-key": ("lost_responses", {"test_rmas_and_credit_memos_survive_lost_responses"}),
    "skips-signature-check": ("bad_input", {"test_new_returns_that_arrive_how_are_refused[with a forged signature]",
                                            "test_new_returns_that_arrive_how_are_refused[with a stale signature]"}),
    "slow": ("sla", {"test_labels_within_hours_and_returns_closed_within_days_at_the_peak"}),
    "skips-supplier-claim": ("happy_path", {"test_units_sent_to_disposition_end_in_destination[the vendor-a supplier claim]"}),
    "no-replacement": ("happy_path", {"test_an_exchange_ships_a_replacement_instead_of_a_refund"}),
    "requeues-poison": ("broker", {"test_duplicates_are_acted_on_once_and_poison_is_deadlettered"}),
    "accepts-truncated-batch": ("batch", {"test_a_cut_file_is_refused_whole_and_a_resent_one_books_nothing_twice"}),
}
# Scenarios a defect's run may leave out: happy_path's two defects skip the four disposition
# examples that touch neither exchanges nor vendors (the oracle's quiet run shows each defect
# fails nothing but its own check); each run keeps its own scenario and the other's, which it
# must pass.
ONLY = {"skips-supplier-claim": "vendor or exchange", "no-replacement": "vendor or exchange"}
BROKER_SCENARIOS = {"test_duplicates_are_acted_on_once_and_poison_is_deadlettered"}
# The whole suite against the correct reference, in parts that run side by side.
# Balanced by wall time.
PARTS = {"pass-a": "happy_path or eligibility", "pass-d": "bad_input or batch",
         "pass-b": "duplicates or ordering or refunds or receiving or broker or erp_outage or lost_responses",
         "pass-c": "sla or rate_limit"}
# Plugins that this suite does not use and that cost a second of start-up each.
LEAN = ["-p", "no:faker", "-p", "no:hypothesispytest", "-p", "no:schemathesis", "-p", "no:locust"]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every live run of this module, side by side: the suite's parts, then one run per defect."""
    known = known_defects()
    root = tmp_path_factory.mktemp("features")
    jobs = {name: [*LEAN, "-m", marker] for name, marker in PARTS.items()}
    jobs["pass-a"] += ["--cucumberjson", str(root / "pass-a.cucumber.json")]  # what Xray and Zephyr import
    jobs |= {defect: [*LEAN, "-m", marker, "--rh-defect", defect, *(["-k", ONLY[defect]] if defect in ONLY else [])]
             for defect, (marker, _) in CAUGHT.items() if defect in known}
    return run_features(jobs, root, parallel=4) | {"root": root}


def test_the_shipped_suite_passes_against_the_reference(outcomes, tmp_path):
    parts = [outcomes[name] for name in PARTS]
    for part in parts:
        assert part.returncode == 0 and not part.failed, str(part)
    ran = sorted(name for part in parts for name in part.passed + part.skipped)
    collected = run_pytest([str(FEATURES), "--collect-only", *LEAN], REPO, tmp_path / "collect.xml")
    every = sorted(line.split("::", 1)[1] for line in collected.output.splitlines() if "::" in line)
    assert len(every) >= 25 and ran == every  # each scenario ran once, in one of the parts
    # Only the broker's scenarios may skip (no RabbitMQ on this machine), and they say why.
    skipped = {name for part in parts for name in part.skipped}
    assert skipped <= BROKER_SCENARIOS, skipped


def test_a_run_writes_cucumber_json_naming_each_scenario_it_ran(outcomes):
    import orjson

    report = orjson.loads((outcomes["root"] / "pass-a.cucumber.json").read_bytes())
    scenarios = [element for feature in report for element in feature["elements"]]
    assert {feature["name"] for feature in report} >= {"A return goes through, whatever the warehouse decides",
                                                         "Returns the policy refuses are rejected, and nothing else happens to them"}
    assert len(scenarios) == len(outcomes["pass-a"].passed)
    assert all(step["result"]["status"] == "passed" for element in scenarios for step in element["steps"])


@pytest.mark.parametrize("defect", sorted(CAUGHT))
def test_a_feature_fails_exactly_its_scenarios_with_the_defect_it_targets(outcomes, defect):
    if defect not in known_defects():
        pytest.skip(f"the reference has no defect {defect!r} (yet)")
    outcome, (_, expected) = outcomes[defect], CAUGHT[defect]
    if outcome.skipped and set(outcome.skipped) <= BROKER_SCENARIOS and not outcome.passed:
        pytest.skip(f"the {defect} features need RabbitMQ on 127.0.0.1:5672, and none answered")
    assert outcome.returncode == 1, str(outcome)
    assert set(outcome.failed) == expected, str(outcome)
    assert outcome.passed or len(expected) == len(outcome.failed)
    for message in outcome.failed.values():
        # The oracle's findings, not a bare assert: the check, a return and where the run is saved.
        assert "RET-" in message or " is " in message, message
        assert "the run is saved in" in message, message
        assert "AssertionError" not in message, message


def test_a_team_starts_from_returns_harness_init_in_its_own_repository(tmp_path):
    """Only the installed plugin: `returns-harness init` writes a feature and its one-line
    binding outside this repository, and pytest runs it against the embedded reference."""
    assert not tmp_path.is_relative_to(REPO)
    init = subprocess.run([sys.executable, "-m", "simulators.cli", "init", "."], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          check=False)
    assert init.returncode == 0 and "pytest features/" in init.stdout, init.stdout + init.stderr
    outcome = run_pytest(["features"], tmp_path, tmp_path / "junit.xml")
    assert outcome.returncode == 0 and outcome.passed == ["test_inspections_delivered_twice_move_stock_once"], str(outcome)
    again = subprocess.run([sys.executable, "-m", "simulators.cli", "init", "."], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                           check=False)
    assert again.returncode == 2 and "already exist; nothing was written" in again.stderr


BAD_STEPS = {
    "an unknown step": ("Given the ERP is on fire", 'Step definition is not found: Given "the ERP is on fire"'),
    "a negative count": ("When -3 returns are requested",
                         'step "When -3 returns are requested" (bad.feature:4): returns requested must be at least 1, got -3'),
    "an unknown system": ("Given the CRM is down from day 1 09:00 for 2 hours",
                          "step \"Given the CRM is down from day 1 09:00 for 2 hours\" (bad.feature:4): unknown system 'CRM'"),
    "a share over 100%": ("Given 150% of customers are on hold", "'150%' is not a share between 0% and 100%"),
    "an event the system does not send": ("Given the carrier delivers every receipt event twice",
                                          "the carrier sends no 'receipt event' events; expected one of: scan, tracking"),
}


@pytest.mark.parametrize("case", sorted(BAD_STEPS))
def test_unknown_steps_and_bad_values_fail_with_a_message_naming_them(tmp_path, case):
    text, message = BAD_STEPS[case]
    (tmp_path / "bad.feature").write_text(f"Feature: Bad\n\n  Scenario: Bad\n    {text}\n    Then no return is left stalled\n")
    (tmp_path / "test_bad.py").write_text('from pytest_bdd import scenarios\n\nscenarios("bad.feature")\n')
    outcome = run_pytest(LEAN, tmp_path, tmp_path / "junit.xml")
    assert outcome.returncode == 1 and list(outcome.failed) == ["test_bad"], str(outcome)
    assert message in outcome.failed["test_bad"], outcome.failed["test_bad"]
    assert "Traceback" not in outcome.output


def test_defect_and_sut_url_options_are_checked_before_anything_runs(tmp_path):
    unknown = run_pytest([str(FEATURES), *LEAN, "--rh-defect", "no-such-defect"], REPO, tmp_path / "a.xml")
    assert unknown.returncode == 4 and "--rh-defect: unknown no-such-defect; expected one of: no-dedupe" in unknown.output
    both = run_pytest([str(FEATURES), *LEAN, "--rh-defect", "slow", "--rh-sut-url", "http://127.0.0.1:9/webhooks"], REPO, tmp_path / "b.xml")
    assert both.returncode == 4 and "cannot be combined with --rh-sut-url" in both.output
    # The old, unprefixed name still works for a release, and says what to use instead.
    gone = run_pytest([str(FEATURES), *LEAN, "-k", "rejected and hold", "--sut-url", "http://127.0.0.1:9/webhooks"], REPO, tmp_path / "c.xml")
    assert gone.returncode == 1 and len(gone.failed) == 1, gone
    assert "--rh-sut-url: the integration layer at http://127.0.0.1:9/webhooks is unreachable" in next(iter(gone.failed.values()))
    assert "--sut-url is deprecated and goes in the next release: use --rh-sut-url" in gone.output


def test_the_step_catalogue_in_docs_is_up_to_date():
    from simulators.bdd.catalogue import render

    assert (REPO / "docs" / "STEPS.md").read_text() == render(), "run: python -m simulators.bdd.catalogue > docs/STEPS.md"
