"""A partner's return request as an X12 180: what is written reads back, inside a whole
interchange; each content problem is refused naming the segment, its position and the element,
as the 997 reports it, and every problem of a set is found at once."""

from __future__ import annotations

from datetime import datetime

import pytest

from simulators.channels import rma180, x12
from simulators.domain import ReturnReason

REQUEST = rma180.ReturnRequest("PRT-RMA-0007", "SO-000123", datetime(2026, 12, 26, 9, 30),
                               (rma180.RequestLine("SKU-AP1011", 2, ReturnReason.SIZE_FIT),
                                rma180.RequestLine("SKU-EL1070", 1, ReturnReason.DEFECTIVE)))


def test_a_request_reads_back_through_an_interchange():
    transaction = rma180.request_set(REQUEST, "0001")
    assert transaction.body[:4] == (("BGN", "00", "PRT-RMA-0007", "20261226", "0930"), ("PRF", "SO-000123"),
                                    ("BLI", "SK", "SKU-AP1011", "2", "EA"), ("RDR", "", "PF"))
    assert transaction.body[-1] == ("CTT", "2")
    group = x12.Group("AN", "PARTNER", "RETURNSCO", "20261226", "0930", "1", (transaction,))
    text = x12.write(x12.Interchange("PARTNER", "RETURNSCO", "261226", "0930", "000000001", (group,)))
    (_, back), = x12.read(text).transactions()
    assert rma180.read_request(back) == REQUEST


def test_every_reason_has_a_code_of_the_standards_list():
    assert set(rma180.REASON_CODES) == set(ReturnReason)
    assert len(set(rma180.REASON_CODES.values())) == len(ReturnReason)


def bad(change) -> list[x12.Note]:
    body = list(rma180.request_set(REQUEST, "0001").body)
    change(body)
    with pytest.raises(rma180.ContentError) as refused:
        rma180.read_request(x12.Transaction("180", "0001", tuple(body)))
    return refused.value.notes


@pytest.mark.parametrize(("change", "where", "message"), [
    (lambda b: b.__setitem__(2, ("BLI", "SK", "SKU-AP1011", "0", "EA")), ("BLI", 4, 3), "a whole quantity of at least 1, got '0'"),
    (lambda b: b.__setitem__(3, ("RDR", "", "ZZ")), ("RDR", 5, 2), "expected one of CO, DM, DT, NA, PF, SP, WG, got 'ZZ'"),
    (lambda b: b.__setitem__(0, ("BGN", "00", "PRT-RMA-0007", "20261341", "0930")), ("BGN", 2, 3), "expected a date CCYYMMDD"),
    (lambda b: b.__setitem__(1, ("PRF", "")), ("PRF", 3, 1), "element 1 missing: expected the purchase order number"),
    (lambda b: b.__setitem__(-1, ("CTT", "3")), ("CTT", 8, 1), "expected the number of lines, 2, got '3'"),
    (lambda b: b.pop(3), ("BLI", 5, None), "expected RDR, got BLI"),
    (lambda b: b.pop(), ("SE", 8, None), "expected CTT, got the end of the set"),
    (lambda b: b.insert(0, ("N9", "PO", "X")), ("N9", 2, None), "expected BGN, got N9"),
])
def test_a_bad_request_is_refused_naming_the_segment_and_element(change, where, message):
    notes = bad(change)
    assert (notes[0].segment, notes[0].position, notes[0].element) == where and message in notes[0].message, notes
    assert all(n.code == x12.SEGMENTS_IN_ERROR for n in notes)


def test_every_problem_of_a_set_is_found_and_the_997_rejects_it_with_them():
    def two(body):
        body[2] = ("BLI", "SK", "SKU-AP1011", "two", "EA")
        body[5] = ("RDR", "", "??")
    notes = bad(two)
    assert [(n.segment, n.position, n.element) for n in notes] == [("BLI", 4, 3), ("RDR", 7, 2)]
    group = x12.Group("AN", "PARTNER", "RETURNSCO", "20261226", "0930", "1", (rma180.request_set(REQUEST, "0001"),))
    ack = x12.acknowledgment(group, {"0001": notes}, control="0001")
    assert ack.body[1:] == (("AK2", "180", "0001"), ("AK3", "BLI", "4", "", "8"), ("AK4", "3", "", "7"),
                            ("AK3", "RDR", "7", "", "8"), ("AK4", "2", "", "7"), ("AK5", "R", "5"), ("AK9", "R", "1", "1", "0"))
