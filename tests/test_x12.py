"""The X12 envelope: what the writer makes the reader reads back; every envelope rule a partner
breaks is either a refusal naming the segment or a note the 997 reports; the 997 says which sets
were accepted, in a layout its own reader (and a partner's) takes."""

from __future__ import annotations

import pytest

from simulators.channels import x12

BODY = (("BGN", "00", "REQ-1", "20261226", "0930"), ("N9", "PO", "SO-000123"), ("BLI", "SK", "SKU-AP1011", "2", "EA"))


def interchange(*transactions: x12.Transaction, control: str = "000000042") -> x12.Interchange:
    group = x12.Group("AN", "PARTNER", "RETURNSCO", "20261226", "0930", "7", transactions or (x12.Transaction("180", "0001", BODY),))
    return x12.Interchange("PARTNER", "RETURNSCO", "261226", "0930", control, (group,))


def test_what_is_written_reads_back_with_the_counts_and_control_numbers_it_needs():
    text = x12.write(interchange(x12.Transaction("180", "0001", BODY), x12.Transaction("180", "0002", BODY[:2])))
    lines = text.splitlines()
    assert len(lines[0]) == x12.ISA_LENGTH and lines[0].endswith("*>~")
    assert lines[1] == "GS*AN*PARTNER*RETURNSCO*20261226*0930*7*X*004010~"
    assert "SE*5*0001~" in lines and "SE*4*0002~" in lines  # ST and SE count
    assert lines[-2:] == ["GE*2*7~", "IEA*1*000000042~"]
    back = x12.read(text)
    assert back == interchange(x12.Transaction("180", "0001", BODY), x12.Transaction("180", "0002", BODY[:2]))
    assert all(not t.notes for _, t in back.transactions())


def test_other_delimiters_and_no_line_breaks_read_the_same():
    text = x12.write(interchange(), x12.Delimiters(element="|", segment="\n", component=":")).replace("\n\n", "\n")
    assert x12.read(text) == interchange()
    assert x12.read(x12.write(interchange()).replace("\n", "")) == interchange()


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t[:200], "IEA: missing: the interchange 000000042 ends after"),
    (lambda t: t.replace("IEA*1*000000042", "IEA*1*000000043"), "IEA02: expected the interchange control number 000000042"),
    (lambda t: t.replace("IEA*1*", "IEA*2*"), "IEA01: expected the number of groups, 1, got '2'"),
    (lambda t: t.replace("*000000042*0*P", "*42*0*P"), "ISA: expected 16 fixed-width elements"),
    (lambda t: "GS*AN" + t, "expected an interchange starting with ISA"),
    (lambda t: t.replace("GE*1*7~\n", ""), "GE: missing for the functional group 7"),
])
def test_an_envelope_that_cannot_be_read_is_refused_naming_the_segment(change, message):
    with pytest.raises(x12.X12Error, match=message.replace("(", r"\(").replace("*", r"\*")):
        x12.read(change(x12.write(interchange())))


def test_what_is_wrong_inside_a_set_or_group_is_noted_and_the_997_reports_it():
    text = x12.write(interchange(x12.Transaction("180", "0001", BODY), x12.Transaction("180", "0002", BODY)))
    text = text.replace("SE*5*0002", "SE*9*0002")  # the second set's count is wrong
    back = x12.read(text)
    (group,) = back.groups
    assert [n.code for n in group.transactions[1].notes] == [x12.SET_COUNT_MISMATCH]
    # The receiver found a bad element in the first set's content: AK3 and AK4 say where.
    content = {"0001": [x12.Note(x12.SEGMENTS_IN_ERROR, "quantity", segment="BLI", position=4, element=3, element_code=x12.INVALID_VALUE)]}
    ack = x12.acknowledgment(group, content, control="0001")
    assert ack.body == (("AK1", "AN", "7"),
                        ("AK2", "180", "0001"), ("AK3", "BLI", "4", "", x12.ELEMENT_ERRORS), ("AK4", "3", "", "7"), ("AK5", "R", "5"),
                        ("AK2", "180", "0002"), ("AK5", "R", "4"),
                        ("AK9", "R", "2", "2", "0"))


def test_a_997_accepting_some_sets_is_partial_and_reads_back_through_an_interchange():
    group = interchange(x12.Transaction("180", "0001", BODY), x12.Transaction("180", "0002", BODY)).groups[0]
    ack = x12.acknowledgment(group, {"0002": [x12.Note(x12.SEGMENTS_IN_ERROR, "no lines")]}, control="0001")
    reply = x12.Interchange("RETURNSCO", "PARTNER", "261226", "0931", "000000001",
                            (x12.Group("FA", "RETURNSCO", "PARTNER", "20261226", "0931", "1", (ack,)),))
    (_, transaction), = x12.read(x12.write(reply)).transactions()
    verdict = x12.read_acknowledgment(transaction)
    assert verdict.status == "P" and verdict.group == "7"
    assert [(s.control, s.accepted, s.codes) for s in verdict.sets] == [("0001", True, ()), ("0002", False, ("5",))]


def test_a_group_whose_trailer_is_wrong_is_rejected_whole():
    text = x12.write(interchange()).replace("GE*1*7", "GE*3*7")
    (group,) = x12.read(text).groups
    ack = x12.acknowledgment(group, {}, control="0001")
    assert ack.body[-1] == ("AK9", "R", "1", "1", "0", x12.GROUP_COUNT_MISMATCH)


def test_a_value_holding_a_delimiter_is_not_written():
    with pytest.raises(ValueError, match=r"BGN: 'A\*B' holds a delimiter"):
        x12.write(interchange(x12.Transaction("180", "0001", (("BGN", "00", "A*B"),))))
