"""The WMS's state: expected receipts (ASNs), receipts at the dock, inspections, and the events it announces."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from simulators.domain import Condition, Disposition
from simulators.fakekit.announcer import FakeStore
from simulators.fakekit.pipeline import CallContext
from simulators.fakekit.problems import invalid, not_found
from simulators.seed import Site

Ref = Annotated[str, Field(min_length=1, max_length=100)]
Quantity = Annotated[StrictInt, Field(ge=1, le=1_000_000, description="Units, at least 1 (a JSON integer)")]


class _Request(BaseModel):
    # Unknown fields are refused rather than ignored: a misspelt field must not pass silently.
    model_config = ConfigDict(extra="forbid")


class Recorded(BaseModel):
    """Who created a document, when and on whose behalf: what the oracle reconciles against."""

    created_at: datetime = Field(description="Business time of creation")
    created_by: str | None = Field(description="Principal that created it ('warehouse' for the floor)")
    correlation_id: str | None = Field(description="X-Correlation-ID of the creating request")
    idempotency_key: str | None = Field(description="Idempotency-Key of the creating request")


class AsnStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"


# --- requests ------------------------------------------------------------------------------


class ItemQuantity(_Request):
    item_id: Ref = Field(examples=["SKU-AP1001"])
    quantity: Quantity


class ExpectedReceiptRequest(_Request):
    rma_id: str = Field(pattern=r"^RMA-([0-9a-z]{1,8}-)?\d+$", max_length=20, description="The ERP return authorization the parcel belongs to")
    site_id: Ref = Field(description="Warehouse expecting the parcel, e.g. WH-EAST")
    tracking_code: Ref | None = Field(None, description="Carrier tracking code of the return parcel, when known")
    lines: list[ItemQuantity] = Field(min_length=1, max_length=100)
    expected_at: datetime | None = None


class ReceiptRequest(_Request):
    site_id: Ref
    rma_id: Ref | None = Field(None, description="RMA written on the parcel, when the dock can read it")
    tracking_code: Ref | None = None
    lines: list[ItemQuantity] = Field(min_length=1, max_length=100)


class InspectionLineRequest(_Request):
    item_id: Ref
    quantity: Quantity
    condition: Condition
    disposition: Disposition
    serial_numbers: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None, max_length=1000, description="One per unit; required for serial-controlled items"
    )
    lot: Ref | None = None


class InspectionRequest(_Request):
    receipt_id: Ref = Field(examples=["RCV-000001"])
    lines: list[InspectionLineRequest] = Field(
        min_length=1, max_length=100, description="Split dispositions of one item are separate lines (2 restock + 1 scrap)"
    )


# --- documents -----------------------------------------------------------------------------


class ExpectedLine(BaseModel):
    item_id: str
    quantity: int = Field(description="Units expected")
    received_quantity: int = Field(0, description="Units received against this line so far")


class ExpectedReceipt(Recorded):
    id: str = Field(examples=["ASN-000001"])
    rma_id: str
    site_id: str
    tracking_code: str | None
    lines: list[ExpectedLine]
    expected_at: datetime | None
    status: AsnStatus
    receipt_ids: list[str] = Field(description="Receipts matched to this ASN, oldest first")
    updated_at: datetime


class ReceiptLine(BaseModel):
    item_id: str
    quantity: int


class Receipt(Recorded):
    id: str = Field(examples=["RCV-000001"])
    site_id: str
    rma_id: str | None = Field(description="From the parcel, else from the matched ASN; null for a blind receipt without one")
    tracking_code: str | None
    lines: list[ReceiptLine]
    blind: bool = Field(description="True when no open expected receipt matched: an unexpected parcel")
    expected_receipt_id: str | None


class InspectionLine(BaseModel):
    item_id: str
    quantity: int
    condition: Condition
    disposition: Disposition
    serial_numbers: list[str] | None
    lot: str | None


class Inspection(Recorded):
    id: str = Field(examples=["INS-000001"])
    receipt_id: str
    rma_id: str | None
    site_id: str
    lines: list[InspectionLine]


_FLOOR = CallContext(principal="warehouse", correlation_id=None, idempotency_key=None)


class WmsStore(FakeStore):

    def reset(self) -> None:
        self._asn_ids = self.ids("ASN")
        self._receipt_ids = self.ids("RCV")
        self._inspection_ids = self.ids("INS")
        self.expected_receipts: dict[str, ExpectedReceipt] = {}
        self.receipts: dict[str, Receipt] = {}
        self.inspections: dict[str, Inspection] = {}
        # Indexes, so the floor's lookups stay O(1) however many documents a season makes.
        self._asns_by: dict[tuple[str, str, str], list[str]] = {}  # (site, "rma_id"|"tracking_code", value) -> ASN ids
        self._inspections_by_receipt: dict[str, list[str]] = {}

    def _check_site(self, site_id: str) -> None:
        if site_id not in self.master.sites:
            raise invalid("site_id", f"unknown site {site_id!r}; expected one of {sorted(self.master.sites)}")

    def _check_items(self, lines: list[ItemQuantity]) -> None:
        seen: set[str] = set()
        for i, line in enumerate(lines):
            if line.item_id not in self.master.items:
                raise invalid(f"lines[{i}].item_id", f"unknown item {line.item_id!r}")
            if line.item_id in seen:
                raise invalid(f"lines[{i}].item_id", f"item {line.item_id} appears twice; put all its units on one line")
            seen.add(line.item_id)

    # --- reads -----------------------------------------------------------------------------

    def sites(self) -> list[Site]:
        return list(self.master.sites.values())

    def expected_receipt(self, asn_id: str) -> ExpectedReceipt:
        try:
            return self.expected_receipts[asn_id]
        except KeyError:
            raise not_found("expected receipt", asn_id) from None

    def find_expected_receipts(self, rma_id: str | None = None, site_id: str | None = None, status: AsnStatus | None = None) -> list[ExpectedReceipt]:
        return [
            a
            for a in self.expected_receipts.values()
            if (rma_id is None or a.rma_id == rma_id) and (site_id is None or a.site_id == site_id) and (status is None or a.status == status)
        ]

    def receipt(self, receipt_id: str) -> Receipt:
        try:
            return self.receipts[receipt_id]
        except KeyError:
            raise not_found("receipt", receipt_id) from None

    def find_receipts(self, rma_id: str | None = None, site_id: str | None = None) -> list[Receipt]:
        return [r for r in self.receipts.values() if (rma_id is None or r.rma_id == rma_id) and (site_id is None or r.site_id == site_id)]

    def inspection(self, inspection_id: str) -> Inspection:
        try:
            return self.inspections[inspection_id]
        except KeyError:
            raise not_found("inspection", inspection_id) from None

    def find_inspections(self, rma_id: str | None = None, receipt_id: str | None = None) -> list[Inspection]:
        return [
            x for x in self.inspections.values() if (rma_id is None or x.rma_id == rma_id) and (receipt_id is None or x.receipt_id == receipt_id)
        ]

    # --- integration side: ASNs ------------------------------------------------------------

    def create_expected_receipt(self, req: ExpectedReceiptRequest, ctx: CallContext) -> ExpectedReceipt:
        """An ASN. Not deduplicated: posting the same one twice makes two (use Idempotency-Key)."""
        self._check_site(req.site_id)
        self._check_items(req.lines)
        recorded = ctx.stamp(self.clock)
        asn = ExpectedReceipt(
            id=self._asn_ids.next(),
            rma_id=req.rma_id,
            site_id=req.site_id,
            tracking_code=req.tracking_code,
            lines=[ExpectedLine(item_id=l.item_id, quantity=l.quantity) for l in req.lines],
            expected_at=req.expected_at,
            status=AsnStatus.OPEN,
            receipt_ids=[],
            updated_at=recorded["created_at"],
            **recorded,
        )
        self.expected_receipts[asn.id] = asn
        for key in ("rma_id", "tracking_code"):
            if getattr(asn, key) is not None:
                self._asns_by.setdefault((asn.site_id, key, getattr(asn, key)), []).append(asn.id)
        return asn

    # --- warehouse floor (the model calls these directly) ----------------------------------

    def _match(self, site_id: str, rma_id: str | None, tracking_code: str | None) -> ExpectedReceipt | None:
        """The oldest ASN at this site still waiting for units: by RMA first, else by tracking code."""
        for key, value in (("rma_id", rma_id), ("tracking_code", tracking_code)):
            if value is not None:
                for asn_id in self._asns_by.get((site_id, key, value), ()):
                    asn = self.expected_receipts[asn_id]
                    if asn.status != AsnStatus.RECEIVED:
                        return asn
        return None

    def create_receipt(self, req: ReceiptRequest, ctx: CallContext | None = None) -> Receipt:
        """A parcel unpacked at the dock; a parcel no ASN expects is a blind receipt."""
        ctx = ctx or _FLOOR
        self._check_site(req.site_id)
        self._check_items(req.lines)
        asn = self._match(req.site_id, req.rma_id, req.tracking_code)
        recorded = ctx.stamp(self.clock)
        receipt = Receipt(
            id=self._receipt_ids.next(),
            site_id=req.site_id,
            rma_id=req.rma_id if req.rma_id is not None else (asn.rma_id if asn else None),
            tracking_code=req.tracking_code,
            lines=[ReceiptLine(item_id=l.item_id, quantity=l.quantity) for l in req.lines],
            blind=asn is None,
            expected_receipt_id=asn.id if asn else None,
            **recorded,
        )
        self.receipts[receipt.id] = receipt
        if asn is not None:
            arrived = {l.item_id: l.quantity for l in req.lines}
            lines = [l.model_copy(update={"received_quantity": l.received_quantity + arrived.get(l.item_id, 0)}) for l in asn.lines]
            complete = all(l.received_quantity >= l.quantity for l in lines)
            self.expected_receipts[asn.id] = asn.model_copy(
                update={
                    "lines": lines,
                    "status": AsnStatus.RECEIVED if complete else AsnStatus.PARTIALLY_RECEIVED,
                    "receipt_ids": [*asn.receipt_ids, receipt.id],
                    "updated_at": recorded["created_at"],
                }
            )
        self.announce("receipt.completed", receipt)
        return receipt

    def inspected_quantity(self, receipt_id: str) -> Counter[str]:
        """Units of each item already inspected on a receipt."""
        done: Counter[str] = Counter()
        for inspection_id in self._inspections_by_receipt.get(receipt_id, ()):
            for line in self.inspections[inspection_id].lines:
                done[line.item_id] += line.quantity
        return done

    def create_inspection(self, req: InspectionRequest, ctx: CallContext | None = None) -> Inspection:
        """Grading and disposition of received units, per line."""
        ctx = ctx or _FLOOR
        receipt = self.receipts.get(req.receipt_id)
        if receipt is None:
            raise invalid("receipt_id", f"no receipt {req.receipt_id!r}")
        received = Counter({l.item_id: l.quantity for l in receipt.lines})
        done = self.inspected_quantity(receipt.id)
        for i, line in enumerate(req.lines):
            if line.item_id not in received:
                raise invalid(f"lines[{i}].item_id", f"item {line.item_id!r} is not on receipt {receipt.id}; it has {sorted(received)}")
            done[line.item_id] += line.quantity
            if done[line.item_id] > received[line.item_id]:
                raise invalid(
                    f"lines[{i}].quantity",
                    f"{done[line.item_id]} unit(s) of {line.item_id} would be inspected on receipt {receipt.id}, "
                    f"but only {received[line.item_id]} were received",
                )
            item = self.master.items[line.item_id]
            serials = line.serial_numbers
            if item.serial_controlled and serials is None:
                raise invalid(f"lines[{i}].serial_numbers", f"item {item.id} is serial-controlled: send {line.quantity} serial number(s)")
            if serials is not None:
                if len(serials) != line.quantity:
                    raise invalid(f"lines[{i}].serial_numbers", f"expected exactly {line.quantity} serial number(s), one per unit, got {len(serials)}")
                if len(set(serials)) != len(serials):
                    raise invalid(f"lines[{i}].serial_numbers", "serial numbers must be distinct")
        inspection = Inspection(
            id=self._inspection_ids.next(),
            receipt_id=receipt.id,
            rma_id=receipt.rma_id,
            site_id=receipt.site_id,
            lines=[InspectionLine(**l.model_dump()) for l in req.lines],
            **ctx.stamp(self.clock),
        )
        self.inspections[inspection.id] = inspection
        self._inspections_by_receipt.setdefault(inspection.receipt_id, []).append(inspection.id)
        self.announce("inspection.completed", inspection)
        return inspection

    def forget(self, rma_id: str | None, tracking_code: str | None, receipt_ids: Iterable[str] = ()) -> None:
        """Drop a finished return's ASNs, receipts and inspections (virtual mode, once traced)."""
        for site_id in self.master.sites:
            for key, value in (("rma_id", rma_id), ("tracking_code", tracking_code)):
                for asn_id in self._asns_by.pop((site_id, key, value), ()) if value is not None else ():
                    self.expected_receipts.pop(asn_id, None)
        for receipt_id in receipt_ids:
            self.receipts.pop(receipt_id, None)
            for inspection_id in self._inspections_by_receipt.pop(receipt_id, ()):
                self.inspections.pop(inspection_id, None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "expected_receipts": [a.model_dump(mode="json") for a in self.expected_receipts.values()],
            "receipts": [r.model_dump(mode="json") for r in self.receipts.values()],
            "inspections": [x.model_dump(mode="json") for x in self.inspections.values()],
        }
