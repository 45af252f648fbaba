"""The fake ERP: auth, each resource (happy path, bad input, 404), no deduplication, Idempotency-Key."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient

from simulators.clock import ManualClock
from simulators.erp.app import create_app
from simulators.seed import master_data
from tests.conftest import api_client

SEED = 7


@pytest.fixture
def app(clock):
    return create_app(seed=SEED, clock=clock)


@pytest.fixture
def erp(app):
    return api_client(app)


def _order_with_quantity(min_qty: int = 2):
    return next(o for o in master_data(SEED).orders.values() if o.lines[0].quantity >= min_qty)


@pytest.fixture
def order():
    return _order_with_quantity()


def _rma(erp, order, quantity=1, **extra):
    body = {"sales_order_id": order.id, "lines": [{"line_number": order.lines[0].line_number, "quantity": quantity, "reason": "defective"}], **extra}
    r = erp.post("/return-authorizations", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _cm_body(rma, amount=1000, quantity=1, currency="USD"):
    line = rma["lines"][0]
    return {"return_authorization_id": rma["id"], "lines": [{"line_number": line["line_number"], "quantity": quantity, "amount": {"amount": amount, "currency": currency}}]}


def _problem(r, status, field=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    if field is not None:
        assert field in [e["field"] for e in body.get("errors") or []] or field in body["detail"], body
    return body


# --- auth -------------------------------------------------------------------------------


def _token_form(app, **over):
    creds = app.state.system.credentials
    return {"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret, **over}


def test_token_grants_access_and_bad_requests_are_refused(app):
    c = TestClient(app)
    r = c.post("/oauth/token", data=_token_form(app))
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert c.get("/customers/CUST-00001", headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 200

    _problem(c.post("/oauth/token", data=_token_form(app, client_secret="wrong")), 401)
    _problem(c.post("/oauth/token", data=_token_form(app, grant_type="password")), 400, "grant_type")
    _problem(c.post("/oauth/token", data=_token_form(app, client_id="")), 400, "client_id")
    _problem(c.get("/customers"), 401)
    _problem(c.get("/customers", headers={"Authorization": "Bearer tok_nonsense"}), 401)


def test_token_accepts_http_basic_client_authentication(app):
    creds = app.state.system.credentials
    r = TestClient(app).post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(creds.client_id, creds.client_secret))
    assert r.status_code == 200, r.text


def test_token_expires_in_business_time(app, erp, clock):
    assert erp.get("/sites").status_code == 200
    clock.advance(3600)
    body = _problem(erp.get("/sites"), 401)
    assert "expired" in body["detail"]


# --- master data ------------------------------------------------------------------------


def test_customers(erp):
    rows = erp.get("/customers", params={"limit": 5}).json()
    assert len(rows) == 5 and rows[0]["id"] == "CUST-00001"
    assert erp.get("/customers", params={"limit": 5, "offset": 5}).json()[0]["id"] == "CUST-00006"
    on_hold = erp.get("/customers", params={"account_status": "on_hold", "limit": 1000}).json()
    assert on_hold and all(c["account_status"] == "on_hold" for c in on_hold)
    one = erp.get("/customers/CUST-00002").json()
    assert one["account_status"] in ("active", "on_hold") and one["address"]["country"] == "US"
    _problem(erp.get("/customers/CUST-99999"), 404)
    _problem(erp.get("/customers", params={"limit": 0}), 422, "limit")
    _problem(erp.get("/customers", params={"limit": 5000}), 422, "limit")


def test_items_sites_vendors(erp):
    items = erp.get("/items", params={"category": "electronics"}).json()
    assert items and all(i["category"] == "electronics" for i in items)
    item = erp.get(f"/items/{items[0]['id']}").json()
    assert isinstance(item["price"]["amount"], int) and item["price"]["currency"] == "USD"
    assert all(i["vendor_id"] == item["vendor_id"] for i in erp.get("/items", params={"vendor_id": item["vendor_id"]}).json())
    assert erp.get(f"/vendors/{item['vendor_id']}").json()["id"] == item["vendor_id"]
    assert [s["id"] for s in erp.get("/sites").json()] == ["WH-EAST", "WH-WEST", "WH-SOUTH"]
    _problem(erp.get("/items/SKU-NOPE"), 404)
    _problem(erp.get("/vendors/VEND-999"), 404)
    _problem(erp.get("/items", params={"category": "food"}), 422, "category")


def test_sales_orders(erp, order):
    got = erp.get(f"/sales-orders/{order.id}").json()
    assert got["lines"][0]["unit_price"] == order.lines[0].unit_price.model_dump()
    assert got["order_type"] == "standard" and got["customer_id"] == order.customer_id
    mine = erp.get("/sales-orders", params={"customer_id": order.customer_id, "limit": 1000}).json()
    assert order.id in [o["id"] for o in mine] and all(o["customer_id"] == order.customer_id for o in mine)
    _problem(erp.get("/sales-orders/SO-999999"), 404)


def test_replacement_order(erp, store, order):
    rma = _rma(erp, order)
    item_id = order.lines[0].item_id
    body = {"customer_id": order.customer_id, "site_id": "WH-EAST", "replacement_for": rma["id"], "lines": [{"item_id": item_id, "quantity": 1}]}
    r = erp.post("/sales-orders", json=body, headers={"X-Correlation-ID": "corr-1"})
    assert r.status_code == 201, r.text
    so = r.json()
    assert so["id"] == "SO-R000001"  # a range of its own: never one of the master data's sales
    assert so["order_type"] == "replacement" and so["replacement_for"] == rma["id"]
    assert so["lines"][0]["unit_price"] == {"amount": 0, "currency": "USD"}
    assert so["correlation_id"] == "corr-1" and so["created_by"] == "integration-layer" and so["created_at"]
    assert erp.get(f"/sales-orders/{so['id']}").json() == so
    assert [o["id"] for o in erp.get("/sales-orders", params={"replacement_for": rma["id"]}).json()] == [so["id"]]

    _problem(erp.post("/sales-orders", json={**body, "replacement_for": "RMA-999999"}), 422, "replacement_for")
    _problem(erp.post("/sales-orders", json={**body, "customer_id": "CUST-99999"}), 422, "customer_id")
    _problem(erp.post("/sales-orders", json={**body, "site_id": "WH-MOON"}), 422, "site_id")
    _problem(erp.post("/sales-orders", json={**body, "lines": [{"item_id": "SKU-NOPE", "quantity": 1}]}), 422, "lines[0].item_id")
    _problem(erp.post("/sales-orders", json={**body, "lines": []}), 422, "lines")
    assert len(store.orders) == 1


# --- return authorizations --------------------------------------------------------------


def test_rma_created_from_the_order(erp, order):
    rma = _rma(erp, order, quantity=2, external_reference="RET-000042")
    assert rma["id"] == "RMA-000001" and rma["status"] == "open"
    assert rma["customer_id"] == order.customer_id and rma["site_id"] == order.site_id
    line = rma["lines"][0]
    assert line["item_id"] == order.lines[0].item_id and line["quantity"] == 2
    assert line["unit_price"] == order.lines[0].unit_price.model_dump()
    assert erp.get(f"/return-authorizations/{rma['id']}").json() == rma
    assert [r["id"] for r in erp.get("/return-authorizations", params={"external_reference": "RET-000042"}).json()] == [rma["id"]]
    assert erp.get("/return-authorizations", params={"sales_order_id": "SO-999999"}).json() == []
    assert _rma(erp, order, site_id="WH-WEST")["site_id"] == "WH-WEST"


def test_rma_bad_input_changes_nothing(erp, store, order):
    n = order.lines[0].line_number
    good = {"sales_order_id": order.id, "lines": [{"line_number": n, "quantity": 1, "reason": "defective"}]}
    cases = [
        ({**good, "sales_order_id": "SO-999999"}, "sales_order_id"),
        ({**good, "site_id": "WH-MOON"}, "site_id"),
        ({**good, "lines": [{"line_number": 999, "quantity": 1, "reason": "defective"}]}, "lines[0].line_number"),
        ({**good, "lines": [{"line_number": n, "quantity": order.lines[0].quantity + 1, "reason": "defective"}]}, "lines[0].quantity"),
        ({**good, "lines": [{"line_number": n, "quantity": 0, "reason": "defective"}]}, "lines[0].quantity"),
        ({**good, "lines": [{"line_number": n, "quantity": 1, "reason": "bored"}]}, "lines[0].reason"),
        ({**good, "lines": [good["lines"][0], good["lines"][0]]}, "lines[1].line_number"),
        ({**good, "lines": []}, "lines"),
        ({**good, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        _problem(erp.post("/return-authorizations", json=body), 422, field)
    assert store.rmas == {}
    _problem(erp.get("/return-authorizations/RMA-000001"), 404)


def test_rma_is_not_deduplicated(erp, order):
    """Posting the same return twice creates two RMAs: catching that is the oracle's job."""
    full = order.lines[0].quantity
    first, second = _rma(erp, order, quantity=full), _rma(erp, order, quantity=full)
    assert first["id"] != second["id"]
    assert len(erp.get("/return-authorizations", params={"sales_order_id": order.id}).json()) == 2


