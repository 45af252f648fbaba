"""Fault hooks: the ways a real ERP, WMS, carrier or portal misbehaves, switchable per rule.

A rule targets requests by method and path glob, and fires with a probability, for the first
N matching requests, and/or inside a window of business (clock) time. Each rule draws from its
own ``random.Random`` seeded from the system seed and the rule id, so the same requests meet
the same faults on every run. The later fault plan of a scenario drives these same rules.
"""

from __future__ import annotations

import fnmatch
import math
import random
import re
import time
import zlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.clock import Clock, to_wall_seconds
from simulators.fakekit.problems import Problem


class FaultKind(StrEnum):
    LATENCY = "latency"  # answer, but slowly
    ERROR = "error"  # answer with a 5xx
    OUTAGE = "outage"  # 503 + Retry-After for every matching request (maintenance window)
    RATE_LIMIT = "rate_limit"  # 429 + Retry-After above `limit` requests per `per_s` wall seconds
    CONCURRENCY_LIMIT = "concurrency_limit"  # 429 when more than `max_concurrent` are in flight
    TOKEN_EXPIRY = "token_expiry"  # the caller's OAuth token expires now: 401 invalid_token
    COMMIT_THEN_LOSE = "commit_then_lose"  # the write commits, then the response is lost


class FaultRuleSpec(BaseModel):
    """What a client posts to ``/__admin/faults`` (and what a scenario's fault plan holds)."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    method: str | None = Field(None, description="HTTP method to match; any when absent", examples=["POST"])
    path: str = Field("*", description="Glob matched against the request path", examples=["/credit-memos*"])
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0
    first_n: Annotated[int, Field(ge=1)] | None = Field(None, description="Fire for the first N matching requests only")
    every_n: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Fire on every Nth matching request only (the offset-th, then every N after it): spread over "
                          "the whole run, whatever its volume. A rate or concurrency limit with every_n answers its 429 "
                          "on those requests instead of counting")
    offset: Annotated[int, Field(ge=1)] | None = Field(None, description="With every_n: the first matching request that fires (default N)")
    active_from: datetime | None = Field(None, description="Start of the window, in the system's business time")
    active_until: datetime | None = Field(None, description="End of the window, in the system's business time")
    # Parameters, by kind.
    latency_ms: Annotated[int, Field(ge=0, le=600_000)] = 0
    jitter_ms: Annotated[int, Field(ge=0, le=600_000)] = 0
    status: Annotated[int, Field(ge=500, le=599)] = 500
    retry_after_s: Annotated[int, Field(ge=0, le=86_400)] | None = None
    limit: Annotated[int, Field(ge=1)] = 10
    per_s: Annotated[float, Field(gt=0, le=86_400)] = 1.0
    max_concurrent: Annotated[int, Field(ge=1)] = 5
    lose: Literal["drop", "delay"] = Field("drop", description="drop the connection, or answer after delay_ms")
    delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 30_000
    seed: int | None = Field(None, description="Seed of this rule's random draws; derived from the system seed when absent")

    @model_validator(mode="after")
    def _window_in_order(self) -> FaultRuleSpec:
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            raise ValueError("active_until must be after active_from")
        if self.offset is not None and self.every_n is None:
            raise ValueError("offset needs every_n")
        return self


class FaultRule(FaultRuleSpec):
    id: str
    matched: int = 0
    fired: int = 0


class FaultHooks:
    """The fault rules of one fake system, and the state they need (windows, in-flight counts)."""

    def __init__(self, system: str, seed: int, clock: Clock, public_paths: frozenset[str] = frozenset()) -> None:
        self.system = system
        self.public_paths = public_paths  # no token is asked for there (the token endpoint): none can expire
        self.seed = seed
        self.clock = clock
        self.rules: dict[str, FaultRule] = {}
        self._rngs: dict[str, random.Random] = {}
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._counter = 0
        self._rate_windows: dict[str, tuple[float, int]] = {}  # rule id -> (window start, count)
        self._armed: set[str] = set()  # every_n rules due to fire at their next chance
        self.in_flight = 0

    def add(self, spec: FaultRuleSpec) -> FaultRule:
        self._counter += 1
        rule = FaultRule(id=f"FLT-{self._counter:04d}", **spec.model_dump())
        seed = rule.seed if rule.seed is not None else zlib.crc32(f"{self.system}:{self.seed}:{rule.id}".encode())
        self.rules[rule.id] = rule
        self._rngs[rule.id] = random.Random(seed)
        self._patterns[rule.id] = re.compile(fnmatch.translate(rule.path))
        return rule

    def remove(self, rule_id: str) -> bool:
        self._armed.discard(rule_id)
        return self.rules.pop(rule_id, None) is not None

    def clear(self) -> None:
        self.rules.clear()
        self._rngs.clear()
        self._patterns.clear()
        self._rate_windows.clear()
        self._armed.clear()
        self._counter = 0

    def _arm(self, method: str, path: str) -> None:
        """Count this request against every every_n rule it matches (once, whatever fires), and
        arm those whose schedule it hits. An armed rule fires at the first chance it gets: on
        this request, or, if another rule answered it first (or it was an idempotent replay,
        which meets no latency and loses nothing), on the next one of its step."""
        for rule in self.rules.values():
            if rule.every_n is None or not self._matches(rule, method, path):
                continue
            rule.matched += 1
            first = rule.offset or rule.every_n
            if rule.matched >= first and (rule.matched - first) % rule.every_n == 0:
                self._armed.add(rule.id)

    def _matches(self, rule: FaultRule, method: str, path: str) -> bool:
        if rule.method and rule.method.upper() != method:
            return False
        if not self._patterns[rule.id].match(path):
            return False
        if rule.active_from or rule.active_until:
            now = self.clock.now()
            if rule.active_from and now < rule.active_from or rule.active_until and now >= rule.active_until:
                return False
        return True

    def _fires(self, rule: FaultRule, method: str, path: str) -> bool:
        if not self._matches(rule, method, path):
            return False
        if rule.every_n is not None:
            if rule.id not in self._armed:
                return False
            self._armed.discard(rule.id)
            return True
        rule.matched += 1
        if rule.first_n is not None and rule.matched > rule.first_n:
            return False
        if rule.probability < 1 and self._rngs[rule.id].random() >= rule.probability:
            return False
        return True

    def _retry_after(self, rule: FaultRule) -> str:
        if rule.retry_after_s is not None:
            return str(rule.retry_after_s)
        if rule.active_until is not None:
            remaining = (rule.active_until - self.clock.now()).total_seconds()
            return str(max(1, math.ceil(to_wall_seconds(self.clock, remaining))))
        return "30"

    def reject(self, method: str, path: str) -> tuple[FaultRule, Problem] | tuple[FaultRule, None] | None:
        """The first rejecting rule that fires for this request, with the error to answer.

        A token_expiry rule returns ``(rule, None)``: the caller revokes the token and answers 401.
        Every request passes here first: it is counted against the every_n rules (see _arm).
        """
        if not self.rules:
            return None
        self._arm(method, path)
        for rule in self.rules.values():
            if rule.kind in (FaultKind.LATENCY, FaultKind.COMMIT_THEN_LOSE):
                continue
            if rule.kind is FaultKind.TOKEN_EXPIRY and path in self.public_paths:
                continue
            if rule.every_n is not None and rule.kind in (FaultKind.RATE_LIMIT, FaultKind.CONCURRENCY_LIMIT):
                problem = self._too_many(rule, rule.retry_after_s or 1) if self._fires(rule, method, path) else None
            elif rule.kind is FaultKind.RATE_LIMIT:
                problem = self._rate_limited(rule, method, path)
            elif rule.kind is FaultKind.CONCURRENCY_LIMIT:
                problem = self._over_concurrency(rule, method, path)
            elif not self._fires(rule, method, path):
                continue
            elif rule.kind is FaultKind.OUTAGE:
                problem = Problem(
                    503, "service-unavailable", f"{self.system} is down for maintenance; retry after the Retry-After delay.",
                    headers={"Retry-After": self._retry_after(rule)},
                )
            elif rule.kind is FaultKind.ERROR:
                headers = {"Retry-After": str(rule.retry_after_s)} if rule.retry_after_s is not None else None
                problem = Problem(rule.status, "injected-fault", f"{self.system} failed to process the request (injected fault {rule.id}).", headers=headers)
            else:  # TOKEN_EXPIRY
                rule.fired += 1
                return rule, None
            if problem is not None:
                rule.fired += 1
                return rule, problem
        return None

    def _rate_limited(self, rule: FaultRule, method: str, path: str) -> Problem | None:
        if not self._fires(rule, method, path):
            return None
        now = time.monotonic()  # rate limits are a technical measure: wall time
        start, count = self._rate_windows.get(rule.id, (now, 0))
        if now - start >= rule.per_s:
            start, count = now, 0
        count += 1
        self._rate_windows[rule.id] = (start, count)
        if count <= rule.limit:
            return None
        return self._too_many(rule, rule.retry_after_s if rule.retry_after_s is not None else max(1, math.ceil(start + rule.per_s - now)))

    def _over_concurrency(self, rule: FaultRule, method: str, path: str) -> Problem | None:
        # in_flight already counts this request.
        if self.in_flight <= rule.max_concurrent or not self._fires(rule, method, path):
            return None
        return self._too_many(rule, rule.retry_after_s or 1)

    @staticmethod
    def _too_many(rule: FaultRule, wait: float) -> Problem:
        """The 429 of a rate or concurrency limit (also on the requests a sweep chose with every_n)."""
        if rule.kind is FaultKind.RATE_LIMIT:
            return Problem(429, "rate-limited", f"More than {rule.limit} requests in {rule.per_s:g} s; retry after {wait} s.",
                           title="Too many requests", headers={"Retry-After": str(wait)})
        return Problem(429, "concurrency-limit-exceeded", f"More than {rule.max_concurrent} concurrent requests; wait for one to finish.",
                       title="Too many concurrent requests", headers={"Retry-After": str(wait)})

    def latency_s(self, method: str, path: str) -> float:
        total = 0.0
        for rule in self.rules.values():
            if rule.kind is FaultKind.LATENCY and self._fires(rule, method, path):
                rule.fired += 1
                jitter = self._rngs[rule.id].uniform(0, rule.jitter_ms) if rule.jitter_ms else 0
                total += (rule.latency_ms + jitter) / 1000
        return total

    def lose(self, method: str, path: str) -> FaultRule | None:
        for rule in self.rules.values():
            if rule.kind is FaultKind.COMMIT_THEN_LOSE and self._fires(rule, method, path):
                rule.fired += 1
                return rule
        return None

    def may_lose(self) -> bool:
        return any(r.kind is FaultKind.COMMIT_THEN_LOSE for r in self.rules.values())
