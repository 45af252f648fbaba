"""HTTP API of the fake ERP."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Form, Query, Request

from simulators.clock import Clock
from simulators.domain import AccountStatus, Category, StockStatus
from simulators.erp.models import (
    AdjustmentRequest,
    CreditMemo,
    CreditMemoRequest,
    ErpSalesOrder,
    InventoryAdjustment,
    InventoryBalance,
    ReplacementOrderRequest,
    ReturnAuthorization,
    RmaRequest,
    SupplierClaim,
    SupplierClaimRequest,
    TokenResponse,
)
from simulators.erp.store import ErpStore, page
from simulators.fakekit.app import call_context, create_fake
from simulators.fakekit.auth import Credentials, derive_secret
from simulators.fakekit.pipeline import CallContext
from simulators.fakekit.problems import invalid
from simulators.fakekit.routes import fake_router
from simulators.seed import Customer, Item, MasterData, Site, Vendor

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many rows")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Skip this many rows first")]
Filter = Annotated[str | None, Query(max_length=100)]

auth_router = fake_router(tags=["auth"])
master_router = fake_router(tags=["master data"])
orders_router = fake_router(tags=["sales orders"])
returns_router = fake_router(tags=["returns and credits"])
stock_router = fake_router(tags=["inventory"])


def _store(request: Request) -> ErpStore:
    return request.app.state.system.store


# --- auth -------------------------------------------------------------------------------


def _basic(authorization: str | None) -> tuple[str | None, str | None]:
    """Client credentials from an HTTP Basic header, which RFC 6749 lets clients use instead of the form."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        client_id, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid("Authorization", "Basic credentials must be base64 of client_id:client_secret", status=400) from None
    return (client_id, secret) if sep else (None, None)


