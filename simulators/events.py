"""The events the world sends to the integration layer: types, envelope and payload schemas.

Delivery (signing, retries, faults) is the world's job; this module fixes what is delivered, so
docs/CONTRACT.md, the world and any integration layer agree on one shape.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from simulators.domain import TrackingStatus
from simulators.returns_portal.store import PortalReturn
from simulators.wms.store import Inspection, Receipt


class EventType(StrEnum):
    RETURN_CREATED = "return.created"  # returns portal: a customer requested a return
    RETURN_CANCELLED = "return.cancelled"  # returns portal: the customer cancelled it
    TRACKING_UPDATED = "tracking.updated"  # carrier: a scan of the return parcel
    RECEIPT_COMPLETED = "receipt.completed"  # WMS: the parcel was received at the dock
    INSPECTION_COMPLETED = "inspection.completed"  # WMS: units graded and given a disposition


class Envelope(BaseModel):
    """Every event, whatever its type. ``id`` is stable across redeliveries: dedupe on it."""

    id: str = Field(description="Event id, the same on every redelivery of this event", examples=["evt_000001"])
    type: EventType
    occurred_at: datetime = Field(description="When the fact happened, in business time")
    correlation_id: str = Field(description="The return's correlation id (the portal return id)", examples=["RET-000001"])
    data: dict[str, Any]


class ReturnCancelled(PortalReturn):
    """The whole return as the portal holds it once cancelled, and who cancelled it when."""

    return_id: str = Field(description="The return's id again (= id), for receivers keyed on it")
    cancelled_at: datetime
    cancelled_by: Literal["customer", "integration"]


class TrackingUpdated(BaseModel):
    """After EasyPost's tracker events: the new status, and the one before it."""

    tracking_code: str
    carrier: str
    rma_id: str
    status: TrackingStatus
    previous_status: TrackingStatus | None
    message: str
    location: str | None
    occurred_at: datetime


# What ``data`` holds, by event type.
PAYLOADS: dict[EventType, type[BaseModel]] = {
    EventType.RETURN_CREATED: PortalReturn,
    EventType.RETURN_CANCELLED: ReturnCancelled,
    EventType.TRACKING_UPDATED: TrackingUpdated,
    EventType.RECEIPT_COMPLETED: Receipt,
    EventType.INSPECTION_COMPLETED: Inspection,
}


def json_schemas() -> dict[str, Any]:
    """JSON Schema of the envelope and of each payload, for docs and for integration layers."""
    return {
        "envelope": Envelope.model_json_schema(),
        **{event.value: model.model_json_schema() for event, model in PAYLOADS.items()},
    }
