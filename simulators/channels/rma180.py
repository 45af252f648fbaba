"""A retail partner's return request as an X12 180 (Return Merchandise Authorization and
Notification), written and read strictly.

The frame is the one retailers' published 004010 guides use (Logicbroker's: ST, BGN, PRF, a BLI
loop of BLI and RDR, CTT, SE); codes come from the standard's lists:

    BGN*00*<the partner's request id>*<CCYYMMDD>*<HHMM>~   00: original
    PRF*<the purchase order: our sales order id>~
    BLI*SK*<item id>*<quantity>*EA~                         one loop per line: SK = SKU, EA = each
    RDR**<reason>~                                         RDR02, the return request reason code
    CTT*<number of lines>~

What is wrong in a set's content is a :class:`~simulators.channels.x12.Note` naming the segment,
its position in the set (ST is 1) and the element, for the 997's AK3/AK4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from simulators.channels.x12 import (
    ELEMENT_ERRORS,
    ELEMENT_MISSING,
    INVALID_DATE,
    INVALID_VALUE,
    MANDATORY_SEGMENT_MISSING,
    SEGMENTS_IN_ERROR,
    UNEXPECTED_SEGMENT,
    Note,
    Segment,
    Transaction,
)
from simulators.domain import ReturnReason

# RDR02 (element 1293), from our reasons. CO (customer ordering error) is the nearest code to a
# change of mind, and SP (shipped past cancel date) to a late delivery: assumptions.
REASON_CODES = {
    ReturnReason.SIZE_FIT: "PF",  # poor fit
    ReturnReason.CHANGED_MIND: "CO",
    ReturnReason.DAMAGED_IN_TRANSIT: "DT",
    ReturnReason.DEFECTIVE: "DM",  # defective merchandise
    ReturnReason.WRONG_ITEM: "WG",  # wrong goods or not ordered
    ReturnReason.NOT_AS_DESCRIBED: "NA",  # not as expected
    ReturnReason.LATE_DELIVERY: "SP",
}
REASONS = {code: reason for reason, code in REASON_CODES.items()}
ID_VALUE = re.compile(r"[A-Za-z0-9\-_.]{1,30}")


class ContentError(ValueError):
    """A 180 whose content breaks the layout above: ``notes`` say where, for the 997."""

    def __init__(self, notes: list[Note]) -> None:
        super().__init__("; ".join(n.message for n in notes))
        self.notes = notes


@dataclass(frozen=True)
class RequestLine:
    item_id: str
    quantity: int
    reason: ReturnReason


@dataclass(frozen=True)
class ReturnRequest:
    reference: str  # BGN02: the partner's id for the request, what it matches our answer to
    order_id: str  # PRF01
    requested_at: datetime  # BGN03 and BGN04, to the minute
    lines: tuple[RequestLine, ...]


def request_set(request: ReturnRequest, control: str) -> Transaction:
    body: list[Segment] = [("BGN", "00", request.reference, request.requested_at.strftime("%Y%m%d"), request.requested_at.strftime("%H%M")),
                           ("PRF", request.order_id)]
    for line in request.lines:
        body += [("BLI", "SK", line.item_id, str(line.quantity), "EA"), ("RDR", "", REASON_CODES[line.reason])]
    body.append(("CTT", str(len(request.lines))))
    return Transaction("180", control, tuple(body))


def read_request(transaction: Transaction) -> ReturnRequest:
    """The request in a 180; a :class:`ContentError` listing every problem found."""
    notes: list[Note] = []
    body = list(transaction.body)

    def note(at: int, message: str, element: int | None = None, code: str = INVALID_VALUE, segment_code: str = ELEMENT_ERRORS) -> None:
        seg = body[at][0] if at < len(body) else "SE"
        notes.append(Note(SEGMENTS_IN_ERROR, f"{seg} (segment {at + 2}): {message}", segment=seg, position=at + 2,
                          segment_code=segment_code, element=element, element_code=code if element is not None else None))

    def element(at: int, n: int, pattern: re.Pattern | None = None, what: str = "a value") -> str:
        value = body[at][n] if n < len(body[at]) else ""
        if not value:
            note(at, f"element {n} missing: expected {what}", n, ELEMENT_MISSING)
        elif pattern is not None and not pattern.fullmatch(value):
            note(at, f"element {n}: expected {what}, got {value!r}", n)
        return value

    def expect(at: int, segment: str) -> bool:
        if at >= len(body) or body[at][0] != segment:
            got = body[at][0] if at < len(body) else "the end of the set"
            note(at, f"expected {segment}, got {got}", segment_code=MANDATORY_SEGMENT_MISSING if at >= len(body) else UNEXPECTED_SEGMENT)
            return False
        return True

    requested_at = datetime(1970, 1, 1)
    reference = order_id = ""
    if expect(0, "BGN"):
        element(0, 1, re.compile("00"), "00 (original)")
        reference = element(0, 2, ID_VALUE, "the partner's request id (1-30 letters, digits, - _ .)")
        date, time = element(0, 3, what="CCYYMMDD"), element(0, 4, what="HHMM")
        try:
            requested_at = datetime.strptime(date + time, "%Y%m%d%H%M")
        except ValueError:
            if date and time:
                note(0, f"elements 3-4: expected a date CCYYMMDD and a time HHMM, got {date!r} {time!r}", 3, INVALID_DATE)
    if expect(1, "PRF"):
        order_id = element(1, 1, ID_VALUE, "the purchase order number")
    lines, at = [], 2
    while at < len(body) and body[at][0] == "BLI":
        element(at, 1, re.compile("SK"), "SK (SKU)")
        item = element(at, 2, ID_VALUE, "an item id")
        quantity = element(at, 3, re.compile(r"[1-9]\d{0,5}"), "a whole quantity of at least 1")
        element(at, 4, re.compile("EA"), "EA (each)")
        reason = None
        if expect(at + 1, "RDR"):
            code = element(at + 1, 2, what="a return request reason code")
            reason = REASONS.get(code)
            if code and reason is None:
                note(at + 1, f"element 2: expected one of {', '.join(sorted(REASONS))}, got {code!r}", 2)
        if item and quantity.isdigit() and reason is not None:
            lines.append(RequestLine(item, int(quantity), reason))
        at += 2
    if at == 2:
        note(2, "expected at least one BLI loop (a line to return)", segment_code=MANDATORY_SEGMENT_MISSING)
    if expect(at, "CTT"):
        element(at, 1, re.compile(str((at - 2) // 2)), f"the number of lines, {(at - 2) // 2}")
        if at + 1 < len(body):
            note(at + 1, "expected SE after CTT", segment_code=UNEXPECTED_SEGMENT)
    if notes:
        raise ContentError(notes)
    return ReturnRequest(reference, order_id, requested_at, tuple(lines))
