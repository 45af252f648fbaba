"""The words of the step library: systems, events, shares, durations and times of day.

Each parser turns the text a step captured into a scenario value, or fails the step with the
value and what was expected (:func:`bad_value`), never with a traceback.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

# What a feature may call each fake, and its name in a scenario file.
SYSTEMS = {"erp": "erp", "wms": "wms", "carrier": "carrier", "portal": "returns_portal", "returns portal": "returns_portal"}
# The events each system sends, by the words a feature uses for them.
EVENTS = {
    "returns_portal": {"new return": "return.created", "return": "return.created", "cancellation": "return.cancelled"},
    "carrier": {"scan": "tracking.updated", "tracking": "tracking.updated"},
    "wms": {"receipt": "receipt.completed", "inspection": "inspection.completed"},
}
# The writes an integration layer makes, by system: words -> (method, path glob).
WRITES = {
    "erp": {"return authorization": ("POST", "/return-authorizations"), "rma": ("POST", "/return-authorizations"),
            "credit memo": ("POST", "/credit-memos"), "inventory adjustment": ("POST", "/inventory-adjustments"),
            "supplier claim": ("POST", "/supplier-claims"), "replacement order": ("POST", "/sales-orders")},
    "wms": {"expected receipt": ("POST", "/expected-receipts"), "asn": ("POST", "/expected-receipts")},
    "carrier": {"label": ("POST", "/labels")},
    "returns_portal": {"status update": ("PATCH", "/returns/*")},
}
ANY_WRITE = ("POST", "*")


class StepValueError(pytest.fail.Exception):
    """A step whose value cannot be used; the plugin adds the step's text to the message."""


def bad_value(message: str) -> StepValueError:
    # pytrace=False: the message is the whole report, a person needs no traceback for a typo.
    return StepValueError(message, pytrace=False)


def _plural(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def system(text: str) -> str:
    """'the ERP', 'WMS', 'portal' -> the scenario's system name."""
    key = text.strip().lower().removeprefix("the ")
    if key not in SYSTEMS:
        raise bad_value(f"unknown system {text!r}; expected one of: ERP, WMS, carrier, portal")
    return SYSTEMS[key]


def event_type(sender: str, text: str) -> str | None:
    """'inspection events', 'scans', 'events' of a system -> one event type, or None for all its events."""
    words = re.sub(r"\bevents?\b", "", text.strip().lower()).strip()
    events = EVENTS.get(sender)
    if events is None:
        raise bad_value(f"the {sender.upper()} sends no events; events come from the portal, the carrier and the WMS")
    if not words or words in ("its", "all"):
        return None
    words = " ".join(_plural(w) for w in words.removeprefix("its ").split())
    if words not in events:
        raise bad_value(f"the {sender.replace('_', ' ')} sends no {text!r} events; expected one of: {', '.join(sorted(events))}")
    return events[words]


def event_types(sender: str, text: str) -> list[str]:
    one = event_type(sender, text)
    return [one] if one else sorted(set(EVENTS[sender].values()))


def write(target: str, text: str) -> tuple[str, str]:
    """'credit memos', 'writes' of a system -> (method, path glob)."""
    words = " ".join(_plural(w) for w in text.strip().lower().removeprefix("its ").split())
    if words == "write":
        return ANY_WRITE
    writes = WRITES[target]
    if words not in writes:
        raise bad_value(f"{text!r} are not writes to the {target.replace('_', ' ')}; expected one of: writes, "
                        f"{', '.join(sorted(w + 's' for w in writes))}")
    return writes[words]


def share(text: str) -> float:
    """'every' -> 1.0, '30%' or '30% of' -> 0.3."""
    value = text.strip().lower().removesuffix(" of").strip()
    if value in ("every", "all", "each"):
        return 1.0
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*%", value)
    if not match:
        raise bad_value(f"{text!r} is not a share; expected 'every' or a percentage such as '30%'")
    percent = float(match.group(1))
    if not 0 <= percent <= 100:
        raise bad_value(f"{value!r} is not a share between 0% and 100%")
    return percent / 100


UNITS = {"ms": 0.001, "millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600, "day": 86_400}


def duration(amount: str | float, unit: str) -> float:
    """(2, 'hours') -> 7200.0 seconds."""
    key = unit.strip().lower()
    key = key if key in UNITS else _plural(key)  # "ms" is not the plural of "m"
    if key not in UNITS:
        raise bad_value(f"unknown unit {unit!r}; expected ms, seconds, minutes, hours or days")
    value = number(amount, "duration")
    if value <= 0:
        raise bad_value(f"a duration must be positive, got {amount} {unit}")
    return value * UNITS[key]


def number(text: str | float, what: str, *, minimum: float | None = None) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise bad_value(f"{what}: {text!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise bad_value(f"{what} must be at least {minimum:g}, got {text}")
    return value


def count(text: str | int, what: str) -> int:
    """A whole number of at least 1."""
    value = number(text, what, minimum=1)
    if value != int(value):
        raise bad_value(f"{what} must be a whole number, got {text}")
    return int(value)


def day_time(epoch: datetime, day: str | int, clock: str) -> datetime:
    """('2', '09:00') -> business time: day 1 is the scenario's first day."""
    d = count(day, "day")
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", clock.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise bad_value(f"{clock!r} is not a time of day; expected HH:MM, e.g. 09:00")
    start = epoch.replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=d - 1, hours=int(match.group(1)), minutes=int(match.group(2)))
