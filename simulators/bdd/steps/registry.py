"""How steps are declared: a pytest-bdd step per pattern, and an entry in :data:`STEPS` for the
generated catalogue (docs/STEPS.md).

Patterns use ``parse`` syntax with a few typed fields (:data:`TYPES`). The types match loosely on
purpose (a negative number, any system name): the step then checks the value and fails with a
message naming it, instead of pytest-bdd's "step definition not found".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pytest_bdd import given, parsers, then, when


def _field(pattern: str, meaning: str) -> Callable[[str], str]:
    def text(value: str) -> str:
        return value

    text.pattern = pattern  # what parse matches for this type
    text.meaning = meaning
    return text


NUMBER = r"-?\d+(?:\.\d+)?"
TYPES = {
    "Number": _field(NUMBER, "a number, e.g. 20 or 2.5"),
    "Share": _field(rf"every|each|all|{NUMBER}%(?: of)?", "`every`, or a percentage such as `30% of`"),
    "System": _field(r"[A-Za-z]+(?: portal)?", "ERP, WMS, carrier or portal"),
    "Word": _field(r"[A-Za-z-]+", "one word"),
    "Unit": _field(r"[A-Za-z]+", "ms, seconds, minutes, hours or days"),
    "Arrive": _field(r"arrives?", "arrive or arrives"),
    "Be": _field(r"is|are", "is or are"),
    "Ask": _field(r"asks?", "ask or asks"),
    "Returns": _field(r"returns?", "return or returns"),
}
DECORATORS = {"given": given, "when": when, "then": then}


@dataclass(frozen=True)
class StepDoc:
    kind: str
    patterns: tuple[str, ...]
    func: Callable
    example: str


STEPS: list[StepDoc] = []


def step(kind: str, *patterns: str, example: str, depth: int = 0) -> Callable[[Callable], Callable]:
    """Declare a step under one or more patterns (grammatical variants of one sentence).

    ``depth``: how many function calls lie between the declaring module and this call (the step's
    fixture must land in the module, a plugin that pytest reads fixtures from)."""

    def register(func: Callable) -> Callable:
        for pattern in patterns:
            DECORATORS[kind](parsers.parse(pattern, extra_types=TYPES), stacklevel=2 + depth)(func)
        STEPS.append(StepDoc(kind, patterns, func, example))
        return func

    return register
