"""A world: master data, the four fakes, the SimPy model and its clock, assembled from a scenario.

- Virtual mode runs the model as fast as the CPU allows, with the in-process stand-in playing
  the integration layer: for traces, expectations and volume studies. It is lean: once a
  return has ended, its expectation is written to the trace (kind ``expected``) and the fakes
  forget its documents, so memory holds only the returns on their way, not the season.
- Live mode serves the fakes over HTTP and steps the model in (scaled) real time from the same
  asyncio loop, delivering every announced fact to a real integration layer as a signed webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import IO

import simpy

from simulators.domain import plain_id
from simulators.delivery import Deliverer, DeliveryOptions, Event, HttpTransport, Outcome, Transports
from simulators.events import EventType
from simulators.faults import FaultPlan, heal_api_faults, install_api_faults
from simulators.model.demand import DAY
from simulators.model.expected import Expectation
from simulators.model.lifecycle import AWAITING, STALL_AFTER_WALL_S, STALL_AT_MOST_WALL_S, TERMINAL, ReturnsModel, ended
from simulators.model.standin import InlineIntegration
from simulators.model.trace import Trace
from simulators.scenario import Scenario
from simulators.seed import MasterData, SeedConfig, generate
from simulators.selfwatch import SelfWatch
from simulators.serving import FakeFleet, create_apps
from simulators.simtime import LiveClock, RealtimeDriver, SimClock

__all__ = ["TERMINAL", "World"]
SETTLE_LIMIT_DAYS = 30  # a settle that has not finished by then reports what is still open
MONITOR_S = 3600.0
TIMELINE_EVERY = 6  # monitor ticks between two samples of returns by stage (for the report's plot)


@contextlib.contextmanager
def _fewer_collections():
    """A virtual run allocates many short-lived documents and frees them by reference counting:
    the cyclic collector's default youngest-generation threshold (700) makes it scan the live heap
    far more often than that needs (about 10% of a run)."""
    before = gc.get_threshold()
    gc.set_threshold(50_000, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)


# When the layer accepted (2xx) a copy it should have refused, the world waits this long (wall)
# before it stops waiting on the layer for that return: a layer that took a forged or malformed
# delivery acts on it within this time, or the oracle does not see the writes it must not make.
REFUSED_GRACE_WALL_S = 3.0


@dataclass(slots=True)
class _Refused:
    """The facts of one return that were only delivered in copies a receiver must refuse."""

    types: set[str] = field(default_factory=set)
    in_flight: int = 0  # of those deliveries, not ended yet
    accepted_at: float | None = None  # monotonic, when the layer last accepted one (it should not)


class World:
    def __init__(self, scenario: Scenario, *, live: bool = False, trace_sink: IO[bytes] | None = None,
                 lean: bool | None = None, keep_expectations: bool | None = None,
                 stall_after_wall_s: float = STALL_AFTER_WALL_S, run_id: str = "") -> None:
        """``lean`` (default: in virtual mode) has the fakes forget an ended return's documents
        and keeps no fault log; ``keep_expectations`` (default: in live mode, for the oracle)
        keeps every expectation in :attr:`expectations` besides tracing it. A live return waits on
        the layer ``stall_after_wall_s`` at least before it is stalled (a test double that
        answers at once can say 0). ``run_id`` namespaces every id the run makes (returns,
        documents, events) and nothing else: the world is the same whatever it is."""
        self.scenario = scenario
        self.lean = not live if lean is None else lean
        self.keep_expectations = live if keep_expectations is None else keep_expectations
        self.env = simpy.Environment()
        self.driver = RealtimeDriver(self.env, scenario.time_scale, scenario.epoch) if live else None
        self.clock = LiveClock(self.driver, scenario.epoch) if live else SimClock(self.env, scenario.epoch, scenario.time_scale)
        self.master: MasterData = generate(SeedConfig(seed=scenario.seed, epoch=scenario.epoch, **scenario.seed_data.model_dump()))
        self.apps = create_apps(self.master, self.clock)
        self.stores = {name: app.state.system.store for name, app in self.apps.items()}
        self.run_id = run_id
        if run_id:
            for store in self.stores.values():
                store.use_run_id(run_id)
        self.trace = Trace(scenario.epoch, trace_sink)
        self.expectations: dict[str, Expectation] = {}
        self.model = ReturnsModel(self.env, scenario, self.stores, self.trace, self._expect, self._finished, lean=self.lean,
                                  stall_after_wall_s=stall_after_wall_s if live else 0.0, layer_quiet_s=self._layer_quiet_s,
                                  hopeless=self.hopeless)
        self.events: Counter[str] = Counter()
        self.deliverer: Deliverer | None = None
        self.stand_in: InlineIntegration | None = None
        self.fault_plan = FaultPlan(scenario, keep_log=not self.lean)
        self.api_faults_fired: dict[str, int] = {}
        self.healed = False
        self._event_ids = itertools.count(1)
        self._facts_seen: dict[str, Counter] = {}  # return id -> facts announced so far, by type
        self._return_of_rma: dict[str, str] = {}
        self.peak_backlog = (0, 0.0)  # (returns waiting for inspection, when)
        self.timeline: list[dict] = []  # returns by stage, sampled over simulated time
        self.stopped: dict | None = None  # why a live run was stopped before it ended (the layer died...)
        self.selfwatch: SelfWatch | None = None  # how late the harness itself ran (live mode)
        self.channel_env: dict[str, str] = {}  # what the layer needs of channels besides webhooks (RH_BROKER_*)
        self.dead_lettered: set[str] | None = None  # message ids in the layer's dead-letter queue after the run
        self.broker = None  # the broker channel of a live run, after it (its names are removed with remove_channels)
        self.batch = None  # the batch channel of a live run, after it (its folder is removed with remove_channels)
        self.batch_records: list[dict] = []  # every record of every file it exported, and where the layer left the file
        self._overtime_until: float | None = None  # past the settle limit, while the layer is still at work
        self._refused: dict[str, _Refused] = {}  # return id -> its facts only ever delivered refusable (live mode)
        for store in (self.stores["returns_portal"], self.stores["carrier"], self.stores["wms"]):
            store.listeners.append(self._announced)

    def _layer_quiet_s(self) -> float:
        """Wall seconds since the layer last called any fake, for any return (inf: never). A layer
        still at work (backing off, or working through a backlog that has not reached this return)
        is not stalling this return yet."""
        return time.monotonic() - max(app.state.system.last_call for app in self.apps.values())

    def hopeless(self, return_id: str, needs: frozenset[str]) -> bool:
        """Whether no layer can give this return what it waits for: one of the facts it ``needs``
        was only ever delivered malformed, forged or stale, and every such delivery has ended
        (refused to the last attempt; or accepted, and REFUSED_GRACE_WALL_S have passed)."""
        refused = self._refused.get(return_id)
        return (refused is not None and not refused.in_flight and not refused.types.isdisjoint(needs)
                and (refused.accepted_at is None or time.monotonic() - refused.accepted_at >= REFUSED_GRACE_WALL_S))

    def _delivery_ended(self, event: Event, options: DeliveryOptions, outcome: Outcome) -> None:
        refused = self._refused.get(event.correlation_id)
        if refused is not None and options.refused:
            refused.in_flight -= 1
            if outcome is Outcome.DELIVERED:
                refused.accepted_at = time.monotonic()

    def _expect(self, expectation: Expectation) -> None:
        if self.keep_expectations:
            self.expectations[expectation.return_id] = expectation

    def _finished(self, exp: Expectation, receipt_id: str | None) -> None:
        """A return has ended: its expectation goes to the trace; a lean world forgets it."""
        self.trace.emit(self.env.now, "expected", **vars(exp))
        self._facts_seen.pop(exp.return_id, None)
        self._refused.pop(exp.return_id, None)
        if not self.lean:
            return
        portal = self.stores["returns_portal"]
        ret = portal.returns.get(exp.return_id)
        if ret is None:
            return
        code = ret.label.tracking_code if ret.label else None
        if code is not None:
            self.stores["carrier"].forget(code)
        self.stores["wms"].forget(ret.rma_id, code, [receipt_id] if receipt_id else ())
        if ret.rma_id is not None:
            self._return_of_rma.pop(ret.rma_id, None)
        if self.stand_in is not None:
            self.stand_in.forget(exp.return_id)
        portal.forget(exp.return_id)

    def flush_expectations(self, *, settled: bool = False) -> None:
        """Trace the expectations of returns still on their way (a run cut short by its limit).
        ``settled``: the settle phase ran out, so a return still waiting on the layer is stalled
        there (a layer still retrying when it ends had its chance; a stopped run is not settled)."""
        for exp in self.model.open_expectations():
            if settled and exp.outcome in AWAITING and exp.return_id in self.model.awaiting_layer:
                exp.outcome = AWAITING[exp.outcome]
            self.trace.emit(self.env.now, "expected", **vars(exp))

    def _announced(self, event_type: str, data: dict) -> None:
        """A fact for the integration layer: traced, and in live mode delivered as a webhook."""
        self.events[event_type] += 1
        correlation_id = self._correlation(event_type, data)
        event_id = self._event_id()
        self.trace.emit(self.env.now, "event", type=event_type, id=event_id, correlation_id=correlation_id)
        fact = None if self.fault_plan.idle else self._fact_name(event_type, data, correlation_id)
        deliveries = self.fault_plan.deliveries(event_id, event_type, correlation_id, fact)
        for kind in self.fault_plan.last:
            self.trace.emit(self.env.now, "fault", fault=kind, event_id=event_id, correlation_id=correlation_id)
        if self.deliverer is None:
            return
        if deliveries and all(options.refused for _, options in deliveries):
            refused = self._refused.setdefault(correlation_id, _Refused())
            refused.types.add(event_type)
            refused.in_flight += len(deliveries)
        for label, options in deliveries:
            delivered_id = self._event_id() if label == "semantic" else event_id
            self.deliverer.submit(Event(id=delivered_id, type=event_type, occurred_at=self.clock.now(),
                                        correlation_id=correlation_id, data=data), options)

    def _event_id(self) -> str:
        return f"evt_{self.run_id + '_' if self.run_id else ''}{next(self._event_ids):06d}"

    def _fact_name(self, event_type: str, data: dict, correlation_id: str) -> str:
        """The fact's name for the fault plan: its return, type and place among that return's facts
        of the type (not its event id or time, which follow the integration layer's pace)."""
        kind = f"{event_type}|{data.get('status', '')}"
        seen = self._facts_seen.setdefault(correlation_id, Counter())
        seen[kind] += 1
        return f"{plain_id(correlation_id, self.run_id)}|{kind}|{seen[kind]}"

    def _correlation(self, event_type: str, data: dict) -> str:
        """The portal return a fact belongs to, found through its RMA (or its parcel's)."""
        if event_type.startswith("return."):
            return data["id"]
        rma_id = data.get("rma_id")
        if rma_id is None and data.get("tracking_code"):
            tracker = self.stores["carrier"].trackers.get(data["tracking_code"])
            rma_id = tracker and tracker.rma_id
        if rma_id is None:
            return "unknown"
        if rma_id not in self._return_of_rma:
            rma = self.stores["erp"].rmas.get(rma_id)
            owner = rma.external_reference if rma and rma.external_reference else None
            # An integration layer that left the ERP no reference: ask the portal (slower).
            owner = owner or next((r.id for r in self.stores["returns_portal"].returns.values() if r.rma_id == rma_id), None)
            if owner is None:
                return rma_id
            self._return_of_rma[rma_id] = owner
        return self._return_of_rma[rma_id]

    def _monitor(self):
        for tick in itertools.count():
            backlog = sum(len(r.queue) + r.count for r in self.model.inspecting.values())
            if backlog > self.peak_backlog[0]:
                self.peak_backlog = (backlog, self.env.now)
            if tick % TIMELINE_EVERY == 0:
                self.timeline.append({"day": round(self.env.now / DAY, 3), "stages": {k: v for k, v in self.model.stages.items() if v}})
            yield self.env.timeout(MONITOR_S)

    @property
    def open_returns(self) -> int:
        return sum(n for stage, n in self.model.stages.items() if not ended(stage))

    def run_virtual(self, progress: Callable[[World], None] | None = None, *, stand_in: bool = True, slice_s: float = 6 * 3600) -> None:
        """Run the season, then settle until every return ended (or the settle limit passed).

        Without the stand-in nobody plays the integration layer: every return stalls where it
        waits for one, which is what the model promises.
        """
        if stand_in:
            self.stand_in = InlineIntegration(self.stores, self.clock)
        self.model.start()
        self.env.process(self._monitor())
        limit = self.scenario.volumes.days * DAY + SETTLE_LIMIT_DAYS * DAY
        with _fewer_collections():
            while self.env.now < limit:
                self.env.run(until=min(limit, self.env.now + slice_s))
                if progress:
                    progress(self)
                if self.model.demand_done and self.open_returns == 0:
                    break
        self.flush_expectations()

    async def run_live(
        self,
        *,
        webhook_url: str | Callable[[str], str],
        secret: str,
        host: str = "127.0.0.1",
        base_port: int = 0,
        on_started: Callable[[FakeFleet], Awaitable[None]] | None = None,
        progress: Callable[[World], None] | None = None,
        watch: Callable[[World], str | None] | None = None,
        watch_self: bool = True,
        settle_limit_days: float = SETTLE_LIMIT_DAYS,
        slice_s: float = 3600.0,
    ) -> None:
        """Serve the fakes, run the season in scaled real time, deliver every fact, then settle:
        until every return ended and every delivery was answered or given up (or the limit).

        ``watch`` is asked after every slice whether the integration layer is still there; a
        reason (it died, it stopped answering) stops the run at once, kept in :attr:`stopped`.
        ``watch_self`` measures the harness's own lateness (:mod:`simulators.selfwatch`)."""
        if self.driver is None:
            raise RuntimeError("this world was built for virtual mode: World(scenario, live=True)")
        channels = await self._open_channels()
        fleet = FakeFleet(master=self.master, clock=self.clock, apps=self.apps, host=host, base_port=base_port)
        try:
            await fleet.start()
        except BaseException:
            for channel in channels.values():
                await channel.close()
            raise
        self.fleet = fleet
        http = HttpTransport()
        broker, batch = channels.get("broker"), channels.get("batch")
        transport = Transports({"http": http, "https": http, **({"amqp": broker, "amqps": broker} if broker else {}),
                                **({"sftp": batch} if batch else {})})
        webhook_for = webhook_url if callable(webhook_url) else (lambda _type, url=webhook_url: url)
        carrier_of = self.scenario.channels.carrier_of

        def url_for(event_type: str) -> str:
            channel = channels.get(carrier_of(event_type))
            return channel.url_for(event_type) if channel is not None else webhook_for(event_type)

        self.deliverer = Deliverer(self.driver, transport, url_for=url_for, secret=secret,
                                   schedule=self.scenario.delivery.schedule, timeout_s=self.scenario.delivery.timeout_s)
        self.deliverer.on_ended.append(self._delivery_ended)
        self.selfwatch = SelfWatch() if watch_self else None
        if self.selfwatch:
            self.driver.on_late = self.selfwatch.late
        try:
            if on_started is not None:
                await on_started(fleet)
            if self.selfwatch:
                self.selfwatch.start()
            install_api_faults(self.scenario, self.apps)
            self.model.start()
            self.env.process(self._monitor())
            limit = self.scenario.volumes.days * DAY + settle_limit_days * DAY
            while self._settling(limit):
                await self.driver.run(until=min(limit, self.env.now + slice_s) if self.env.now < limit else self.env.now + slice_s)
                if progress:
                    progress(self)
                if watch is not None and (reason := watch(self)) is not None:
                    self.stopped = {"reason": reason, "at": self.clock.now().isoformat(), "day": round(self.env.now / DAY, 3)}
                    break
                if not self.healed and self.model.demand_done and self.scenario.faults.api_until == "requests-end":
                    # The settle phase: faults heal, so "lost" and "not yet done" can be told apart.
                    self.api_faults_fired = heal_api_faults(self.apps)
                    self.healed = True
                if self.model.demand_done and self.open_returns == 0 and self.deliverer.pending == 0:
                    break
            if not self.healed:  # faults lasted the run (api_until: run-end): count what they did
                self.api_faults_fired = heal_api_faults(self.apps)
                self.healed = True
            self.flush_expectations(settled=self.stopped is None)
        finally:
            if self.selfwatch:
                await self.selfwatch.stop()
            if broker is not None:
                self.dead_lettered = await broker.dead_letters()
                await broker.close()
                self.broker = broker  # its names outlive the loop: remove them once the layer stops
            if batch is not None:
                self.batch_records = batch.record_rows()  # where the layer left each file, before the server goes
                await batch.close()
                self.batch = batch  # its folder outlives the loop: removed once the layer stops
            await fleet.stop()
            await transport.aclose()

    async def _open_channels(self) -> dict:
        """The run's channels besides webhooks, open, their env for the layer in :attr:`channel_env`.
        Each is imported only when used: the embedded default needs no broker or SSH library."""
        settings, channels = self.scenario.channels, {}
        try:
            if settings.broker is not None:
                from simulators.channels.broker import BrokerChannel

                channels["broker"] = BrokerChannel(settings.broker, self.run_id)
                await channels["broker"].open()
            if settings.batch is not None:
                from simulators.channels.batch import BatchChannel

                channels["batch"] = BatchChannel(settings.batch, self.run_id, seed=self.scenario.seed, epoch=self.scenario.epoch,
                                                 now_sim=lambda: self.env.now, on_fault=self.fault_plan.record)
                await channels["batch"].open()
        except BaseException:
            for channel in channels.values():
                await channel.close()
            raise
        for channel in channels.values():
            self.channel_env |= channel.env()
        return channels

    def _settling(self, limit: float) -> bool:
        """Go on until the settle limit; past it, only while the layer is still at work on open
        returns, for STALL_AT_MOST_WALL_S at most (its time is not compressed: a slow layer finishing
        a backlog is not a stalled one)."""
        if self.env.now < limit:
            return True
        if self._overtime_until is None:
            self._overtime_until = time.monotonic() + STALL_AT_MOST_WALL_S
        return bool(self.open_returns) and self._layer_quiet_s() < STALL_AFTER_WALL_S and time.monotonic() < self._overtime_until

    def summary(self) -> dict:
        return {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "simulated_days": round(self.env.now / DAY, 2),
            "returns": self.model.requested,
            "by_outcome": dict(sorted((k, v) for k, v in self.model.stages.items() if v)),
            **({"misrouted": self.model.misrouted} if self.model.misrouted else {}),
            **({"cancelled_early": self.model.cancelled_early} if self.model.cancelled_early else {}),
            **({"partial_receipts": self.model.partial} if self.model.partial else {}),
            "events": dict(sorted(self.events.items())),
            "peak_inspection_backlog": {"returns": self.peak_backlog[0], "at_day": round(self.peak_backlog[1] / DAY, 2)},
            "faults_injected": dict(sorted(self.fault_plan.injected.items())),
            **({"api_faults_fired": self.api_faults_fired} if self.api_faults_fired else {}),
            **({"deliveries": self.deliverer.stats()} if self.deliverer else {}),
            **({"stopped": self.stopped} if self.stopped else {}),
            **({"harness": self.selfwatch.summary()} if self.selfwatch else {}),
            # Facts that travel without a signature (by the broker): signature faults cannot reach them.
            **({"unsigned_events": sorted(self.fault_plan.unsigned)} if self.fault_plan.unsigned else {}),
            **({"channels": sorted({"webhook", *(self.scenario.channels.carrier_of(t.value) for t in EventType)})}
               if self.scenario.channels.broker or self.scenario.channels.batch else {}),
            **({"batch_events": sorted(self.fault_plan.filed)} if self.fault_plan.filed else {}),
        }

    def remove_channels(self, *, layer_stopped: bool) -> None:
        """Remove what the run declared on a broker (and, once the layer has stopped, its queues),
        and the batch channel's folder."""
        if self.broker is not None:
            asyncio.run(self.broker.remove(queues=layer_stopped))
        if self.batch is not None:  # its server is closed: nobody can reach the folder any more
            self.batch.remove()

    def dead_letter_rows(self) -> list[dict]:
        """Each malformed message the broker accepted for the layer, and whether the layer's
        dead-letter queue held it after the run (none of it when there is no broker channel)."""
        if self.deliverer is None or self.scenario.channels.broker is None:
            return []
        seen: dict[str, dict] = {}
        for a in self.deliverer.journal:
            if a.fault == "malformed" and a.status is not None and a.url.startswith("amqp") and a.event_id not in seen:
                seen[a.event_id] = {"event_id": a.event_id, "correlation_id": a.correlation_id, "event_type": a.event_type,
                                    "dead_lettered": a.event_id in (self.dead_lettered or ()),
                                    "queue_found": self.dead_lettered is not None}
        return list(seen.values())
