"""Request and response bodies of the fake ERP (its OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from simulators.domain import Money, ReturnReason, StockStatus
from simulators.seed import SalesOrder

Quantity = Annotated[StrictInt, Field(ge=1, le=1_000_000, description="Units, at least 1 (a JSON integer)")]
LineNumber = Annotated[StrictInt, Field(ge=1, le=1_000_000, description="Line number of the sales order, e.g. 10")]
Ref = Annotated[str, Field(min_length=1, max_length=100)]


class _Request(BaseModel):
    # Unknown fields are refused rather than ignored: a misspelt field must not pass silently.
    model_config = ConfigDict(extra="forbid")


class Recorded(BaseModel):
    """Who created a document, when and on whose behalf: what the oracle reconciles against."""

    created_at: datetime | None = Field(None, description="Business time of creation; null for seeded documents")
    created_by: str | None = Field(None, description="Principal (OAuth client) that created it")
    correlation_id: str | None = Field(None, description="X-Correlation-ID of the creating request")
    idempotency_key: str | None = Field(None, description="Idempotency-Key of the creating request")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = Field("Bearer", examples=["Bearer"])
    expires_in: int = Field(description="Wall-clock seconds until the token expires (however fast business time runs)")


class ErpSalesOrder(Recorded, SalesOrder):
    """A sales order: seeded (standard) or created through the API (replacement)."""


class ReplacementLine(_Request):
    item_id: Ref
    quantity: Quantity


class ReplacementOrderRequest(_Request):
    customer_id: Ref
    site_id: Ref = Field(description="Warehouse that ships the replacement")
    replacement_for: str = Field(pattern=r"^RMA-([0-9a-z]{1,8}-)?\d+$", max_length=20, description="The RMA the exchange belongs to")
    lines: list[ReplacementLine] = Field(min_length=1, max_length=100)


class RmaLineRequest(_Request):
    line_number: LineNumber
    quantity: Quantity
    reason: ReturnReason


class RmaRequest(_Request):
    sales_order_id: Ref
    external_reference: Ref | None = Field(None, description="The returns portal's return id, e.g. RET-000123")
    site_id: Ref | None = Field(None, description="Receiving warehouse; the order's shipping site when absent")
    lines: list[RmaLineRequest] = Field(min_length=1, max_length=100)


class RmaLine(BaseModel):
    line_number: int = Field(description="The sales order line this returns (same number)")
    item_id: str
    quantity: int
    reason: ReturnReason
    unit_price: Money


class ReturnAuthorization(Recorded):
    id: str = Field(examples=["RMA-000001"])
    sales_order_id: str
    customer_id: str
    site_id: str
    external_reference: str | None
    currency: str
    status: str = Field("open", examples=["open"])
    lines: list[RmaLine]


class CreditLineRequest(_Request):
    line_number: LineNumber = Field(description="Line number on the RMA")
    quantity: Quantity
    amount: Money = Field(description="Amount credited for this line, in cents, >= 0")


class CreditMemoRequest(_Request):
    return_authorization_id: Ref
    lines: list[CreditLineRequest] = Field(min_length=1, max_length=100)
    memo: str | None = Field(None, max_length=500)


class CreditLine(BaseModel):
    line_number: int
    item_id: str
    quantity: int
    amount: Money


class CreditMemo(Recorded):
    id: str = Field(examples=["CM-000001"])
    return_authorization_id: str
    sales_order_id: str
    customer_id: str
    lines: list[CreditLine]
    total: Money
    memo: str | None
    status: str = Field("posted", examples=["posted"])


class InventoryBalance(BaseModel):
    item_id: str
    site_id: str
    stock_status: StockStatus
    quantity: int


class AdjustmentRequest(_Request):
    item_id: Ref
    site_id: Ref
    stock_status: StockStatus
    quantity: StrictInt = Field(ge=-1_000_000, le=1_000_000, description="Signed, non-zero: + into stock, - out of it (a JSON integer)")
    reason: str = Field(min_length=1, max_length=200, examples=["return RMA-000001 restock"])
    return_authorization_id: Ref | None = None


class InventoryAdjustment(Recorded):
    id: str = Field(examples=["ADJ-000001"])
    item_id: str
    site_id: str
    stock_status: StockStatus
    quantity: int
    reason: str
    return_authorization_id: str | None
    balance_after: int


class ClaimLineRequest(_Request):
    item_id: Ref
    quantity: Quantity
    amount: Money | None = Field(None, description="Amount claimed from the vendor for this line, >= 0")


class SupplierClaimRequest(_Request):
    vendor_id: Ref
    return_authorization_id: Ref
    lines: list[ClaimLineRequest] = Field(min_length=1, max_length=100)
    reason: str | None = Field(None, max_length=200)


class SupplierClaim(Recorded):
    id: str = Field(examples=["SC-000001"])
    vendor_id: str
    return_authorization_id: str
    lines: list[ClaimLineRequest]
    total: Money | None = Field(description="Sum of the line amounts; null when no line has one")
    reason: str | None
    status: str = Field("submitted", examples=["submitted"])
