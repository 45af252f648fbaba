"""SLA gates of a load run: thresholds from the scenario or the command line, checked at the end.

A gate spec is ``pNN=VALUE`` pairs separated by commas (``p50=100,p99=500``): the percentile
of a measure that must stay at or below the value. Bad specs are refused with the option named
and what was expected, before any load starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simulators.oracle.checks import percentile

_PAIR = re.compile(r"^p(\d{1,2}(?:\.\d+)?)=(\d+(?:\.\d+)?)$")


class GateError(ValueError):
    """A gate option that cannot be read, with the option and what was expected."""


def parse_spec(option: str, text: str | None) -> dict[float, float]:
    """``p50=100,p99=500`` -> {50.0: 100.0, 99.0: 500.0}; empty or None -> {}."""
    if not text:
        return {}
    out: dict[float, float] = {}
    for part in text.split(","):
        m = _PAIR.match(part.strip())
        if not m or not 0 < float(m.group(1)) < 100:
            raise GateError(f"{option}: expected percentile=value pairs like p50=100,p99=500 (percentile between 0 and 100),"
                            f" got {part.strip()!r}")
        out[float(m.group(1))] = float(m.group(2))
    return out


def parse_rate(option: str, text: str | float | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise GateError(f"{option}: expected a share between 0 and 1 (0.01 is 1%), got {text!r}") from None
    if not 0 <= value <= 1:
        raise GateError(f"{option}: expected a share between 0 and 1 (0.01 is 1%), got {text!r}")
    return value


@dataclass
class Gates:
    error_rate: float | None  # share of failed requests, at most
    ack_ms: dict[float, float]  # acknowledgement latency (corrected, from the intended send time), ms
    rma_lag_s: dict[float, float]  # return requested -> RMA created (business time at wall speed), s
    credit_lag_s: dict[float, float]  # return requested -> credit memo, s
    reconcile: bool = True  # the oracle's verdict must pass

    @classmethod
    def from_options(cls, scenario, *, error_rate=None, ack_ms=None, rma_lag_s=None, credit_lag_s=None, reconcile=True) -> Gates:
        """Command-line specs where given, else the scenario's SLAs (its business hours are wall
        hours here: the fakes' clock runs at wall speed under load)."""
        slas = scenario.slas
        return cls(
            error_rate=parse_rate("--sla-error-rate", error_rate) if error_rate not in (None, "") else 0.01,
            ack_ms=parse_spec("--sla-ack-ms", ack_ms) or {99.0: float(slas.ack_latency_ms_p99)},
            rma_lag_s=parse_spec("--sla-rma-lag-s", rma_lag_s) or {95.0: slas.request_to_rma_hours_p95 * 3600},
            credit_lag_s=parse_spec("--sla-credit-lag-s", credit_lag_s),
            reconcile=reconcile,
        )


def _pct(samples: list[float], p: float) -> float | None:
    return percentile(samples, p) if samples else None


def evaluate(gates: Gates, *, requests: int, failures: int, ack: dict[str, Any], rma_lags: list[float],
             credit_lags: list[float], verdict: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every gate with its threshold, what was observed and whether it passed (None: no data)."""
    results: list[dict[str, Any]] = []

    def gate(name: str, observed, threshold, unit: str, passed: bool | None) -> None:
        results.append({"gate": name, "observed": observed, "threshold": threshold, "unit": unit, "passed": passed})

    if gates.error_rate is not None:
        rate = failures / requests if requests else None
        gate("error rate", None if rate is None else round(rate, 5), gates.error_rate, "share",
             None if rate is None else rate <= gates.error_rate)
    corrected = ack.get("corrected", {})
    for p, limit in sorted(gates.ack_ms.items()):
        value = corrected.get(f"p{p:g}")
        if value is None and corrected.get("count"):
            value = None
        gate(f"ack latency p{p:g} (corrected)", value, limit, "ms", None if value is None else value <= limit)
    for name, samples, spec in (("request to RMA", rma_lags, gates.rma_lag_s), ("request to credit memo", credit_lags, gates.credit_lag_s)):
        for p, limit in sorted(spec.items()):
            value = _pct(samples, p)
            gate(f"{name} p{p:g}", None if value is None else round(value, 3), limit, "s", None if value is None else value <= limit)
    if gates.reconcile:
        if verdict is None:
            gate("reconciliation", None, "every check passes", "", None)
        else:
            failed = [c["name"] for c in verdict["checks"] if c["valid"] is False]
            gate("reconciliation", ", ".join(failed) or "ok", "every check passes", "", verdict["ok"])
    return results


def failed(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gates that failed; a gate with no data fails too (a run that measured nothing proves nothing)."""
    return [r for r in results if r["passed"] is not True]


def describe(result: dict[str, Any]) -> str:
    unit = f" {result['unit']}" if result["unit"] and result["unit"] != "share" else ""
    if result["passed"] is None:
        return f"{result['gate']}: no data (threshold {result['threshold']}{unit})"
    verb = "<=" if result["passed"] else ">"
    if result["gate"] == "reconciliation":
        return f"reconciliation: {'ok' if result['passed'] else 'FAILED checks: ' + str(result['observed'])}"
    return f"{result['gate']}: {result['observed']}{unit} {verb} {result['threshold']}{unit}"