@auth_router.post("/oauth/token", response_model=TokenResponse, status_code=200, summary="OAuth2 client credentials: get an access token")
async def token(
    request: Request,
    grant_type: Annotated[str | None, Form(max_length=100, examples=["client_credentials"])] = None,
    client_id: Annotated[str | None, Form(max_length=200)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
):
    # OAuth2 (RFC 6749 section 5.2) answers a bad token request with 400, not 422.
    if grant_type != "client_credentials":
        raise invalid("grant_type", f"must be 'client_credentials', got {grant_type!r}", status=400)
    basic_id, basic_secret = _basic(request.headers.get("authorization"))
    client_id, client_secret = client_id or basic_id, client_secret or basic_secret
    if not client_id:
        raise invalid("client_id", "required (form field or HTTP Basic)", status=400)
    if not client_secret:
        raise invalid("client_secret", "required (form field or HTTP Basic)", status=400)
    access_token, ttl = request.app.state.system.auth.issue_token(client_id, client_secret)
    return TokenResponse(access_token=access_token, token_type="Bearer", expires_in=ttl)


# --- master data ------------------------------------------------------------------------


@master_router.get("/customers", response_model=list[Customer], summary="Customers, optionally by account status")
async def list_customers(request: Request, account_status: AccountStatus | None = None, limit: Limit = 100, offset: Offset = 0):
    rows = (c for c in _store(request).master.customers.values() if account_status is None or c.account_status is account_status)
    return page(rows, limit, offset)


@master_router.get("/customers/{customer_id}", response_model=Customer, summary="One customer, with account status (active or on_hold)")
async def get_customer(request: Request, customer_id: str):
    return _store(request).customer(customer_id)


@master_router.get("/items", response_model=list[Item], summary="Items (SKUs), optionally by category or vendor")
async def list_items(request: Request, category: Category | None = None, vendor_id: Filter = None, limit: Limit = 100, offset: Offset = 0):
    rows = (
        i for i in _store(request).master.items.values()
        if (category is None or i.category is category) and (vendor_id is None or i.vendor_id == vendor_id)
    )
    return page(rows, limit, offset)


@master_router.get("/items/{item_id}", response_model=Item, summary="One item: price, category, vendor, serial control")
async def get_item(request: Request, item_id: str):
    return _store(request).item(item_id)


@master_router.get("/sites", response_model=list[Site], summary="Warehouses")
async def list_sites(request: Request, limit: Limit = 100, offset: Offset = 0):
    return page(_store(request).sites(), limit, offset)


@master_router.get("/vendors/{vendor_id}", response_model=Vendor, summary="One vendor (supplier)")
async def get_vendor(request: Request, vendor_id: str):
    return _store(request).vendor(vendor_id)


# --- sales orders -----------------------------------------------------------------------


@orders_router.get("/sales-orders", response_model=list[ErpSalesOrder], summary="Sales orders, by customer or by the RMA they replace")
async def list_orders(request: Request, customer_id: Filter = None, replacement_for: Filter = None, limit: Limit = 100, offset: Offset = 0):
    return page(_store(request).find_orders(customer_id, replacement_for), limit, offset)


@orders_router.get("/sales-orders/{order_id}", response_model=ErpSalesOrder, summary="One sales order with its lines and delivery date")
async def get_order(request: Request, order_id: str):
    return _store(request).sales_order(order_id)


@orders_router.post("/sales-orders", response_model=ErpSalesOrder, status_code=201, summary="Create a replacement order (exchange) at zero price")
async def create_order(request: Request, body: ReplacementOrderRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).create_replacement_order(body, ctx)


# --- returns and credits ----------------------------------------------------------------


@returns_router.post("/return-authorizations", response_model=ReturnAuthorization, status_code=201, summary="Authorize a return against a sales order (not deduplicated)")
async def create_rma(request: Request, body: RmaRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).create_rma(body, ctx)


@returns_router.get("/return-authorizations", response_model=list[ReturnAuthorization], summary="RMAs, by order or by the portal's return id")
async def list_rmas(request: Request, sales_order_id: Filter = None, external_reference: Filter = None, limit: Limit = 100, offset: Offset = 0):
    return page(_store(request).find_rmas(sales_order_id, external_reference), limit, offset)


@returns_router.get("/return-authorizations/{rma_id}", response_model=ReturnAuthorization, summary="One RMA")
async def get_rma(request: Request, rma_id: str):
    return _store(request).rma(rma_id)


@returns_router.post("/credit-memos", response_model=CreditMemo, status_code=201, summary="Post a credit memo (refund) against an RMA (not deduplicated)")
async def create_credit_memo(request: Request, body: CreditMemoRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).create_credit_memo(body, ctx)


@returns_router.get("/credit-memos", response_model=list[CreditMemo], summary="Credit memos, by RMA or customer")
async def list_credit_memos(request: Request, return_authorization_id: Filter = None, customer_id: Filter = None, limit: Limit = 100, offset: Offset = 0):
    return page(_store(request).find_credit_memos(return_authorization_id, customer_id), limit, offset)


@returns_router.get("/credit-memos/{memo_id}", response_model=CreditMemo, summary="One credit memo")
async def get_credit_memo(request: Request, memo_id: str):
    return _store(request).credit_memo(memo_id)


@returns_router.post("/supplier-claims", response_model=SupplierClaim, status_code=201, summary="Claim returned items back from their vendor (not deduplicated)")
async def create_claim(request: Request, body: SupplierClaimRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).create_claim(body, ctx)


@returns_router.get("/supplier-claims", response_model=list[SupplierClaim], summary="Supplier claims, by RMA")
async def list_claims(request: Request, return_authorization_id: Filter = None, limit: Limit = 100, offset: Offset = 0):
    return page(_store(request).find_claims(return_authorization_id), limit, offset)


@returns_router.get("/supplier-claims/{claim_id}", response_model=SupplierClaim, summary="One supplier claim")
async def get_claim(request: Request, claim_id: str):
    return _store(request).claim(claim_id)


# --- inventory --------------------------------------------------------------------------


@stock_router.get("/inventory", response_model=list[InventoryBalance], summary="Stock balances by item, site and stock status")
async def list_inventory(request: Request, item_id: Filter = None, site_id: Filter = None, stock_status: StockStatus | None = None, limit: Limit = 100, offset: Offset = 0):
    return page(_store(request).find_balances(item_id, site_id, stock_status), limit, offset)


@stock_router.post("/inventory-adjustments", response_model=InventoryAdjustment, status_code=201, summary="Move stock in or out of a status (not deduplicated)")
async def create_adjustment(request: Request, body: AdjustmentRequest, ctx: CallContext = Depends(call_context)):
    return _store(request).adjust(body, ctx)


@stock_router.get("/inventory-adjustments", response_model=list[InventoryAdjustment], summary="Inventory adjustments, by RMA, item or site")
async def list_adjustments(request: Request, return_authorization_id: Filter = None, item_id: Filter = None, site_id: Filter = None, limit: Limit = 100, offset: Offset = 0):
    return page(_store(request).find_adjustments(return_authorization_id, item_id, site_id), limit, offset)


def credentials(seed: int) -> Credentials:
    return Credentials(client_id="integration-layer", client_secret=derive_secret("erp", seed, "client-secret"), token_ttl_s=3600)


def create_app(seed: int = 0, *, master: MasterData | None = None, clock: Clock | None = None, **system_options):
    return create_fake(
        "erp", ErpStore, credentials, seed=seed, master=master, clock=clock,
        title="Fake ERP",
        description="System of record for returns, shaped loosely after NetSuite, S/4HANA and Dynamics 365: "
        "customers, items, sales orders, return authorizations, credit memos, inventory, supplier claims. "
        "Get a token with OAuth2 client credentials at `POST /oauth/token`, then send "
        "`Authorization: Bearer <token>`. Business documents are **not** deduplicated; send an "
        "`Idempotency-Key` header on every POST to make retries safe.",
        routers=[auth_router, master_router, orders_router, returns_router, stock_router],
        security={"oauth2": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}}}},
        public_paths=frozenset({"/oauth/token"}),
        **system_options,
    )
