"""The step catalogue (docs/STEPS.md), generated from the step registry:
``python -m simulators.bdd.catalogue > docs/STEPS.md``."""

from __future__ import annotations

import inspect
import re

from simulators.bdd.steps import faults, given, then, when
from simulators.bdd.steps.registry import STEPS, TYPES

SECTIONS = [("given", given.__name__, "Given: the world"), ("given", faults.__name__, "Given: faults"),
            ("when", when.__name__, "When: what happens"), ("then", then.__name__, "Then: what must hold")]


GRAMMAR = {"Ask": "ask(s)", "Be": "is/are", "Arrive": "arrive(s)", "Returns": "return(s)"}  # agreement, not parameters


def _shown(pattern: str) -> str:
    pattern = re.sub(r"\{\w+:(\w+)\}", lambda m: GRAMMAR.get(m.group(1), m.group(0)), pattern)
    return re.sub(r"\{(\w+)(?::\w+)?\}", r"<\1>", pattern)


def render() -> str:
    out = ["# Gherkin steps", "",
           "Generated from the step library (`python -m simulators.bdd.catalogue > docs/STEPS.md`); every step is",
           "available to any `.feature` file once returns-harness is installed. `<name>` marks a parameter.",
           "See [GHERKIN.md](GHERKIN.md) for how to run features and write your own.", "",
           "Typed parameters accept (a value of the right shape but out of range fails naming the step and the value):", ""]
    out += [f"- `{name}`: {kind.meaning}" for name, kind in TYPES.items() if name not in GRAMMAR]
    for kind, module, title in SECTIONS:
        out += ["", f"## {title}", ""]
        for doc in STEPS:
            if doc.kind != kind or doc.func.__module__ != module:
                continue
            out.append("- " + " / ".join(f"**{kind.capitalize()}** `{_shown(p)}`" for p in doc.patterns))
            out.append(f"  {' '.join(inspect.getdoc(doc.func).split())}")
            out.append(f"  Example: `{doc.example}`")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
