"""ASC X12 interchanges (release 004010): a strict reader, a writer, and the 997 functional
acknowledgment a receiver owes each functional group.

What PyPI offers does not fit: pyx12 and openx12 cover healthcare sets, badX12 only parses, and
the newer toolkits are a few commits old. This module is small and holds to the published
envelope rules: ISA is 106 characters of fixed-width elements and names the delimiters; every
GS/GE, ST/SE pair carries one control number at both ends; SE01 counts the set's segments from
ST to SE; GE01 counts the group's sets and IEA01 the interchange's groups.

An interchange whose envelope cannot be read (no ISA, a cut file without IEA, an IEA that does
not close the ISA) is refused whole: :class:`X12Error`. What is wrong inside a group or a set is
kept as :class:`Note` s on it, for the 997 to report (AK3/AK4/AK5/AK9), and the rest of the
interchange is still read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

Segment = tuple[str, ...]  # the segment id, then its elements: ("BGN", "00", "RMA-REQ-1", "20261226")

VERSION = "004010"
ISA_LENGTH = 106
# ISA01..ISA16: the fixed widths of the interchange header's elements.
ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
CONTROL = re.compile(r"\d{9}")

# AK502: why a transaction set was rejected.
SET_TRAILER_MISSING, SET_CONTROL_MISMATCH, SET_COUNT_MISMATCH, SEGMENTS_IN_ERROR = "2", "3", "4", "5"
# AK905: why a functional group was rejected.
GROUP_CONTROL_MISMATCH, GROUP_COUNT_MISMATCH = "4", "5"
# AK304 and AK403: what is wrong with a segment, and with an element of it.
UNEXPECTED_SEGMENT, MANDATORY_SEGMENT_MISSING, ELEMENT_ERRORS = "2", "3", "8"
ELEMENT_MISSING, INVALID_VALUE, INVALID_DATE = "1", "7", "8"


class X12Error(ValueError):
    """An interchange that cannot be read at all; the message names the segment and what was expected."""


@dataclass(frozen=True)
class Note:
    """One problem in a group or a set: ``code`` is AK502 (of a set) or AK905 (of a group); a
    note on a segment names it and its position in the set (ST is 1), with AK304; one on an
    element also names the element's position, with AK403."""

    code: str
    message: str
    segment: str | None = None
    position: int | None = None
    segment_code: str | None = None
    element: int | None = None
    element_code: str | None = None


@dataclass(frozen=True)
class Transaction:
    set_id: str
    control: str
    body: tuple[Segment, ...]  # between ST and SE
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Group:
    function: str  # GS01: AN for return authorizations (180), FA for acknowledgments (997)
    sender: str
    receiver: str
    date: str  # CCYYMMDD
    time: str  # HHMM
    control: str
    transactions: tuple[Transaction, ...]
    version: str = VERSION
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Interchange:
    sender: str
    receiver: str
    date: str  # YYMMDD
    time: str  # HHMM
    control: str  # ISA13, nine digits: what a receiver deduplicates on
    groups: tuple[Group, ...]
    qualifier: str = "ZZ"  # mutually defined ids
    usage: str = "P"  # production (T: test)
    ack_requested: str = "0"  # a TA1 is not asked for; the 997 is owed by the agreement

    def transactions(self) -> Iterator[tuple[Group, Transaction]]:
        for group in self.groups:
            for transaction in group.transactions:
                yield group, transaction


@dataclass(frozen=True)
class Delimiters:
    element: str = "*"
    segment: str = "~"
    component: str = ">"


# --- writing ---------------------------------------------------------------------------------


def write(interchange: Interchange, delimiters: Delimiters = Delimiters()) -> str:
    """The interchange as text: one segment a line (the line break follows the terminator)."""
    d = delimiters
    isa = ("ISA", "00", " " * 10, "00", " " * 10, interchange.qualifier, interchange.sender.ljust(15), interchange.qualifier,
           interchange.receiver.ljust(15), interchange.date, interchange.time, "U", "00401", interchange.control,
           interchange.ack_requested, interchange.usage, d.component)
    segments: list[Segment] = [isa]
    for group in interchange.groups:
        segments.append(("GS", group.function, group.sender, group.receiver, group.date, group.time, str(int(group.control)), "X",
                         group.version))
        for t in group.transactions:
            segments += [("ST", t.set_id, t.control), *t.body, ("SE", str(len(t.body) + 2), t.control)]
        segments.append(("GE", str(len(group.transactions)), str(int(group.control))))
    segments.append(("IEA", str(len(interchange.groups)), interchange.control))
    for segment in segments:
        for value in segment[1:]:
            if any(c in value for c in (d.element, d.segment, d.component)) and segment[0] != "ISA":
                raise ValueError(f"{segment[0]}: {value!r} holds a delimiter")
    return "".join(d.element.join(segment) + d.segment + "\n" for segment in segments)