# --- credit memos -----------------------------------------------------------------------


def test_credit_memo(erp, order):
    rma = _rma(erp, order, quantity=2)
    r = erp.post("/credit-memos", json={**_cm_body(rma, amount=1250, quantity=2), "memo": "refund"}, headers={"X-Correlation-ID": "c-9"})
    assert r.status_code == 201, r.text
    cm = r.json()
    assert cm["id"] == "CM-000001" and cm["status"] == "posted" and cm["customer_id"] == order.customer_id
    assert cm["total"] == {"amount": 1250, "currency": "USD"} and cm["lines"][0]["item_id"] == order.lines[0].item_id
    assert cm["correlation_id"] == "c-9" and cm["created_by"] == "integration-layer" and cm["idempotency_key"] is None
    assert erp.get(f"/credit-memos/{cm['id']}").json() == cm
    assert [m["id"] for m in erp.get("/credit-memos", params={"return_authorization_id": rma["id"]}).json()] == [cm["id"]]
    assert [m["id"] for m in erp.get("/credit-memos", params={"customer_id": order.customer_id}).json()] == [cm["id"]]
    assert erp.get("/credit-memos", params={"customer_id": "CUST-99999"}).json() == []
    _problem(erp.get("/credit-memos/CM-999999"), 404)


def test_credit_memo_total_sums_lines(erp):
    order = next(o for o in master_data(SEED).orders.values() if len(o.lines) >= 2)
    rma = erp.post("/return-authorizations", json={
        "sales_order_id": order.id,
        "lines": [{"line_number": l.line_number, "quantity": 1, "reason": "size_fit"} for l in order.lines[:2]],
    }).json()
    body = {"return_authorization_id": rma["id"], "lines": [
        {"line_number": l["line_number"], "quantity": 1, "amount": {"amount": a, "currency": "USD"}} for l, a in zip(rma["lines"], (999, 1))
    ]}
    assert erp.post("/credit-memos", json=body).json()["total"] == {"amount": 1000, "currency": "USD"}


