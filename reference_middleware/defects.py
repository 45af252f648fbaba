"""Known defects, each off by default and each the imitation of a production incident.

A defect is a few lines behind a flag in the code that it breaks (search for its name). Each
one must make the matching check of the harness fail; the correct reference passes them all.
"""

from __future__ import annotations

from enum import StrEnum


class Defect(StrEnum):
    NO_DEDUPE = "no-dedupe"
    """Every delivery is processed as new work with fresh keys. Incident: a webhook retried after
    a slow 200 created a second credit memo, and the customer was refunded twice."""

    NO_IDEMPOTENCY_KEY = "no-idempotency-key"
    """Writes go out without an Idempotency-Key. Incident: the ERP committed an RMA, the response
    was lost in a load-balancer timeout, the retry created a second RMA."""

    TRUSTS_ORDER = "trusts-order"
    """Events are applied in arrival order. Incident: a late "in transit" scan moved a refunded
    return back to in transit, and the customer was told the parcel was still on its way."""

    REFUND_BEFORE_INSPECTION = "refund-before-inspection"
    """The credit memo is issued when the parcel is received, before grading. Incident: empty
    boxes and swapped items were refunded in full during a peak."""

    NO_RETRY = "no-retry"
    """A failed call drops its work. Incident: returns approved during an ERP maintenance window
    never got their RMA and stalled until customers complained."""

    IGNORES_RETRY_AFTER = "ignores-retry-after"
    """Throttled calls are retried at once. Incident: the middleware hammered a rate-limited ERP
    and got its client blocked for the day."""

    DOUBLE_RESTOCK = "double-restock"
    """Stock is adjusted once per inspection delivery, ahead of deduplication. Incident: a
    redelivered inspection event put returned units into available stock twice (phantom stock)."""

    SKIPS_SIGNATURE_CHECK = "skips-signature-check"
    """Webhook signatures are not checked. Incident: forged "inspection completed" calls
    triggered refunds for returns that never arrived."""

    WRONG_REFUND_AMOUNT = "wrong-refund-amount"
    """The restocking fee is ignored. Incident: opened items were refunded in full after a policy
    change the middleware never picked up."""

    SLOW = "slow"
    """Every step and every acknowledgement waits a while (``slow_ms``, wall time). Incident: a
    debug setting left on in production made webhook answers miss their latency target, and the
    senders' retries doubled the load."""

    SKIPS_SUPPLIER_CLAIM = "skips-supplier-claim"
    """Units graded return-to-vendor get no supplier claim. Incident: the claim call sat behind a
    feature flag that was never switched on for new vendors; a quarter's recoveries were lost."""

    NO_REPLACEMENT = "no-replacement"
    """Exchanges are closed without a replacement order. Incident: after the ERP's order types were
    renamed, the replacement call was skipped silently and exchanging customers got nothing."""

    SKIPS_ASN = "skips-asn"
    """No expected receipt is sent to the WMS. Incident: the WMS connector was paused during a
    migration and every returned parcel arrived blind, to be researched by hand at the dock."""

    NIGHTLY_REFUNDS = "nightly-refunds"
    """Credit memos wait for a batch. Incident: refunds went to the ERP in a nightly export, so in
    the January peak customers waited more than a day for a refund promised within one. Here the batch
    holds each memo ``refund_hold_h`` hours of the harness's business clock."""

    BATCH_CLOSING = "batch-closing"
    """Returns are closed by a clean-up job, not when they are settled. Incident: refunded returns
    stayed open for days until the job ran, customers kept asking, and the closed-within report
    went red. Here the job holds each close ``close_hold_h`` hours of the business clock, short
    of the three days after which the harness calls a return stalled."""

    RMA_BATCH = "rma-batch"
    """RMAs are created by a scheduled job, not when the request arrives. Incident: the RMA step
    ran twice a day in the ERP team's batch window, so customers waited half a day for a label
    promised within hours. Here the job holds each RMA ``rma_hold_h`` hours of the business clock."""

    STOCK_AT_RMA_SITE = "stock-at-rma-site"
    """Returned units are restocked at the site the RMA named, not where they were inspected.
    Incident: during a peak the carrier rerouted parcels to the overflow warehouse; the stock
    showed up as available at the main site, orders were allocated there and could not be picked."""

    IGNORES_CANCELLATION = "ignores-cancellation"
    """Cancellations are not looked at: a return the customer cancelled before it was approved is
    approved anyway. Incident: the portal's cancel button shipped before the middleware knew of it;
    customers who cancelled got labels, reminders to ship, and a return counted as open."""

    SKIPS_REFUNDED = "skips-refunded"
    """Refunded returns go straight to closed: the portal never shows the refund. Incident: a
    status-mapping change dropped the refunded step; customers saw "closed" and no refund, and
    the contact centre took the calls. (Found by trying a layer nobody had written a check for.)"""

    ACK_BEFORE_STORE = "ack-before-store"
    """Deliveries are acknowledged at once (the webhook answered 200, the broker message acked)
    and written to the inbox a moment later, in the background. Incident: a deploy restarted the
    middleware, and the webhooks it had answered 200 in its last second were never processed:
    their senders did not retry, the refunds never came."""

    REQUEUES_POISON = "requeues-poison"
    """A message that cannot be parsed is put back on the broker queue (nack with requeue) instead
    of dead-lettered. Incident: one truncated message from a WMS upgrade went round the consumer
    for a weekend at full speed; the queue's metrics looked healthy, and no one could replay it."""


    ACCEPTS_TRUNCATED_BATCH = "accepts-truncated-batch"
    """A batch file is booked row by row as it is read, and archived, whatever its trailer says.
    Incident: a WMS export cut off by a full disk was booked as the day's receipts; the missing
    half never arrived, and the re-export the next night booked the first half again."""


# Defects that schedule work by the harness's business clock: a layer with one of them is judged
# in business time (the reference says so on /healthz, as `"clock": "business"`).
BUSINESS_CLOCK = frozenset({Defect.NIGHTLY_REFUNDS, Defect.BATCH_CLOSING, Defect.RMA_BATCH})


def parse_defects(names: list[str] | tuple[str, ...]) -> frozenset[Defect]:
    """Defects by name; an unknown name is a ValueError listing the known ones."""
    known = {d.value: d for d in Defect}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown defect(s) {', '.join(unknown)}; expected some of: {', '.join(known)}")
    return frozenset(known[n] for n in names)