# --- reading ---------------------------------------------------------------------------------


def split(text: str) -> tuple[Delimiters, list[Segment]]:
    """The delimiters ISA names, and the segments (line breaks between segments are ignored)."""
    text = text.lstrip()
    if not text.startswith("ISA"):
        raise X12Error(f"expected an interchange starting with ISA, got {text[:20]!r}")
    if len(text) < ISA_LENGTH:
        raise X12Error(f"ISA: expected {ISA_LENGTH} characters, got {len(text)}")
    delimiters = Delimiters(element=text[3], segment=text[ISA_LENGTH - 1], component=text[ISA_LENGTH - 2])
    isa = text[:ISA_LENGTH - 1].split(delimiters.element)
    if len(isa) != 17 or any(len(value) != width for value, width in zip(isa[1:], ISA_WIDTHS, strict=True)):
        widths = ", ".join(f"ISA{n:02d} {w}" for n, w in enumerate(ISA_WIDTHS, 1))
        raise X12Error(f"ISA: expected 16 fixed-width elements ({widths}), got {isa[1:]!r}")
    body = text[ISA_LENGTH:].split(delimiters.segment)
    segments = [tuple(isa)] + [tuple(raw.strip("\r\n").split(delimiters.element)) for raw in body]
    if segments[-1] == ("",):
        segments.pop()  # after the last terminator
    return delimiters, segments


def read(text: str) -> Interchange:
    """The interchange in ``text``; problems inside groups and sets are noted on them."""
    _, segments = split(text)
    isa, rest = segments[0], segments[1:]
    control = isa[13]
    if not CONTROL.fullmatch(control):
        raise X12Error(f"ISA13: expected a nine-digit interchange control number, got {control!r}")
    if not rest or rest[-1][0] != "IEA":
        raise X12Error(f"IEA: missing: the interchange {control} ends after {rest[-1][0] if rest else 'ISA'} (a file cut short?)")
    iea = rest.pop()
    if len(iea) != 3 or iea[2] != control:
        raise X12Error(f"IEA02: expected the interchange control number {control}, got {iea[2:3]}")
    groups = list(_groups(rest))
    if iea[1] != str(len(groups)):
        raise X12Error(f"IEA01: expected the number of groups, {len(groups)}, got {iea[1]!r}")
    return Interchange(sender=isa[6].rstrip(), receiver=isa[8].rstrip(), date=isa[9], time=isa[10], control=control,
                       groups=tuple(groups), qualifier=isa[5], usage=isa[15], ack_requested=isa[14])


def _groups(segments: list[Segment]) -> Iterator[Group]:
    at = 0
    while at < len(segments):
        gs = segments[at]
        if gs[0] != "GS" or len(gs) != 9:
            raise X12Error(f"segment {at + 2}: expected GS (9 elements) to open a functional group, got {gs[0]}")
        end = next((n for n in range(at + 1, len(segments)) if segments[n][0] in ("GE", "GS")), None)
        if end is None or segments[end][0] != "GE":
            raise X12Error(f"GE: missing for the functional group {gs[6]} opened at segment {at + 2}")
        ge = segments[end]
        transactions = tuple(_transactions(segments[at + 1:end], gs[6]))
        notes = []
        if len(ge) != 3 or ge[2] != gs[6]:
            notes.append(Note(GROUP_CONTROL_MISMATCH, f"GE02 {ge[2:3]} does not match GS06 {gs[6]}"))
        if ge[1] != str(len(transactions)):
            notes.append(Note(GROUP_COUNT_MISMATCH, f"GE01 says {ge[1]} transaction sets; the group holds {len(transactions)}"))
        yield Group(function=gs[1], sender=gs[2], receiver=gs[3], date=gs[4], time=gs[5], control=gs[6], version=gs[8],
                    transactions=transactions, notes=tuple(notes))
        at = end + 1


