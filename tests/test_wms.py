"""The WMS fake: expected receipts (ASNs), receipts (matched or blind), inspections, events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from simulators.clock import ManualClock
from simulators.seed import DEFAULT_EPOCH, master_data
from simulators.wms.app import create_app
from simulators.wms.store import InspectionRequest, ReceiptRequest
from tests.conftest import api_client

SEED = 7
MASTER = master_data(SEED)
SITE, OTHER_SITE = sorted(MASTER.sites)[:2]
PLAIN = next(i.id for i in MASTER.items.values() if not i.serial_controlled)
PLAIN2 = next(i.id for i in MASTER.items.values() if not i.serial_controlled and i.id != PLAIN)
SERIAL = next(i.id for i in MASTER.items.values() if i.serial_controlled)


@pytest.fixture
def app(clock):
    return create_app(seed=SEED, clock=clock)


@pytest.fixture
def wms(app):
    return api_client(app)


def asn_body(rma="RMA-000001", site=SITE, lines=None, **extra) -> dict:
    return {"rma_id": rma, "site_id": site, "lines": lines or [{"item_id": PLAIN, "quantity": 3}], **extra}


def post(client, path, body, status=201, **headers) -> dict:
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


def problem_field(r, status=422) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()["errors"][0]["field"]


def receive(client, lines=None, site=SITE, **ids) -> dict:
    return post(client, "/receipts", {"site_id": site, "lines": lines or [{"item_id": PLAIN, "quantity": 3}], **ids})


def inspect(client, receipt_id, lines, status=201):
    return client.post("/inspections", json={"receipt_id": receipt_id, "lines": lines})


def line(item=PLAIN, quantity=1, condition="new", disposition="restock", **extra) -> dict:
    return {"item_id": item, "quantity": quantity, "condition": condition, "disposition": disposition, **extra}


# --- sites and ASNs ------------------------------------------------------------------------


def test_sites_are_the_seeded_ones(wms):
    assert wms.get("/sites").json() == [s.model_dump(mode="json") for s in MASTER.sites.values()]


def test_create_expected_receipt(wms, clock):
    clock.advance(30)
    asn = post(wms, "/expected-receipts", asn_body(tracking_code="1ZRH1", expected_at="2027-01-02T00:00:00Z"), **{"X-Correlation-ID": "RET-000001"})
    assert asn["id"] == "ASN-000001" and asn["status"] == "open"
    assert asn["lines"] == [{"item_id": PLAIN, "quantity": 3, "received_quantity": 0}]
    assert asn["tracking_code"] == "1ZRH1" and asn["expected_at"] == "2027-01-02T00:00:00Z"
    assert asn["created_at"] == (DEFAULT_EPOCH + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    assert asn["created_by"] == "api-key" and asn["correlation_id"] == "RET-000001"
    assert wms.get("/expected-receipts/ASN-000001").json() == asn


def test_asns_are_not_deduplicated(wms):
    post(wms, "/expected-receipts", asn_body())
    post(wms, "/expected-receipts", asn_body())
    assert [a["id"] for a in wms.get("/expected-receipts", params={"rma_id": "RMA-000001"}).json()] == ["ASN-000001", "ASN-000002"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (asn_body(site="WH-NOWHERE"), "site_id"),
        (asn_body(lines=[{"item_id": "SKU-NOPE", "quantity": 1}]), "lines[0].item_id"),
        (asn_body(lines=[{"item_id": PLAIN, "quantity": 1}, {"item_id": PLAIN, "quantity": 2}]), "lines[1].item_id"),
        (asn_body(lines=[{"item_id": PLAIN, "quantity": 0}]), "lines[0].quantity"),
        (asn_body(rma="RET-000001"), "rma_id"),
        ({**asn_body(), "lines": []}, "lines"),
        ({**asn_body(), "priority": "high"}, "priority"),
    ],
)
def test_bad_asns_name_the_field_and_change_nothing(wms, store, body, field):
    assert problem_field(wms.post("/expected-receipts", json=body)) == field
    assert store.expected_receipts == {}


def test_asn_filters(wms):
    post(wms, "/expected-receipts", asn_body("RMA-000001"))
    post(wms, "/expected-receipts", asn_body("RMA-000002", site=OTHER_SITE))
    receive(wms, rma_id="RMA-000001")
    ids = lambda **p: [a["id"] for a in wms.get("/expected-receipts", params=p).json()]  # noqa: E731
    assert ids() == ["ASN-000001", "ASN-000002"]
    assert ids(site_id=OTHER_SITE) == ["ASN-000002"]
    assert ids(status="received") == ["ASN-000001"]
    assert ids(status="open") == ["ASN-000002"]
    assert problem_field(wms.get("/expected-receipts", params={"status": "lost"})) == "query.status"
    assert problem_field(wms.get("/expected-receipts", params={"rma": "RMA-000001"})) == "query.rma"


def test_unknown_ids_are_404(wms):
    for path in ("/expected-receipts/ASN-999999", "/receipts/RCV-999999", "/inspections/INS-999999"):
        assert problem_field_or_status(wms.get(path)) == 404, path


def problem_field_or_status(r) -> int:
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.status_code


def test_auth_is_required(app):
    from fastapi.testclient import TestClient

    assert TestClient(app).get("/sites").status_code == 401
    assert app.state.system.credentials.api_key.startswith("wk_")


# --- receipts ------------------------------------------------------------------------------


def test_receipt_matched_by_rma_completes_the_asn(wms):
    post(wms, "/expected-receipts", asn_body())
    rcv = receive(wms, rma_id="RMA-000001", tracking_code="1ZRH9")
    assert rcv["id"] == "RCV-000001"
    assert rcv["blind"] is False and rcv["expected_receipt_id"] == "ASN-000001"
    asn = wms.get("/expected-receipts/ASN-000001").json()
    assert asn["status"] == "received" and asn["receipt_ids"] == ["RCV-000001"]
    assert asn["lines"][0]["received_quantity"] == 3
    assert wms.get("/receipts/RCV-000001").json() == rcv


def test_partial_receipt_then_the_rest(wms):
    post(wms, "/expected-receipts", asn_body(lines=[{"item_id": PLAIN, "quantity": 3}, {"item_id": PLAIN2, "quantity": 1}]))
    receive(wms, lines=[{"item_id": PLAIN, "quantity": 2}], rma_id="RMA-000001")
    asn = wms.get("/expected-receipts/ASN-000001").json()
    assert asn["status"] == "partially_received"
    assert [l["received_quantity"] for l in asn["lines"]] == [2, 0]
    second = receive(wms, lines=[{"item_id": PLAIN, "quantity": 1}, {"item_id": PLAIN2, "quantity": 1}], rma_id="RMA-000001")
    assert second["expected_receipt_id"] == "ASN-000001"
    asn = wms.get("/expected-receipts/ASN-000001").json()
    assert asn["status"] == "received" and asn["receipt_ids"] == ["RCV-000001", "RCV-000002"]


def test_matched_by_tracking_code_when_no_rma(wms):
    post(wms, "/expected-receipts", asn_body(tracking_code="1ZRH42"))
    rcv = receive(wms, tracking_code="1ZRH42")
    assert rcv["expected_receipt_id"] == "ASN-000001" and rcv["rma_id"] == "RMA-000001"


def test_blind_receipts(wms):
    rcv = receive(wms, rma_id="RMA-000777", tracking_code="1ZRH77")
    assert rcv["blind"] is True and rcv["expected_receipt_id"] is None and rcv["rma_id"] == "RMA-000777"
    assert receive(wms)["rma_id"] is None  # nothing on the parcel at all
    # An ASN at another site does not match, nor does one already fully received.
    post(wms, "/expected-receipts", asn_body("RMA-000001", site=OTHER_SITE))
    assert receive(wms, rma_id="RMA-000001")["blind"] is True
    post(wms, "/expected-receipts", asn_body("RMA-000002"))
    assert receive(wms, rma_id="RMA-000002")["blind"] is False
    assert receive(wms, rma_id="RMA-000002")["blind"] is True  # the same parcel scanned in twice


def test_receipt_matches_the_oldest_waiting_asn(wms):
    post(wms, "/expected-receipts", asn_body())
    post(wms, "/expected-receipts", asn_body())
    assert receive(wms, rma_id="RMA-000001")["expected_receipt_id"] == "ASN-000001"
    assert receive(wms, rma_id="RMA-000001")["expected_receipt_id"] == "ASN-000002"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"site_id": "WH-NOWHERE", "lines": [{"item_id": PLAIN, "quantity": 1}]}, "site_id"),
        ({"site_id": SITE, "lines": [{"item_id": "SKU-NOPE", "quantity": 1}]}, "lines[0].item_id"),
        ({"site_id": SITE, "lines": []}, "lines"),
        ({"lines": [{"item_id": PLAIN, "quantity": 1}]}, "site_id"),
    ],
)
def test_bad_receipts_name_the_field(wms, store, body, field):
    assert problem_field(wms.post("/receipts", json=body)) == field
    assert store.receipts == {}


def test_receipt_filters(wms):
    receive(wms, rma_id="RMA-000001")
    receive(wms, rma_id="RMA-000002", site=OTHER_SITE)
    assert [r["id"] for r in wms.get("/receipts", params={"rma_id": "RMA-000002"}).json()] == ["RCV-000002"]
    assert [r["id"] for r in wms.get("/receipts", params={"site_id": SITE}).json()] == ["RCV-000001"]


# --- inspections ---------------------------------------------------------------------------


def test_inspection_with_split_dispositions(wms):
    post(wms, "/expected-receipts", asn_body())
    rcv = receive(wms, rma_id="RMA-000001")
    r = inspect(wms, rcv["id"], [line(quantity=2, lot="L-7"), line(quantity=1, condition="damaged", disposition="scrap")])
    assert r.status_code == 201, r.text
    ins = r.json()
    assert ins["id"] == "INS-000001" and ins["receipt_id"] == rcv["id"]
    assert ins["rma_id"] == "RMA-000001" and ins["site_id"] == SITE
    assert [(l["quantity"], l["disposition"], l["lot"]) for l in ins["lines"]] == [(2, "restock", "L-7"), (1, "scrap", None)]
    assert wms.get(f"/inspections/{ins['id']}").json() == ins
    assert [x["id"] for x in wms.get("/inspections", params={"rma_id": "RMA-000001"}).json()] == [ins["id"]]
    assert [x["id"] for x in wms.get("/inspections", params={"receipt_id": "RCV-999999"}).json()] == []


def test_inspection_of_a_blind_receipt(wms):
    rcv = receive(wms)
    ins = inspect(wms, rcv["id"], [line(quantity=3, condition="opened", disposition="quarantine")]).json()
    assert ins["rma_id"] is None and ins["site_id"] == SITE


def test_inspection_needs_a_known_receipt_and_item(wms, store):
    assert problem_field(inspect(wms, "RCV-999999", [line()])) == "receipt_id"
    rcv = receive(wms)
    assert problem_field(inspect(wms, rcv["id"], [line(), line(item=PLAIN2)])) == "lines[1].item_id"
    assert problem_field(inspect(wms, rcv["id"], [line(disposition="landfill")])) == "lines[0].disposition"
    assert problem_field(inspect(wms, rcv["id"], [line(condition="mint")])) == "lines[0].condition"
    assert store.inspections == {}


def test_no_more_inspected_than_received(wms, store):
    rcv = receive(wms)  # 3 units
    assert problem_field(inspect(wms, rcv["id"], [line(quantity=2), line(quantity=2, disposition="scrap")])) == "lines[1].quantity"
    assert inspect(wms, rcv["id"], [line(quantity=2)]).status_code == 201
    r = inspect(wms, rcv["id"], [line(quantity=2)])
    assert problem_field(r) == "lines[0].quantity"
    assert "only 3 were received" in r.json()["detail"]
    assert inspect(wms, rcv["id"], [line(quantity=1)]).status_code == 201
    assert len(store.inspections) == 2


def test_serial_controlled_items_need_one_serial_per_unit(wms):
    rcv = receive(wms, lines=[{"item_id": SERIAL, "quantity": 2}])
    assert problem_field(inspect(wms, rcv["id"], [line(SERIAL, 2)])) == "lines[0].serial_numbers"
    assert problem_field(inspect(wms, rcv["id"], [line(SERIAL, 2, serial_numbers=["S1"])])) == "lines[0].serial_numbers"
    assert problem_field(inspect(wms, rcv["id"], [line(SERIAL, 2, serial_numbers=["S1", "S1"])])) == "lines[0].serial_numbers"
    ins = inspect(wms, rcv["id"], [line(SERIAL, 2, serial_numbers=["S1", "S2"])])
    assert ins.status_code == 201 and ins.json()["lines"][0]["serial_numbers"] == ["S1", "S2"]


def test_plain_items_need_no_serials(wms):
    rcv = receive(wms)
    ins = inspect(wms, rcv["id"], [line(quantity=1)]).json()
    assert ins["lines"][0]["serial_numbers"] is None


# --- events, the floor, reset, determinism -------------------------------------------------


def test_listeners_hear_receipts_and_inspections(wms, store):
    heard: list[tuple[str, dict]] = []
    store.listeners.append(lambda kind, data: heard.append((kind, data)))
    post(wms, "/expected-receipts", asn_body())
    assert heard == []  # an ASN is not an event
    rcv = receive(wms, rma_id="RMA-000001")
    assert heard == [("receipt.completed", rcv)]
    ins = inspect(wms, rcv["id"], [line(quantity=3)]).json()
    assert heard[-1] == ("inspection.completed", ins)
    inspect(wms, rcv["id"], [line(quantity=1)])  # refused: nothing announced
    assert len(heard) == 2


def test_the_floor_calls_the_store_directly(store):
    rcv = store.create_receipt(ReceiptRequest(site_id=SITE, lines=[{"item_id": PLAIN, "quantity": 1}]))
    assert rcv.created_by == "warehouse" and rcv.blind
    ins = store.create_inspection(InspectionRequest(receipt_id=rcv.id, lines=[line()]))
    assert ins.created_by == "warehouse"


def test_reset_returns_to_seed_and_keeps_listeners(wms, store):
    heard = []
    store.listeners.append(lambda kind, data: heard.append(kind))
    post(wms, "/expected-receipts", asn_body())
    receive(wms)
    assert wms.post("/__admin/reset").status_code == 204
    assert store.snapshot() == {"expected_receipts": [], "receipts": [], "inspections": []}
    assert receive(wms)["id"] == "RCV-000001"
    assert heard == ["receipt.completed", "receipt.completed"]


def _scripted_run() -> dict:
    clock = ManualClock(DEFAULT_EPOCH)
    wms = api_client(create_app(seed=SEED, clock=clock))
    for n in range(1, 6):
        clock.advance(11)
        post(wms, "/expected-receipts", asn_body(f"RMA-{n:06d}", tracking_code=f"1ZRH{n}"))
        rcv = receive(wms, lines=[{"item_id": PLAIN, "quantity": n % 3 + 1}], tracking_code=f"1ZRH{n}")
        inspect(wms, rcv["id"], [line(quantity=1)])
    return wms.get("/__admin/state").json()


def test_same_seed_same_calls_same_state():
    first = _scripted_run()
    assert first == _scripted_run()
    assert [a["status"] for a in first["expected_receipts"]] == ["partially_received", "received", "partially_received", "partially_received", "received"]
