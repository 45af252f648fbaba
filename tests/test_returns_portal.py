"""The returns portal fake: customer side, integration side, history, events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from simulators.clock import ManualClock
from simulators.events import ReturnCancelled
from simulators.fakekit.pipeline import CallContext
from simulators.returns_portal.app import create_app
from simulators.returns_portal.store import ReturnRequest, ReturnUpdate
from simulators.seed import DEFAULT_EPOCH, master_data
from tests.conftest import api_client

SEED = 7
MASTER = master_data(SEED)
LABEL = {"carrier": "UPS", "tracking_code": "1ZRH0000000000001", "label_url": "https://labels.carrier.example/LBL-000001.pdf"}


def _delivered(min_quantity: int = 1):
    return next(
        o for o in MASTER.orders.values() if o.delivered_at is not None and any(l.quantity >= min_quantity for l in o.lines)
    )


ORDER = _delivered(min_quantity=2)  # an order with a line of two or more units
LINE = next(l for l in ORDER.lines if l.quantity >= 2)
EMAIL = MASTER.customers[ORDER.customer_id].email
UNDELIVERED = next(o for o in MASTER.orders.values() if o.delivered_at is None)


def request_body(order=ORDER, email=None, lines=None, resolution="refund") -> dict:
    return {
        "order_id": order.id,
        "customer_email": email or MASTER.customers[order.customer_id].email,
        "lines": lines if lines is not None else [{"line_number": LINE.line_number if order is ORDER else order.lines[0].line_number, "quantity": 1, "reason": "size_fit"}],
        "resolution": resolution,
    }


@pytest.fixture
def app(clock):
    return create_app(seed=SEED, clock=clock)


@pytest.fixture
def portal(app):
    return api_client(app)


def create(portal, **kw) -> dict:
    r = portal.post("/returns", json=request_body(**kw))
    assert r.status_code == 201, r.text
    return r.json()


def problem_field(r, status=422) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()["errors"][0]["field"]


def approve(portal, rid: str, **extra):
    return portal.patch(f"/returns/{rid}", json={"status": "approved", "rma_id": "RMA-000001", "label": LABEL, **extra})


# --- customer side: creating a return ------------------------------------------------------


def test_create_return_copies_the_order(portal, clock):
    clock.advance(60)
    r = portal.post("/returns", json=request_body(email=EMAIL.upper()), headers={"X-Correlation-ID": "corr-1"})
    assert r.status_code == 201, r.text
    ret = r.json()
    assert ret["id"] == "RET-000001"
    assert ret["status"] == "requested"
    assert ret["order_id"] == ORDER.id and ret["customer_id"] == ORDER.customer_id
    assert ret["customer_email"] == EMAIL  # the customer's own spelling, whatever the shopper typed
    assert ret["currency"] == ORDER.currency
    [line] = ret["lines"]
    assert line == {
        "line_number": LINE.line_number,
        "item_id": LINE.item_id,
        "quantity": 1,
        "reason": "size_fit",
        "unit_price": LINE.unit_price.model_dump(),
    }
    assert ret["requested_at"] == (DEFAULT_EPOCH + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    assert ret["created_by"] == "api-key" and ret["correlation_id"] == "corr-1"
    assert portal.get("/returns/RET-000001").json() == ret


def test_email_must_match_the_orders_customer(portal, store):
    r = portal.post("/returns", json=request_body(email="someone.else@example.com"))
    assert problem_field(r) == "customer_email"
    assert store.returns == {}


def test_unknown_order_names_order_id(portal):
    body = request_body()
    body["order_id"] = "SO-999999"
    assert problem_field(portal.post("/returns", json=body)) == "order_id"


def test_only_delivered_orders(portal, store):
    r = portal.post("/returns", json=request_body(order=UNDELIVERED))
    assert problem_field(r) == "order_id"
    assert "not delivered" in r.json()["detail"]
    assert store.returns == {}


def test_delivery_in_the_future_of_the_clock_is_not_delivered_yet():
    clock = ManualClock(ORDER.delivered_at - timedelta(hours=1))
    portal = api_client(create_app(seed=SEED, clock=clock))
    assert problem_field(portal.post("/returns", json=request_body())) == "order_id"
    clock.advance(2 * 3600)
    assert portal.post("/returns", json=request_body()).status_code == 201


def test_unknown_and_duplicate_lines(portal):
    bad = request_body(lines=[{"line_number": 999, "quantity": 1, "reason": "size_fit"}])
    assert problem_field(portal.post("/returns", json=bad)) == "lines[0].line_number"
    line = {"line_number": LINE.line_number, "quantity": 1, "reason": "size_fit"}
    assert problem_field(portal.post("/returns", json=request_body(lines=[line, line]))) == "lines[1].line_number"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": []}, "lines"),
        ({"resolution": "gift_card"}, "resolution"),
        ({"lines": [{"line_number": 10, "quantity": 0, "reason": "size_fit"}]}, "lines[0].quantity"),
        ({"lines": [{"line_number": 10, "quantity": 1, "reason": "because"}]}, "lines[0].reason"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_malformed_requests_name_the_field(portal, store, change, field):
    body = {**request_body(), **change}
    assert problem_field(portal.post("/returns", json=body)) == field
    assert store.returns == {}


def test_cannot_return_more_than_was_ordered_across_returns(portal):
    q = LINE.quantity
    over = request_body(lines=[{"line_number": LINE.line_number, "quantity": q + 1, "reason": "size_fit"}])
    assert problem_field(portal.post("/returns", json=over)) == "lines[0].quantity"
    first = create(portal, lines=[{"line_number": LINE.line_number, "quantity": q - 1, "reason": "size_fit"}])
    create(portal, lines=[{"line_number": LINE.line_number, "quantity": 1, "reason": "defective"}])
    again = request_body(lines=[{"line_number": LINE.line_number, "quantity": 1, "reason": "size_fit"}])
    r = portal.post("/returns", json=again)
    assert problem_field(r) == "lines[0].quantity"
    assert "already in other returns" in r.json()["detail"]
    # Cancelled and rejected returns give their units back.
    assert portal.post(f"/returns/{first['id']}/cancel").status_code == 200
    assert portal.post("/returns", json=again).status_code == 201


def test_rejected_returns_release_their_units(portal):
    all_units = [{"line_number": LINE.line_number, "quantity": LINE.quantity, "reason": "size_fit"}]
    ret = create(portal, lines=all_units)
    assert portal.patch(f"/returns/{ret['id']}", json={"status": "rejected", "rejection_reason": "outside window"}).status_code == 200
    create(portal, lines=all_units)


def test_the_portal_does_not_enforce_the_window(app, clock):
    # Eligibility (window, customer on hold) is the integration layer's job.
    clock.advance(400 * 86400)
    assert api_client(app).post("/returns", json=request_body()).status_code == 201


def test_idempotency_key_replays_the_creation(portal, store):
    a = portal.post("/returns", json=request_body(), headers={"Idempotency-Key": "k-1"})
    b = portal.post("/returns", json=request_body(), headers={"Idempotency-Key": "k-1"})
    assert a.status_code == b.status_code == 201
    assert a.json() == b.json() and b.headers["idempotent-replayed"] == "true"
    assert list(store.returns) == ["RET-000001"]
    assert store.returns["RET-000001"].idempotency_key == "k-1"


# --- customer side: cancelling -------------------------------------------------------------


def test_customer_cancels_requested_or_approved(portal):
    a = create(portal)
    r = portal.post(f"/returns/{a['id']}/cancel", headers={"X-Correlation-ID": "c-9"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    last = portal.get(f"/returns/{a['id']}/history").json()[-1]
    assert last["from"] == "requested" and last["to"] == "cancelled"
    assert last["source"] == "customer" and last["correlation_id"] == "c-9"
    assert problem_field_or_status(portal.post(f"/returns/{a['id']}/cancel")) == 409

    b = create(portal)
    assert approve(portal, b["id"]).status_code == 200
    assert portal.post(f"/returns/{b['id']}/cancel").json()["status"] == "cancelled"


def problem_field_or_status(r) -> int:
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.status_code


def test_customer_cannot_cancel_once_in_transit(portal):
    ret = create(portal)
    approve(portal, ret["id"])
    portal.patch(f"/returns/{ret['id']}", json={"status": "in_transit"})
    r = portal.post(f"/returns/{ret['id']}/cancel")
    assert problem_field_or_status(r) == 409
    assert portal.get(f"/returns/{ret['id']}").json()["status"] == "in_transit"


def test_cancel_unknown_return_is_404(portal):
    assert problem_field_or_status(portal.post("/returns/RET-999999/cancel")) == 404


# --- integration side: reads ---------------------------------------------------------------


def test_list_filters_and_paging(portal):
    a = create(portal)
    other = _delivered_other()
    b = create(portal, order=other)
    approve(portal, b["id"])
    ids = lambda r: [x["id"] for x in r.json()]  # noqa: E731
    assert ids(portal.get("/returns")) == [a["id"], b["id"]]
    assert ids(portal.get("/returns", params={"status": "approved"})) == [b["id"]]
    assert ids(portal.get("/returns", params={"order_id": ORDER.id})) == [a["id"]]
    assert ids(portal.get("/returns", params={"limit": 1})) == [a["id"]]
    assert ids(portal.get("/returns", params={"after": a["id"]})) == [b["id"]]
    assert problem_field(portal.get("/returns", params={"status": "lost"})) == "query.status"
    assert problem_field(portal.get("/returns", params={"limit": 0})) == "query.limit"


def _delivered_other():
    return next(o for o in MASTER.orders.values() if o.delivered_at is not None and o.id != ORDER.id)


def test_query_parameters_are_checked_like_fields(portal):
    assert problem_field(portal.get("/returns", params={"stauts": "approved"})) == "query.stauts"
    assert problem_field(portal.get("/returns?status=approved&status=requested")) == "query.status"


def test_unknown_ids_are_404(portal):
    for path in ("/returns/RET-999999", "/returns/RET-999999/history", "/orders/SO-999999"):
        r = portal.get(path)
        assert problem_field_or_status(r) == 404, path
    assert problem_field_or_status(portal.patch("/returns/RET-999999", json={"status": "approved"})) == 404


def test_policy_and_orders_are_the_seeded_ones(portal):
    assert portal.get("/policy").json() == MASTER.policy.model_dump(mode="json")
    assert portal.get(f"/orders/{ORDER.id}").json() == ORDER.model_dump(mode="json")


def test_auth_is_required(app):
    from fastapi.testclient import TestClient

    assert TestClient(app).get("/policy").status_code == 401
    assert app.state.system.credentials.api_key.startswith("pk_")


# --- integration side: moving a return -----------------------------------------------------


def test_approve_needs_rma_and_label(portal, store):
    ret = create(portal)
    rid = ret["id"]
    assert problem_field(portal.patch(f"/returns/{rid}", json={"status": "approved", "label": LABEL})) == "rma_id"
    assert problem_field(portal.patch(f"/returns/{rid}", json={"status": "approved", "rma_id": "RMA-000001"})) == "label"
    assert store.returns[rid].status == "requested" and len(store.history[rid]) == 1
    r = approve(portal, rid, note="auto-approved")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "approved" and body["rma_id"] == "RMA-000001" and body["label"] == LABEL
    last = portal.get(f"/returns/{rid}/history").json()[-1]
    assert last["changes"] == ["label", "rma_id"] and last["note"] == "auto-approved"


def test_reject_needs_a_reason(portal):
    rid = create(portal)["id"]
    assert problem_field(portal.patch(f"/returns/{rid}", json={"status": "rejected"})) == "rejection_reason"
    r = portal.patch(f"/returns/{rid}", json={"status": "rejected", "rejection_reason": "customer on hold"})
    assert r.json()["rejection_reason"] == "customer on hold"


def test_refunded_needs_a_refund_in_the_orders_currency(portal):
    rid = create(portal)["id"]
    approve(portal, rid)
    url = f"/returns/{rid}"
    assert problem_field(portal.patch(url, json={"status": "refunded"})) == "refund"
    eur = {"amount": {"amount": 1000, "currency": "EUR"}, "credit_memo_id": "CM-000001"}
    assert problem_field(portal.patch(url, json={"status": "refunded", "refund": eur})) == "refund.amount.currency"
    negative = {"amount": {"amount": -1, "currency": "USD"}, "credit_memo_id": "CM-000001"}
    assert problem_field(portal.patch(url, json={"status": "refunded", "refund": negative})) == "refund.amount.amount"
    refund = {"amount": {"amount": 1000, "currency": "USD"}, "credit_memo_id": "CM-000001"}
    r = portal.patch(url, json={"status": "refunded", "refund": refund})
    assert r.status_code == 200 and r.json()["refund"] == refund


def test_patch_bad_input_names_the_field(portal):
    rid = create(portal)["id"]
    assert problem_field(portal.patch(f"/returns/{rid}", json={"status": "lost"})) == "status"
    assert problem_field(portal.patch(f"/returns/{rid}", json={})) == "status"
    assert problem_field(portal.patch(f"/returns/{rid}", json={"status": "approved", "label": {"carrier": "UPS"}})) == "label.tracking_code"


def test_regressions_are_accepted_and_recorded(portal, clock):
    rid = create(portal)["id"]
    approve(portal, rid)
    for status in ("in_transit", "received"):
        clock.advance(3600)
        assert portal.patch(f"/returns/{rid}", json={"status": status}).status_code == 200
    clock.advance(3600)
    r = portal.patch(f"/returns/{rid}", json={"status": "in_transit"}, headers={"X-Correlation-ID": "late-scan"})
    assert r.status_code == 200 and r.json()["status"] == "in_transit"
    history = portal.get(f"/returns/{rid}/history").json()
    assert [(h["from"], h["to"]) for h in history] == [
        (None, "requested"),
        ("requested", "approved"),
        ("approved", "in_transit"),
        ("in_transit", "received"),
        ("received", "in_transit"),
    ]
    assert [h["regression"] for h in history] == [False, False, False, False, True]
    last = history[-1]
    assert last["caller"] == "api-key" and last["source"] == "integration" and last["correlation_id"] == "late-scan"
    assert last["at"] == (DEFAULT_EPOCH + timedelta(hours=3)).isoformat().replace("+00:00", "Z")


def test_a_patch_with_nothing_new_is_a_no_op(portal, clock):
    rid = create(portal)["id"]
    first = approve(portal, rid).json()
    clock.advance(60)
    again = approve(portal, rid)
    assert again.status_code == 200 and again.json() == first  # updated_at unchanged
    assert portal.patch(f"/returns/{rid}", json={"status": "approved"}).json() == first
    assert len(portal.get(f"/returns/{rid}/history").json()) == 2
    # Same status with something new is recorded.
    new_label = {**LABEL, "tracking_code": "1ZRH0000000000002"}
    r = portal.patch(f"/returns/{rid}", json={"status": "approved", "label": new_label})
    assert r.json()["label"] == new_label
    last = portal.get(f"/returns/{rid}/history").json()[-1]
    assert (last["from"], last["to"], last["changes"]) == ("approved", "approved", ["label"])


# --- events, reset, determinism ------------------------------------------------------------


def test_listeners_hear_created_and_cancelled(portal, store):
    heard: list[tuple[str, dict]] = []
    store.listeners.append(lambda kind, data: heard.append((kind, data)))
    a = create(portal)
    assert heard == [("return.created", a)]
    approve(portal, a["id"])
    assert len(heard) == 1  # other moves announce nothing
    cancelled = portal.post(f"/returns/{a['id']}/cancel").json()
    kind, data = heard[-1]
    assert kind == "return.cancelled"
    assert data == {**cancelled, "return_id": a["id"], "cancelled_at": cancelled["updated_at"], "cancelled_by": "customer"}
    assert ReturnCancelled.model_validate(data).return_id == a["id"]  # the payload schema in simulators.events
    b = create(portal, order=_delivered_other())
    portal.patch(f"/returns/{b['id']}", json={"status": "cancelled"})  # cancelled by the merchant
    assert [k for k, _ in heard] == ["return.created", "return.cancelled", "return.created", "return.cancelled"]
    assert heard[-1][1]["cancelled_by"] == "integration"
    assert portal.patch(f"/returns/{b['id']}", json={"status": "cancelled"}).status_code == 200
    assert len(heard) == 4  # a no-op announces nothing


def test_reset_returns_to_seed_and_keeps_listeners(portal, store):
    heard = []
    store.listeners.append(lambda kind, data: heard.append(kind))
    create(portal)
    assert portal.post("/__admin/reset").status_code == 204
    assert portal.get("/returns").json() == [] and store.snapshot() == {"returns": [], "history": []}
    assert create(portal)["id"] == "RET-000001"
    assert heard == ["return.created", "return.created"]


def test_store_can_be_driven_directly(store):
    ret = store.create_return(ReturnRequest(**request_body()))
    assert ret.created_by == "customer"
    moved = store.update(ret.id, ReturnUpdate(status="rejected", rejection_reason="x"), CallContext("middleware", "RET-1", None))
    assert moved.status == "rejected" and store.history[ret.id][-1].caller == "middleware"


def _scripted_run() -> dict:
    clock = ManualClock(DEFAULT_EPOCH)
    portal = api_client(create_app(seed=SEED, clock=clock))
    for order in [o for o in MASTER.orders.values() if o.delivered_at is not None][:5]:
        clock.advance(17)
        rid = create(portal, order=order)["id"]
        approve(portal, rid)
        portal.patch(f"/returns/{rid}", json={"status": "in_transit"})
    assert portal.post("/returns/RET-000002/cancel").status_code == 409  # in transit: too late
    portal.patch("/returns/RET-000003", json={"status": "cancelled"})
    return portal.get("/__admin/state").json()


def test_same_seed_same_calls_same_state():
    first = _scripted_run()
    assert first == _scripted_run()
    assert len(first["returns"]) == 5 and len(first["history"]) == 5 * 3 + 1