def test_credit_memo_bad_input_changes_nothing(erp, store, order):
    rma = _rma(erp, order, quantity=1)
    good = _cm_body(rma)
    line = good["lines"][0]
    cases = [
        ({**good, "return_authorization_id": "RMA-999999"}, "return_authorization_id"),
        ({**good, "lines": [{**line, "line_number": 999}]}, "lines[0].line_number"),
        ({**good, "lines": [{**line, "quantity": 2}]}, "lines[0].quantity"),
        ({**good, "lines": [{**line, "amount": {"amount": 100, "currency": "EUR"}}]}, "lines[0].amount.currency"),
        ({**good, "lines": [{**line, "amount": {"amount": -1, "currency": "USD"}}]}, "lines[0].amount.amount"),
        ({**good, "lines": [{**line, "amount": {"amount": 1.5, "currency": "USD"}}]}, "lines[0].amount.amount"),
        ({**good, "lines": [line, line]}, "lines[1].line_number"),
    ]
    for body, field in cases:
        _problem(erp.post("/credit-memos", json=body), 422, field)
    assert store.credit_memos == {}


def test_credit_memo_is_not_deduplicated_without_a_key(erp, store, order):
    body = _cm_body(_rma(erp, order))
    first, second = erp.post("/credit-memos", json=body), erp.post("/credit-memos", json=body)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert len(store.credit_memos) == 2


