"""The events this integration layer accepts, as docs/CONTRACT.md describes them.

Only the fields the workflow uses are declared; others are ignored, so that a producer adding
a field does not break intake. Anything missing or of the wrong shape is refused (422) with
the field named, and the delivery goes to the dead letters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Money(_Payload):
    amount: int
    currency: str


class ReturnLine(_Payload):
    line_number: int
    item_id: str
    quantity: Annotated[int, Field(ge=1)]
    reason: str
    unit_price: Money


class ReturnData(_Payload):
    id: str
    order_id: str
    customer_id: str
    resolution: Literal["refund", "exchange", "store_credit"]
    currency: str
    lines: Annotated[list[ReturnLine], Field(min_length=1)]
    requested_at: datetime


class ReturnCancelledData(_Payload):
    return_id: str


class TrackingData(_Payload):
    tracking_code: str
    status: Literal["pre_transit", "in_transit", "out_for_delivery", "delivered", "exception", "return_to_sender"]
    rma_id: str | None = None
    occurred_at: datetime


class Units(_Payload):
    item_id: str
    quantity: Annotated[int, Field(ge=1)]


class ReceiptData(_Payload):
    id: str
    site_id: str
    rma_id: str | None
    lines: list[Units]


class InspectionLine(Units):
    condition: Literal["new", "opened", "damaged", "defective"]
    disposition: Literal["restock", "refurbish", "scrap", "quarantine", "return_to_vendor"]


class InspectionData(_Payload):
    id: str
    receipt_id: str
    rma_id: str | None
    site_id: str
    lines: Annotated[list[InspectionLine], Field(min_length=1)]


PAYLOADS: dict[str, type[_Payload]] = {
    "return.created": ReturnData,
    "return.cancelled": ReturnCancelledData,
    "tracking.updated": TrackingData,
    "receipt.completed": ReceiptData,
    "inspection.completed": InspectionData,
}


class Envelope(_Payload):
    id: Annotated[str, Field(min_length=1)]
    type: Literal["return.created", "return.cancelled", "tracking.updated", "receipt.completed", "inspection.completed"]
    occurred_at: datetime
    correlation_id: Annotated[str, Field(min_length=1)]
    data: dict[str, Any]


class BadEvent(ValueError):
    """An event that cannot be processed; ``errors`` names each field and what was expected."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def _field_errors(error: ValidationError, prefix: str) -> list[dict[str, str]]:
    return [
        {"field": ".".join([prefix, *map(str, e["loc"])]) if prefix else ".".join(map(str, e["loc"])), "message": e["msg"]}
        for e in error.errors()
    ]


def parse(event: Any) -> tuple[Envelope, _Payload]:
    """The envelope and its typed payload, or :class:`BadEvent`."""
    try:
        envelope = Envelope.model_validate(event)
    except ValidationError as e:
        raise BadEvent(_field_errors(e, "")) from None
    try:
        data = PAYLOADS[envelope.type].model_validate(envelope.data)
    except ValidationError as e:
        raise BadEvent(_field_errors(e, "data")) from None
    return envelope, data


def fact_key(envelope: Envelope, data: _Payload) -> str:
    """What the event states, independent of its id: two events with one key are one fact."""
    match data:
        case ReturnData():
            return f"return.created:{data.id}"
        case ReturnCancelledData():
            return f"return.cancelled:{data.return_id}"
        case TrackingData():
            return f"tracking.updated:{data.tracking_code}:{data.status}:{data.occurred_at.isoformat()}"
        case ReceiptData() | InspectionData():
            return f"{envelope.type}:{data.id}"
    raise AssertionError(envelope.type)
