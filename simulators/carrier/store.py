"""The carrier's state: labels and the tracker behind each one."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt

from simulators.domain import TrackingStatus
from simulators.fakekit.announcer import FakeStore
from simulators.fakekit.pipeline import CallContext
from simulators.fakekit.problems import invalid, not_found
from simulators.seed import Address


class Parcel(BaseModel):
    weight_g: StrictInt = Field(gt=0, le=70_000, description="Weight in grams, a JSON integer (carriers cap parcels near 70 kg)")


class LabelRequest(BaseModel):
    rma_id: str = Field(pattern=r"^RMA-([0-9a-z]{1,8}-)?\d+$", description="The ERP return authorization the parcel belongs to")
    from_address: Address = Field(description="The customer's address: where the parcel is picked up")
    to_site_id: str = Field(description="Warehouse the parcel goes back to, e.g. WH-EAST")
    parcel: Parcel
    service: Literal["ground", "express"] = "ground"
    is_return: bool = Field(True, description="Return labels are pay-on-scan: billed only when used")


class Scan(BaseModel):
    status: TrackingStatus
    message: str
    location: str | None
    occurred_at: datetime


class Label(BaseModel):
    id: str = Field(examples=["LBL-000001"])
    rma_id: str
    tracking_code: str
    carrier: str
    service: str
    label_url: str
    from_address: Address
    to_site_id: str
    weight_g: int
    created_at: datetime
    correlation_id: str | None


class Tracker(BaseModel):
    tracking_code: str
    carrier: str
    label_id: str
    rma_id: str
    status: TrackingStatus
    scans: list[Scan]
    created_at: datetime
    updated_at: datetime


class CarrierStore(FakeStore):

    def reset(self) -> None:
        self._rng = random.Random(f"carrier:{self.master.config.seed}" + (f":{self.run_id}" if self.run_id else ""))
        self._ids = self.ids("LBL")
        self.labels: dict[str, Label] = {}
        self.trackers: dict[str, Tracker] = {}

    def _tracking_code(self) -> str:
        # UPS-style: 1Z + shipper + 10 digits; deterministic from the seed.
        return f"1ZRH{self._rng.randrange(10**13):013d}"

    def create_label(self, req: LabelRequest, ctx: CallContext) -> Label:
        if req.to_site_id not in self.master.sites:
            raise invalid("to_site_id", f"unknown site {req.to_site_id!r}; expected one of {sorted(self.master.sites)}")
        now = self.clock.now()
        label_id = self._ids.next()
        code = self._tracking_code()
        label = Label(
            id=label_id,
            rma_id=req.rma_id,
            tracking_code=code,
            carrier="UPS",
            service=req.service,
            label_url=f"https://labels.carrier.example/{label_id}.pdf",
            from_address=req.from_address,
            to_site_id=req.to_site_id,
            weight_g=req.parcel.weight_g,
            created_at=now,
            correlation_id=ctx.correlation_id,
        )
        self.labels[label_id] = label
        self.trackers[code] = Tracker(
            tracking_code=code, carrier=label.carrier, label_id=label_id, rma_id=req.rma_id,
            status=TrackingStatus.PRE_TRANSIT,
            scans=[Scan(status=TrackingStatus.PRE_TRANSIT, message="Label created", location=None, occurred_at=now)],
            created_at=now, updated_at=now,
        )
        return label

    def label(self, label_id: str) -> Label:
        try:
            return self.labels[label_id]
        except KeyError:
            raise not_found("label", label_id) from None

    def find_labels(self, rma_id: str | None) -> list[Label]:
        return [l for l in self.labels.values() if rma_id is None or l.rma_id == rma_id]

    def tracker(self, tracking_code: str) -> Tracker:
        try:
            return self.trackers[tracking_code]
        except KeyError:
            raise not_found("tracker", tracking_code) from None

    def add_scan(self, tracking_code: str, status: TrackingStatus, message: str, location: str | None, at: datetime | None = None) -> Tracker:
        """A scan in the carrier's network (driven by the model, not by the integration layer)."""
        tracker = self.tracker(tracking_code)
        at = at or self.clock.now()
        previous = tracker.status
        scan = Scan(status=status, message=message, location=location, occurred_at=at)
        tracker.scans.append(scan)
        tracker.status = status
        tracker.updated_at = at
        self.announce(
            "tracking.updated", scan,
            tracking_code=tracking_code, carrier=tracker.carrier, rma_id=tracker.rma_id, previous_status=previous.value,
        )
        return tracker

    def forget(self, tracking_code: str) -> None:
        """Drop a finished parcel's tracker and label (virtual mode, once the model traced it)."""
        tracker = self.trackers.pop(tracking_code, None)
        if tracker is not None:
            self.labels.pop(tracker.label_id, None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "labels": [l.model_dump(mode="json") for l in self.labels.values()],
            "trackers": [t.model_dump(mode="json") for t in self.trackers.values()],
        }
