"""Scenario files: what a run simulates (volumes, behaviour, capacity, faults, SLAs) and its seed.

A scenario is YAML validated by these models. Every default is a published industry figure
or a stated assumption (docs/MODEL.md names the sources); a bad file stops at once with the
file, the field and what was expected.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.domain import Category, Condition, Disposition, Resolution
from simulators.fakekit.hooks import FaultRuleSpec
from simulators.seed import DEFAULT_EPOCH

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"  # package data: works from a wheel too

Rate = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
Weight = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class _Section(BaseModel):
    # A misspelt key must not be ignored: it would silently run another scenario than written.
    model_config = ConfigDict(extra="forbid")


class Volumes(_Section):
    days: Positive = Field(7, description="Simulated days of return requests")
    returns_per_day: Positive = Field(200, description="Average requests a day at profile level 1.0")
    profile: Literal["steady", "post-holiday-peak", "promotion-spike", "recall"] = "steady"
    max_returns: Annotated[int, Field(ge=1)] | None = Field(None, description="Stop requesting after this many")


def _shares(values: dict, what: str) -> dict:
    total = sum(values.values())
    if values and abs(total - 1) > 1e-6:
        raise ValueError(f"{what} shares must add up to 1, got {total:g}")
    return values


class CustomerBehaviour(_Section):
    resolution_mix: dict[Resolution, Rate] = Field(
        default={Resolution.REFUND: 0.63, Resolution.EXCHANGE: 0.27, Resolution.STORE_CREDIT: 0.10},
        description="What customers ask for (Narvar 2022: about 63% a refund)",
    )
    cancel_rate: Rate = Field(0.03, description="Cancel in the portal before shipping")
    cancel_requested_rate: Rate = Field(0.0, description="Cancel in the portal right after requesting, before the layer can approve "
                                                         "(the return must stay cancelled)")
    never_ship_rate: Rate = Field(0.04, description="Get a label and never ship")
    ship_delay_days_median: Positive = Field(3.0, description="Label to drop-off (Returnly: about a week from initiation to mailing)")
    ship_delay_sigma: Positive = Field(0.6, description="Lognormal sigma of the drop-off delay")
    late_request_rate: Rate = Field(0.05, description="Requests made after the policy window (must be rejected)")
    request_age_mode_days: Positive = Field(20, description="Most common age of the order at the return request (order-to-return age peaks near 20 days)")

    @model_validator(mode="after")
    def _mix(self) -> CustomerBehaviour:
        _shares(self.resolution_mix, "resolution_mix")
        return self


class CarrierModel(_Section):
    transit_days_median: Positive = Field(2.5, description="Pickup to delivery (carriers: 1-5 business days)")
    transit_sigma: Positive = Field(0.45, description="Lognormal sigma of transit")
    exception_rate: Rate = Field(0.02, description="Parcels with an exception scan (delay, then delivered)")
    return_to_sender_rate: Rate = Field(0.005, description="Parcels that never reach the warehouse")
    misroute_rate: Rate = Field(0.0, description="Parcels delivered to another site than their label's (a carrier's reroute, a "
                                                 "consolidation hub): received there blind, inspected and restocked there")


class WarehouseModel(_Section):
    receiving_capacity: Annotated[int, Field(ge=1)] = Field(4, description="Parallel receiving stations per site")
    inspection_capacity: Annotated[int, Field(ge=1)] = Field(3, description="Parallel inspectors per site")
    shift_start_hour: Annotated[int, Field(ge=0, le=23)] = 6
    shift_end_hour: Annotated[int, Field(ge=1, le=24)] = 22
    receive_minutes: Positive = Field(4, description="Mean minutes to receive one parcel")
    inspect_minutes: Positive = Field(12, description="Mean minutes to inspect one return")
    partial_receipt_rate: Rate = Field(0.03, description="Parcels with fewer units than announced")
    split_disposition_rate: Rate = Field(0.05, description="Lines whose units get different dispositions")
    condition_mix: dict[Condition, Rate] = Field(
        default={Condition.NEW: 0.55, Condition.OPENED: 0.30, Condition.DAMAGED: 0.07, Condition.DEFECTIVE: 0.08},
        description="Condition found at inspection (assumption; reasons shift it, see docs/MODEL.md)",
    )
    disposition_by_condition: dict[Condition, dict[Disposition, Rate]] = Field(
        default={
            Condition.NEW: {Disposition.RESTOCK: 0.9, Disposition.RETURN_TO_VENDOR: 0.1},
            Condition.OPENED: {Disposition.RESTOCK: 0.55, Disposition.REFURBISH: 0.3, Disposition.RETURN_TO_VENDOR: 0.15},
            Condition.DAMAGED: {Disposition.SCRAP: 0.3, Disposition.REFURBISH: 0.55, Disposition.RETURN_TO_VENDOR: 0.15},
            Condition.DEFECTIVE: {Disposition.RETURN_TO_VENDOR: 0.85, Disposition.QUARANTINE: 0.15},
        },
        description="Disposition by condition (shaped to Optoro's ~50% restock, ~25% return to vendor)",
    )
    disposition_by_category: dict[Category, dict[Disposition, Weight]] = Field(
        default={
            Category.APPAREL: {Disposition.RESTOCK: 1.3, Disposition.RETURN_TO_VENDOR: 0.6, Disposition.REFURBISH: 0.8},
            Category.ELECTRONICS: {Disposition.RESTOCK: 0.6, Disposition.REFURBISH: 2.0, Disposition.RETURN_TO_VENDOR: 1.5},
            Category.HOME: {Disposition.REFURBISH: 1.2},
            Category.BEAUTY: {Disposition.RESTOCK: 0.7, Disposition.SCRAP: 3.0},
        },
        description="Per item category, weights that multiply the shares of disposition_by_condition, then renormalised "
                    "(1 = unchanged; a disposition or category left out keeps weight 1)",
    )

    @model_validator(mode="after")
    def _mixes(self) -> WarehouseModel:
        if self.shift_end_hour <= self.shift_start_hour:
            raise ValueError("shift_end_hour must be after shift_start_hour")
        _shares(self.condition_mix, "condition_mix")
        for condition, mix in self.disposition_by_condition.items():
            _shares(mix, f"disposition_by_condition.{condition.value}")
        missing = [c.value for c in Condition if c not in self.disposition_by_condition]
        if missing:
            # Reasons force defective and damaged grades, so every condition needs a mix.
            raise ValueError(f"disposition_by_condition needs a mix for every condition; missing: {', '.join(missing)}")
        for category, weights in self.disposition_by_category.items():
            for condition, mix in self.disposition_by_condition.items():
                if not any(share * weights.get(d, 1.0) > 0 for d, share in mix.items()):
                    raise ValueError(
                        f"disposition_by_category.{category.value}: its weights leave condition {condition.value!r} no disposition "
                        f"(each of {', '.join(d.value for d in mix)} is weighted 0)"
                    )
        return self

    def disposition_mix(self, category: Category, condition: Condition) -> dict[Disposition, float]:
        """Shares of each disposition for units of this category found in this condition."""
        weights = self.disposition_by_category.get(category, {})
        weighted = {d: share * weights.get(d, 1.0) for d, share in self.disposition_by_condition[condition].items()}
        total = sum(weighted.values())
        return {d: w / total for d, w in weighted.items() if w > 0}


EventTypeName = Literal["return.created", "return.cancelled", "tracking.updated", "receipt.completed", "inspection.completed"]


class EventFaults(_Section):
    """What goes wrong with the events delivered to the integration layer."""

    duplicate_rate: Rate = Field(0.0, description="Deliveries sent again with the same event id")
    semantic_duplicate_rate: Rate = Field(0.0, description="The same fact sent again under a new event id")
    reorder_rate: Rate = Field(0.0, description="Events held back so a later one overtakes them")
    reorder_window_s: Positive = Field(3600, description="How long a reordered event is held (simulated s)")
    delay_rate: Rate = Field(0.0, description="Events delivered late")
    delay_s: Positive = Field(1800, description="Mean extra delay of a delayed event (simulated s)")
    missing_scan_rate: Rate = Field(0.0, description="Carrier scans never sent")
    malformed_rate: Rate = Field(0.0, description="Deliveries with a broken payload")
    forged_rate: Rate = Field(0.0, description="Deliveries signed with a wrong secret")
    clock_skew_rate: Rate = Field(0.0, description="Deliveries whose signature timestamp is 10 minutes off")
    rotation_rate: Rate = Field(0.0, description="Deliveries signed with the old and the new secret (a rotation: must be accepted)")
    by_event_type: dict[EventTypeName, EventFaults] = Field(
        default={},
        description="Faults for one event type instead of the ones above (its rates replace them all; unlisted ones are 0), "
                    "e.g. inspection.completed: {duplicate_rate: 1}",
    )

    @model_validator(mode="after")
    def _flat(self) -> EventFaults:
        for event_type, faults in self.by_event_type.items():
            if faults.by_event_type:
                raise ValueError(f"by_event_type.{event_type}: cannot have its own by_event_type")
        return self


class ApiFault(FaultRuleSpec):
    system: Literal["erp", "wms", "carrier", "returns_portal"]


class Sweep(_Section):
    """Every API fault kind at every write (and the token request, and the reads), by construction."""

    every_n: Annotated[int, Field(ge=7)] = Field(
        42, description="After the first round (each kind once in a step's first 7 calls), each kind again every N calls "
                        "of that path, so the faults reach every part of the season")
    retry_after_s: Annotated[int, Field(ge=0, le=60)] = Field(1, description="Retry-After of the sweep's 503s and 429s (wall s)")
    latency_ms: Annotated[int, Field(ge=0, le=60_000)] = Field(300, description="How much the sweep's slow answers are slowed")


class Kills(_Section):
    """The kill nemesis: the layer is killed (SIGKILL) at seeded moments and started again."""

    count: Annotated[int, Field(ge=1, le=100)] = Field(3, description="Kills in the season, at seeded moments of its request window")
    down_s: Annotated[float, Field(ge=0, le=60)] = Field(1.0, description="Wall seconds the layer stays down before it is started again")
    up_s: Annotated[float, Field(ge=0, le=600)] = Field(
        5.0, description="Wall seconds the layer runs, at least, between being up again and the next kill (a kill due sooner waits): "
                         "time to take its redeliveries, so kills do not pile into one long outage")
    aim: Literal["return.created", "return.cancelled", "tracking.updated", "receipt.completed", "inspection.completed"] | None = Field(
        "inspection.completed",
        description="The last kill waits, from its seeded moment, for the layer to acknowledge a delivery of this event type, "
                    "and strikes at once: the window in which a layer that answers before it stores has not stored the fact "
                    "(null: every kill at its seeded moment)")


class Faults(_Section):
    events: EventFaults = EventFaults()
    api: list[ApiFault] = Field(default=[], description="Fault rules installed on the fakes for the run")
    sweep: Sweep | None = Field(
        None, description="Add, on top of `api`, one rule per fault kind and write path firing on every Nth call: every "
                          "(write, fault) pair then happens in every run, not by luck")
    kills: Kills | None = Field(
        None, description="Kill the layer and start it again, as a deploy or a crash does: what it acknowledged must "
                          "survive (the embedded reference out of the box; a layer at --sut-url with --sut-start/--sut-stop)")
    api_until: Literal["requests-end", "run-end"] = Field(
        "requests-end", description="When the API faults heal: when the request window ends (the settle phase is fault-free), "
                                    "or at the end of the run, so the late writes (credit memos, adjustments, claims) meet them too")


class Slas(_Section):
    request_to_rma_hours_p95: Positive = Field(4, description="95% of return requests get an RMA within (business hours)")
    inspection_to_credit_hours_p95: Positive = Field(24, description="95% of refunds follow inspection within")
    request_to_closed_days_p95: Positive = Field(21, description="95% of returns closed within (a week to mail, transit, inspection: DOMAIN-FACTS)")
    ack_latency_ms_p99: Positive = Field(500, description="99% of webhook deliveries acknowledged within (wall ms)")


class DeliverySettings(_Section):
    schedule: Literal["standard-webhooks", "shopify", "stripe"] = "standard-webhooks"
    timeout_s: Positive = Field(5, description="An answer slower than this counts as none and is retried")


EventTypeLiteral = Literal["return.created", "return.cancelled", "tracking.updated", "receipt.completed", "inspection.completed"]


class BrokerChannel(_Section):
    """Facts published to a message broker (RabbitMQ, AMQP 0-9-1) instead of sent as webhooks;
    docs/CONTRACT.md, "Message broker", fixes the exchange, queues, routing keys and properties."""

    events: Annotated[list[EventTypeLiteral], Field(min_length=1)] = Field(
        ["receipt.completed", "inspection.completed"],
        description="Event types the WMS publishes to the broker (the others stay webhooks)")
    url: str = Field("amqp://127.0.0.1:5672/", description="The broker, without credentials (amqp://host:port/vhost); "
                     "the user and password come from RH_BROKER_USER and RH_BROKER_PASSWORD (default guest)")
    exchange: str = Field("wms.events", description="The topic exchange the WMS publishes to (the run id is appended)")
    queue: str = Field("returns-layer", description="The layer's queue, and the stem of its dead-letter names (run id appended)")

    @model_validator(mode="after")
    def _no_credentials(self) -> BrokerChannel:
        if "@" in self.url.partition("://")[2].partition("/")[0]:
            raise ValueError("url: give the broker without user and password (set RH_BROKER_USER and RH_BROKER_PASSWORD)")
        if not self.url.startswith(("amqp://", "amqps://")):
            raise ValueError(f"url: expected amqp://host:port/vhost or amqps://..., got {self.url!r}")
        return self


class BatchChannel(_Section):
    """Facts exported as flat files (CSV, a header and a trailer record count) to the harness's own
    SFTP server, as older WMSs do; docs/CONTRACT.md, "Batch files", fixes the layout and folders."""

    events: Annotated[list[EventTypeLiteral], Field(min_length=1)] = Field(
        ["receipt.completed", "inspection.completed"],
        description="Event types the WMS exports in its files (the others stay webhooks)")
    every_hours: Annotated[float, Field(gt=0, le=168)] = Field(24, description="Hours between two exports (business time)")
    at_hour: Annotated[float, Field(ge=0, lt=24)] = Field(2, description="The hour of the day of the first export (02:00: nightly)")
    truncated_rate: Rate = Field(0, description="Files cut short as they are written (no trailer): the layer must refuse "
                                                "them whole; their records come again in the next export")
    duplicate_file_rate: Rate = Field(0, description="Files exported twice, under two names, with the same records")


class Channels(_Section):
    """How facts reach the layer besides webhooks (the embedded default: webhooks only)."""

    broker: BrokerChannel | None = Field(None, description="Publish some WMS facts to a message broker")
    batch: BatchChannel | None = Field(None, description="Export some WMS facts as files on an SFTP server")

    @model_validator(mode="after")
    def _one_channel_a_fact(self) -> Channels:
        both = sorted(set(self.broker.events) & set(self.batch.events)) if self.broker and self.batch else []
        if both:
            raise ValueError(f"batch.events: {', '.join(both)} already go by the broker (broker.events); "
                             "each event type travels by one channel")
        return self

    def carrier_of(self, event_type: str) -> str:
        """The channel a fact of ``event_type`` travels by: ``broker``, ``batch`` or ``webhook``."""
        if self.broker is not None and event_type in self.broker.events:
            return "broker"
        return "batch" if self.batch is not None and event_type in self.batch.events else "webhook"


class SeedData(_Section):
    customers: Annotated[int, Field(ge=1)] = 200
    items: Annotated[int, Field(ge=1)] = 120
    orders: Annotated[int, Field(ge=1)] = 1500
    sites: Annotated[int, Field(ge=1, le=6)] = 3
    on_hold_share: Rate = Field(0.03, description="Customers on credit or fraud hold (their returns must be rejected)")


class Scenario(_Section):
    name: str
    description: str = ""
    seed: Annotated[int, Field(ge=0)] = 0
    epoch: datetime = DEFAULT_EPOCH
    time_scale: Positive = Field(3600, description="Simulated seconds per wall second in live mode")
    seed_data: SeedData = SeedData()
    volumes: Volumes = Volumes()
    customer: CustomerBehaviour = CustomerBehaviour()
    carrier: CarrierModel = CarrierModel()
    warehouse: WarehouseModel = WarehouseModel()
    faults: Faults = Faults()
    slas: Slas = Slas()
    delivery: DeliverySettings = DeliverySettings()
    channels: Channels = Channels()


class ScenarioError(ValueError):
    """A scenario that cannot be run, with where and why, ready to show a person."""


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _known_keys(loc: tuple) -> list[str]:
    """The settings allowed where ``loc`` points (a misspelt key is reported with them)."""
    model: type[BaseModel] = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = [field.annotation, *get_args(field.annotation)] if field else []
        model = next((t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def _message(err: dict) -> str:
    if err["type"] != "extra_forbidden":
        return err["msg"]
    known = _known_keys(err["loc"])
    close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown setting{hint}; expected one of: {', '.join(known)}"


def parse(text: str, source: str) -> Scenario:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{source}: {len(exc.errors())} problem(s):"]
        lines += [f"  {_where(err['loc'])}: {_message(err)}" for err in exc.errors()]
        raise ScenarioError("\n".join(lines)) from None


def shipped() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name (``baseline``), or a YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ScenarioError(f"no scenario named {name_or_path!r}; shipped: {', '.join(shipped())}, or give a path to a .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start}): a scenario is a YAML file") from None
    return parse(text, str(path))
