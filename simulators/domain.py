"""Canonical entities and enums shared by every fake system, the model and the oracle.

Money is always integer minor units (cents) with an ISO currency code; ids are readable
and typed by prefix (``SO-000042``, ``RMA-000007``) so a person reading a journal knows
what a string refers to.
"""

from __future__ import annotations

import itertools
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class Money(BaseModel):
    """An amount in integer minor units (cents) of a currency; never a float."""

    model_config = ConfigDict(frozen=True)

    # Strict: a JSON integer, never true, "100" or 100.0 (a layer sending money as floats or
    # strings must be told, as a real ERP tells it); within a signed 64-bit integer.
    amount: StrictInt = Field(ge=-(2**63), le=2**63 - 1, description="Integer minor units, e.g. 1999 for 19.99")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD")


class AccountStatus(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"  # credit or fraud hold: returns must not be refunded automatically


class Category(StrEnum):
    APPAREL = "apparel"
    ELECTRONICS = "electronics"
    HOME = "home"
    BEAUTY = "beauty"


class ReturnReason(StrEnum):
    SIZE_FIT = "size_fit"
    CHANGED_MIND = "changed_mind"
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    DEFECTIVE = "defective"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"
    LATE_DELIVERY = "late_delivery"


class Resolution(StrEnum):
    """What the customer asked for in the portal (about 63% choose a refund, Narvar 2022)."""

    REFUND = "refund"
    EXCHANGE = "exchange"
    STORE_CREDIT = "store_credit"


class ReturnStatus(StrEnum):
    """Statuses of a return in the returns portal, in their normal order."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    REFUNDED = "refunded"
    CLOSED = "closed"
    CANCELLED = "cancelled"


# Rank of each status along the happy path; a move to a lower rank is a regression.
STATUS_RANK: dict[ReturnStatus, int] = {
    ReturnStatus.REQUESTED: 0,
    ReturnStatus.APPROVED: 1,
    ReturnStatus.REJECTED: 1,
    ReturnStatus.CANCELLED: 1,
    ReturnStatus.IN_TRANSIT: 2,
    ReturnStatus.RECEIVED: 3,
    ReturnStatus.REFUNDED: 4,
    ReturnStatus.CLOSED: 5,
}


class Condition(StrEnum):
    """Condition grade found at inspection (after the A/B/C/X grades of reverse-logistics WMSs)."""

    NEW = "new"  # unopened, resellable as new
    OPENED = "opened"  # opened or lightly used, resellable
    DAMAGED = "damaged"  # customer damage
    DEFECTIVE = "defective"  # manufacturer fault


class Disposition(StrEnum):
    RESTOCK = "restock"
    REFURBISH = "refurbish"
    SCRAP = "scrap"
    QUARANTINE = "quarantine"
    RETURN_TO_VENDOR = "return_to_vendor"


class StockStatus(StrEnum):
    AVAILABLE = "available"
    REFURBISH = "refurbish"
    QUARANTINE = "quarantine"
    SCRAP = "scrap"


# Where a unit lands in the ERP's stock after each disposition; return-to-vendor units
# leave the company's stock and become a supplier claim instead.
DISPOSITION_STOCK: dict[Disposition, StockStatus | None] = {
    Disposition.RESTOCK: StockStatus.AVAILABLE,
    Disposition.REFURBISH: StockStatus.REFURBISH,
    Disposition.QUARANTINE: StockStatus.QUARANTINE,
    Disposition.SCRAP: StockStatus.SCRAP,
    Disposition.RETURN_TO_VENDOR: None,
}


class TrackingStatus(StrEnum):
    """Carrier tracker statuses (a subset of EasyPost's)."""

    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURN_TO_SENDER = "return_to_sender"


class IdSequence:
    """Readable, typed ids: ``IdSequence("RMA")`` yields RMA-000001, RMA-000002, ...; with a run
    id, ``IdSequence("RMA", "3f9a1c")`` yields RMA-3f9a1c-000001 (see :func:`plain_id`)."""

    def __init__(self, prefix: str, run_id: str = "", width: int = 6) -> None:
        self.prefix = f"{prefix}-{run_id}" if run_id else prefix
        self.width = width
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}-{next(self._counter):0{self.width}d}"


def plain_id(value: str, run_id: str) -> str:
    """An id without its run id (RET-3f9a1c-000001 -> RET-000001): what seeds a return's draws,
    so a run's world is the same whatever its run id."""
    return value.replace(f"-{run_id}-", "-", 1) if run_id else value
