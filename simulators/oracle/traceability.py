"""One table from each rule of the contract to what exercises it, the check that judges it, the
reference's defect that fails it and the test that shows so (docs/TRACEABILITY.md, generated:
``python -m simulators.oracle.traceability > docs/TRACEABILITY.md``). A test fails when a check has
no exposure, no defect, or the document is stale."""

from __future__ import annotations

from simulators.oracle.checks import CHECKS
from simulators.oracle.coverage import EXPOSURE

# The reference's defects that fail each check: names only (the harness never imports the
# reference). tests/test_oracle.py runs each and asserts the failure, but for SHOWN_ELSEWHERE's.
FAILED_BY: dict[str, tuple[str, ...]] = {
    "one-rma-per-approved-return": ("no-dedupe",),
    "one-credit-memo-per-refund": ("wrong-refund-amount",),
    "no-refund-before-inspection": ("refund-before-inspection",),
    "stock-matches-dispositions": ("double-restock", "stock-at-rma-site"),
    "supplier-claims-match": ("skips-supplier-claim",),
    "one-replacement-per-exchange": ("no-replacement",),
    "one-asn-and-label-before-arrival": ("skips-asn",),
    "no-status-regression": ("trusts-order",),
    "every-return-ends": ("no-retry", "ack-before-store"),
    "portal-shows-the-refund": ("skips-refunded",),
    "cancelled-stays-cancelled": ("ignores-cancellation",),
    "nothing-for-bad-input": ("skips-signature-check",),
    "retry-after-honoured": ("ignores-retry-after",),
    "idempotency-keys-on-writes": ("no-idempotency-key",),
    "request-to-rma": ("rma-batch",),
    "inspection-to-credit": ("nightly-refunds",),
    "request-to-closed": ("batch-closing",),
    "acknowledgement-latency": ("slow",),
    "poison-dead-lettered": ("requeues-poison",),
    "truncated-file-refused": ("accepts-truncated-batch",),
}
# Defects shown by a test of their own: under the kill nemesis, over the message broker, in batch files.
SHOWN_ELSEWHERE = {
    "ack-before-store": "tests/test_chaos.py::test_a_layer_that_acknowledges_before_storing_loses_returns_to_the_kills",
    "requeues-poison": "tests/test_broker.py::test_a_layer_that_requeues_poison_fails_only_the_dead_letter_check",
    "accepts-truncated-batch": "tests/test_batch.py::test_a_layer_that_books_truncated_files_fails_only_that_check",
}


def _test(defect: str) -> str:
    if defect in SHOWN_ELSEWHERE:
        return f"`{SHOWN_ELSEWHERE[defect]}`"
    return f"`tests/test_oracle.py::test_each_defect_fails_its_check_with_evidence[{defect}]`"


def render() -> str:
    lines = [
        "# Traceability: each rule, what exercises it, what judges it, what fails it",
        "",
        "Generated from the code (`python -m simulators.oracle.traceability > docs/TRACEABILITY.md`); a test",
        "fails when a check has no exposure or no defect, or this page is stale. *Exercised by* names what",
        "each run counts as the chances it gave a defect to show (`exposure` in `verdict.json`); `chaos`",
        "makes every one of them non-zero by construction (docs/CONTRACT.md, \"What `chaos` exercises\").",
        "",
        "| rule (check) | kind | exercised by | defect that fails it | test |",
        "|---|---|---|---|---|",
    ]
    for check in CHECKS:
        exercised = "; ".join(label for label, _ in EXPOSURE[check.name])
        defects = "<br>".join(f"`{d}`" for d in FAILED_BY[check.name])
        tests = "<br>".join(_test(d) for d in FAILED_BY[check.name])
        lines.append(f"| {check.title} (`{check.name}`) | {check.kind} | {exercised} | {defects} | {tests} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