def test_idempotency_key_replays_the_first_credit_memo(erp, store, order):
    body = _cm_body(_rma(erp, order))
    first = erp.post("/credit-memos", json=body, headers={"Idempotency-Key": "refund-1"})
    again = erp.post("/credit-memos", json=body, headers={"Idempotency-Key": "refund-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and first.json()["idempotency_key"] == "refund-1"
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert len(store.credit_memos) == 1

    other = erp.post("/credit-memos", json={**body, "memo": "different"}, headers={"Idempotency-Key": "refund-1"})
    _problem(other, 422)
    assert len(store.credit_memos) == 1


def test_idempotency_key_in_flight_is_a_conflict(app, erp, order):
    body = _cm_body(_rma(erp, order))
    auth = {"Authorization": erp.headers["authorization"], "Idempotency-Key": "slow-1"}

    async def race():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://erp") as c:
            r = await c.post("/__admin/faults", json={"kind": "latency", "path": "/credit-memos", "latency_ms": 300})
            assert r.status_code == 201, r.text
            return await asyncio.gather(*(c.post("/credit-memos", json=body, headers=auth) for _ in range(2)))

    responses = asyncio.run(race())
    assert sorted(r.status_code for r in responses) == [201, 409]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.headers["content-type"].startswith("application/problem+json")
    assert len(app.state.system.store.credit_memos) == 1


# --- inventory --------------------------------------------------------------------------


def test_inventory_seeded_balances(erp):
    rows = erp.get("/inventory", params={"item_id": "SKU-AP1002", "site_id": "WH-EAST"}).json()
    assert {r["stock_status"] for r in rows} == {"available", "refurbish", "quarantine", "scrap"}
    by_status = {r["stock_status"]: r["quantity"] for r in rows}
    assert 0 <= by_status["available"] <= 200 and by_status["scrap"] == by_status["quarantine"] == by_status["refurbish"] == 0
    assert len(erp.get("/inventory", params={"limit": 1000}).json()) == 1000
    assert erp.get("/inventory", params={"item_id": "SKU-NOPE"}).json() == []


def _balance(erp, item_id, site_id, status):
    rows = erp.get("/inventory", params={"item_id": item_id, "site_id": site_id, "stock_status": status}).json()
    return rows[0]["quantity"]


def test_inventory_adjustments_move_balances(erp, order):
    rma = _rma(erp, order)
    item, site = order.lines[0].item_id, order.site_id
    before = _balance(erp, item, site, "refurbish")
    body = {"item_id": item, "site_id": site, "stock_status": "refurbish", "quantity": 2, "reason": "return inspected", "return_authorization_id": rma["id"]}
    r = erp.post("/inventory-adjustments", json=body)
    assert r.status_code == 201, r.text
    adj = r.json()
    assert adj["id"] == "ADJ-000001" and adj["balance_after"] == before + 2
    assert _balance(erp, item, site, "refurbish") == before + 2
    out = erp.post("/inventory-adjustments", json={**body, "quantity": -1, "return_authorization_id": None}).json()
    assert out["balance_after"] == before + 1 and _balance(erp, item, site, "refurbish") == before + 1
    assert [a["id"] for a in erp.get("/inventory-adjustments", params={"return_authorization_id": rma["id"]}).json()] == [adj["id"]]
    assert len(erp.get("/inventory-adjustments", params={"item_id": item, "site_id": site}).json()) == 2


def test_inventory_adjustment_bad_input_changes_nothing(erp, store, order):
    item, site = order.lines[0].item_id, order.site_id
    good = {"item_id": item, "site_id": site, "stock_status": "scrap", "quantity": 1, "reason": "scrapped"}
    before = dict(store.balances)
    cases = [
        ({**good, "quantity": -1}, "quantity"),  # scrap starts at 0: would go negative
        ({**good, "quantity": 0}, "quantity"),
        ({**good, "item_id": "SKU-NOPE"}, "item_id"),
        ({**good, "site_id": "WH-MOON"}, "site_id"),
        ({**good, "stock_status": "lost"}, "stock_status"),
        ({**good, "return_authorization_id": "RMA-999999"}, "return_authorization_id"),
        ({**good, "reason": ""}, "reason"),
    ]
    for body, field in cases:
        _problem(erp.post("/inventory-adjustments", json=body), 422, field)
    assert store.balances == before and store.adjustments == {}


# --- supplier claims --------------------------------------------------------------------


def test_supplier_claims(erp, store, order):
    rma = _rma(erp, order)
    items = master_data(SEED).items
    item = items[order.lines[0].item_id]
    body = {"vendor_id": item.vendor_id, "return_authorization_id": rma["id"], "reason": "defective batch",
            "lines": [{"item_id": item.id, "quantity": 1, "amount": {"amount": 500, "currency": "USD"}}]}
    r = erp.post("/supplier-claims", json=body)
    assert r.status_code == 201, r.text
    claim = r.json()
    assert claim["id"] == "SC-000001" and claim["total"] == {"amount": 500, "currency": "USD"}
    assert erp.get(f"/supplier-claims/{claim['id']}").json() == claim
    assert [c["id"] for c in erp.get("/supplier-claims", params={"return_authorization_id": rma["id"]}).json()] == [claim["id"]]
    no_amount = erp.post("/supplier-claims", json={**body, "lines": [{"item_id": item.id, "quantity": 1}]}).json()
    assert no_amount["total"] is None

    other_vendor = next(v for v in master_data(SEED).vendors if v != item.vendor_id)
    _problem(erp.post("/supplier-claims", json={**body, "vendor_id": other_vendor}), 422, "lines[0].item_id")
    _problem(erp.post("/supplier-claims", json={**body, "vendor_id": "VEND-999"}), 422, "vendor_id")
    _problem(erp.post("/supplier-claims", json={**body, "return_authorization_id": "RMA-999999"}), 422, "return_authorization_id")
    _problem(erp.get("/supplier-claims/SC-999999"), 404)
    assert len(store.claims) == 2


# --- state ------------------------------------------------------------------------------


def _script(erp, order):
    rma = _rma(erp, order, external_reference="RET-1")
    erp.post("/credit-memos", json=_cm_body(rma), headers={"Idempotency-Key": "k1", "X-Correlation-ID": "c1"})
    erp.post("/inventory-adjustments", json={"item_id": order.lines[0].item_id, "site_id": order.site_id, "stock_status": "available", "quantity": 1, "reason": "restock"})


def test_same_seed_same_snapshot():
    snapshots = []
    for _ in range(2):
        app = create_app(seed=SEED, clock=ManualClock())
        _script(api_client(app), _order_with_quantity())
        snapshots.append(app.state.system.store.snapshot())
    assert snapshots[0] == snapshots[1]
    assert snapshots[0]["credit_memos"][0]["correlation_id"] == "c1"
    other = create_app(seed=SEED + 1, clock=ManualClock()).state.system.store.snapshot()
    assert other["inventory"] != snapshots[0]["inventory"]


def test_reset_returns_to_seeded_state(app, erp, order):
    seeded = app.state.system.store.snapshot()
    _script(erp, order)
    assert app.state.system.store.snapshot() != seeded
    assert erp.post("/__admin/reset").status_code == 204
    assert app.state.system.store.snapshot() == seeded
    assert erp.get("/__admin/state").json() == seeded


@pytest.mark.parametrize("loose", [True, "100", 100.0, 2**63])
def test_money_is_a_json_integer_only(erp, store, order, loose):
    """A layer that sends money as a float, a string or a boolean is told so, as a real ERP tells
    it, and nothing is posted: ``100.0`` is not ``100`` to a ledger."""
    rma = _rma(erp, order)
    body = _cm_body(rma, amount=100, quantity=1)
    body["lines"][0]["amount"]["amount"] = loose
    _problem(erp.post("/credit-memos", json=body), 422, "lines[0].amount.amount")
    assert store.credit_memos == {}


@pytest.mark.parametrize("loose", [True, "1", 1.0])
def test_quantities_are_json_integers_only(erp, store, order, loose):
    item, site = order.lines[0].item_id, order.site_id
    body = {"item_id": item, "site_id": site, "stock_status": "refurbish", "quantity": loose, "reason": "refurbished"}
    _problem(erp.post("/inventory-adjustments", json=body), 422, "quantity")
    rma_body = {"sales_order_id": order.id, "lines": [{"line_number": order.lines[0].line_number, "quantity": loose, "reason": "defective"}]}
    _problem(erp.post("/return-authorizations", json=rma_body), 422, "lines[0].quantity")
    assert store.adjustments == {} and store.rmas == {}