def _transactions(segments: list[Segment], group: str) -> Iterator[Transaction]:
    at = 0
    while at < len(segments):
        st = segments[at]
        if st[0] != "ST" or len(st) < 3:
            raise X12Error(f"group {group}: expected ST to open a transaction set, got {st[0]}")
        end = next((n for n in range(at + 1, len(segments)) if segments[n][0] in ("SE", "ST")), None)
        if end is None or segments[end][0] != "SE":
            stop = end if end is not None else len(segments)
            yield Transaction(st[1], st[2], tuple(segments[at + 1:stop]), (Note(SET_TRAILER_MISSING, f"SE missing for set {st[2]}"),))
            at = stop
            continue
        se, body = segments[end], tuple(segments[at + 1:end])
        notes = []
        if len(se) != 3 or se[2] != st[2]:
            notes.append(Note(SET_CONTROL_MISMATCH, f"SE02 {se[2:3]} does not match ST02 {st[2]}"))
        if se[1] != str(len(body) + 2):
            notes.append(Note(SET_COUNT_MISMATCH, f"SE01 says {se[1]} segments; the set has {len(body) + 2}"))
        yield Transaction(st[1], st[2], body, tuple(notes))
        at = end + 1


# --- the functional acknowledgment (997) -----------------------------------------------------


def acknowledgment(group: Group, notes: dict[str, Iterable[Note]], control: str) -> Transaction:
    """The 997 for ``group``: each set accepted unless it or ``notes`` (by set control number,
    what the receiver found in its content) has a problem; AK9 counts what was accepted. A
    group with a problem of its own is rejected whole: none of its sets is to be acted on."""
    body: list[Segment] = [("AK1", group.function, str(int(group.control)))]
    accepted = 0
    for t in group.transactions:
        problems = [*t.notes, *notes.get(t.control, ())]
        body.append(("AK2", t.set_id, t.control))
        for note in problems:
            if note.segment is not None:
                body.append(("AK3", note.segment, str(note.position), "", note.segment_code or ELEMENT_ERRORS))
                if note.element is not None:
                    body.append(("AK4", str(note.element), "", note.element_code or INVALID_VALUE))
        if problems:
            codes = list(dict.fromkeys(n.code for n in problems))[:5]
            body.append(("AK5", "R", *codes))
        else:
            body.append(("AK5", "A"))
            accepted += 1
    n = len(group.transactions)
    accepted = 0 if group.notes else accepted
    status = "R" if not accepted else ("A" if accepted == n else "P")
    body.append(("AK9", status, str(n), str(n), str(accepted), *[note.code for note in group.notes][:5]))
    return Transaction("997", control, tuple(body))


@dataclass(frozen=True)
class SetVerdict:
    set_id: str
    control: str
    accepted: bool
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Acknowledged:
    """What a 997 says of one functional group."""

    function: str
    group: str
    status: str  # AK901: A, P or R
    sets: tuple[SetVerdict, ...] = field(default_factory=tuple)


def read_acknowledgment(transaction: Transaction) -> Acknowledged:
    """A 997's verdicts; a 997 that does not follow the set's layout is an :class:`X12Error`."""
    if transaction.set_id != "997":
        raise X12Error(f"ST01: expected 997, got {transaction.set_id!r}")
    body = list(transaction.body)
    if not body or body[0][0] != "AK1" or len(body[0]) < 3:
        raise X12Error("AK1: expected first in a 997, with the group's functional id and control number")
    if body[-1][0] != "AK9" or len(body[-1]) < 5:
        raise X12Error("AK9: expected last in a 997, with the group's status and counts")
    sets, current = [], None
    for segment in body[1:-1]:
        if segment[0] == "AK2":
            current = segment
        elif segment[0] == "AK5":
            if current is None:
                raise X12Error("AK5: expected after an AK2")
            sets.append(SetVerdict(current[1], current[2], segment[1] in ("A", "E"), tuple(segment[2:])))
            current = None
        elif segment[0] not in ("AK3", "AK4"):
            raise X12Error(f"{segment[0]}: not a segment of a 997")
    return Acknowledged(body[0][1], body[0][2], body[-1][1], tuple(sets))
