"""The machinery every fake shares, exercised through the carrier (the smallest fake)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from simulators.carrier.app import create_app
from simulators.clock import ManualClock
from simulators.seed import DEFAULT_EPOCH
from tests.conftest import api_client

LABEL = {
    "rma_id": "RMA-000001",
    "from_address": {"street": "1 Main St", "city": "Columbus", "region": "OH", "postal_code": "43210"},
    "to_site_id": "WH-EAST",
    "parcel": {"weight_g": 800},
}


def add_fault(client, **rule) -> dict:
    r = client.post("/__admin/faults", json=rule)
    assert r.status_code == 201, r.text
    return r.json()


def journal(client, **params) -> list[dict]:
    r = client.get("/__admin/journal", params=params)
    assert r.status_code == 200, r.text
    return r.json()["entries"]


# --- journal -------------------------------------------------------------------------------


def test_journal_records_what_matters(carrier):
    carrier.post("/labels", json=LABEL, headers={"X-Correlation-ID": "RET-000042", "Idempotency-Key": "k1"})
    [entry] = journal(carrier, method="POST")
    assert entry["path"] == "/labels" and entry["route"] == "/labels"
    assert entry["status"] == 201
    assert entry["correlation_id"] == "RET-000042" and entry["idempotency_key"] == "k1"
    assert entry["body"]["rma_id"] == "RMA-000001"
    assert entry["response"]["id"] == "LBL-000001"
    assert entry["principal"] == "api-key"


def test_journal_filters(carrier):
    carrier.post("/labels", json=LABEL, headers={"X-Correlation-ID": "RET-1"})
    carrier.post("/labels", json={"rma_id": "bad"}, headers={"X-Correlation-ID": "RET-2"})
    carrier.get("/labels/LBL-999999")
    assert [e["status"] for e in journal(carrier, status="4xx")] == [422, 404]
    assert [e["status"] for e in journal(carrier, status="201")] == [201]
    assert [e["correlation_id"] for e in journal(carrier, correlation_id="RET-2")] == ["RET-2"]
    assert len(journal(carrier, path="/labels/*")) == 1
    first = journal(carrier)[0]["seq"]
    assert len(journal(carrier, since=first)) == 2
    assert carrier.get("/__admin/journal", params={"status": "abc"}).status_code == 422


def test_journal_is_bounded_and_spills_to_disk(tmp_path):
    app = create_app(seed=1, journal_capacity=50, spill_dir=tmp_path)
    client = api_client(app)
    for _ in range(200):
        client.get("/labels")
    j = app.state.system.journal
    assert len(j) == 50 and j.spilled == 150
    j.flush()
    assert sum(1 for _ in (tmp_path / "carrier-journal.jsonl").open()) == 150
    assert len(j.find(include_spilled=True)) == 200
    summary = client.get("/__admin/journal/summary").json()
    assert summary == [{"method": "GET", "route": "/labels", "status": 200, "count": 200}]


def test_journal_without_spill_dir_only_counts_evicted_entries():
    app = create_app(seed=1, journal_capacity=10)
    client = api_client(app)
    for _ in range(30):
        client.get("/labels")
    page = client.get("/__admin/journal", params={"include_spilled": True}).json()
    assert page["in_memory"] == 10 and page["spilled"] == 20 and len(page["entries"]) == 10


# --- errors and auth ------------------------------------------------------------------------


def test_errors_are_problem_json_naming_the_field(carrier):
    r = carrier.post("/labels", json={**LABEL, "parcel": {"weight_g": -5}})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"] == [{"field": "parcel.weight_g", "message": "Input should be greater than 0"}]
    r = carrier.post("/labels", content=b'{"rma_id": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    assert carrier.get("/labels").json() == []  # bad input changed nothing


def test_unknown_route_and_method(carrier):
    r = carrier.get("/no-such-thing")
    assert r.status_code == 404 and r.json()["title"] == "Not found"
    r = carrier.put("/labels", json={})
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [(None, "Missing Authorization"), ("Basic abc", "must be 'Bearer"), ("Bearer nope", "Unknown access token")],
)
def test_auth_refuses_with_a_reason(carrier_app, authorization, detail):
    client = api_client(carrier_app)
    del client.headers["Authorization"]
    headers = {"Authorization": authorization} if authorization else {}
    r = client.get("/labels", headers=headers)
    assert r.status_code == 401
    assert detail in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")


# --- idempotency ----------------------------------------------------------------------------


def test_same_key_same_body_replays_the_first_response(carrier, carrier_app):
    first = carrier.post("/labels", json=LABEL, headers={"Idempotency-Key": "abc"})
    again = carrier.post("/labels", json=LABEL, headers={"Idempotency-Key": "abc"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(carrier_app.state.system.store.labels) == 1
    assert journal(carrier)[-1]["replayed"] is True


def test_same_key_other_body_is_422_and_writes_nothing(carrier, carrier_app):
    carrier.post("/labels", json=LABEL, headers={"Idempotency-Key": "abc"})
    r = carrier.post("/labels", json={**LABEL, "rma_id": "RMA-000002"}, headers={"Idempotency-Key": "abc"})
    assert r.status_code == 422 and "different request" in r.json()["detail"]
    assert len(carrier_app.state.system.store.labels) == 1


def test_without_a_key_every_post_writes(carrier, carrier_app):
    carrier.post("/labels", json=LABEL)
    carrier.post("/labels", json=LABEL)
    assert len(carrier_app.state.system.store.labels) == 2


def test_keys_are_scoped_per_caller_and_bounded_in_length(carrier):
    assert carrier.post("/labels", json=LABEL, headers={"Idempotency-Key": "x" * 256}).status_code == 400


def test_same_key_in_flight_is_409(carrier_app):
    add_fault(api_client(carrier_app), kind="latency", path="/labels", method="POST", latency_ms=200)
    auth = api_client(carrier_app).headers["authorization"]

    async def both():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=carrier_app), base_url="http://t") as c:
            send = lambda: c.post("/labels", json=LABEL, headers={"Authorization": auth, "Idempotency-Key": "same"})  # noqa: E731
            return await asyncio.gather(send(), send())

    statuses = sorted(r.status_code for r in asyncio.run(both()))
    assert statuses == [201, 409]
    assert len(carrier_app.state.system.store.labels) == 1


def test_a_5xx_is_not_remembered_so_the_retry_goes_through(carrier, carrier_app):
    add_fault(carrier, kind="error", path="/labels", method="POST", status=503, first_n=1)
    assert carrier.post("/labels", json=LABEL, headers={"Idempotency-Key": "k"}).status_code == 503
    assert carrier.post("/labels", json=LABEL, headers={"Idempotency-Key": "k"}).status_code == 201
    assert len(carrier_app.state.system.store.labels) == 1


# --- fault hooks ----------------------------------------------------------------------------


def test_error_fault_first_n_then_heals(carrier):
    rule = add_fault(carrier, kind="error", path="/labels", method="GET", status=502, first_n=2)
    assert [carrier.get("/labels").status_code for _ in range(4)] == [502, 502, 200, 200]
    entries = journal(carrier, status="502")
    assert [e["fault"] for e in entries] == [rule["id"], rule["id"]]
    [listed] = carrier.get("/__admin/faults").json()
    assert listed["matched"] == 4 and listed["fired"] == 2


def test_probability_faults_repeat_exactly_for_the_same_seed():
    def pattern(seed):
        client = api_client(create_app(seed=seed))
        add_fault(client, kind="error", path="/labels", probability=0.3)
        return [client.get("/labels").status_code for _ in range(60)]

    first = pattern(5)
    assert first == pattern(5)
    assert first != pattern(6)
    assert 5 <= first.count(500) <= 35


def test_outage_window_in_business_time_with_retry_after():
    clock = ManualClock(time_scale=60)  # one wall second is a simulated minute
    client = api_client(create_app(seed=1, clock=clock))
    start = DEFAULT_EPOCH + timedelta(hours=9)
    add_fault(client, kind="outage", active_from=start.isoformat(), active_until=(start + timedelta(hours=2)).isoformat())
    assert client.get("/labels").status_code == 200
    clock.advance(9.5 * 3600)
    r = client.get("/labels")
    assert r.status_code == 503 and r.json()["title"] == "Service unavailable"
    assert r.headers["retry-after"] == "90"  # 90 simulated minutes left = 90 wall seconds
    clock.advance(3600 * 2)
    assert client.get("/labels").status_code == 200


def test_rate_limit_answers_429_with_retry_after(carrier):
    add_fault(carrier, kind="rate_limit", path="/labels", limit=3, per_s=60)
    statuses = [carrier.get("/labels") for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    assert 1 <= int(statuses[3].headers["retry-after"]) <= 60


def test_concurrency_limit(carrier_app):
    client = api_client(carrier_app)
    add_fault(client, kind="latency", path="/labels", latency_ms=200)
    add_fault(client, kind="concurrency_limit", max_concurrent=2)
    auth = client.headers["authorization"]

    async def five():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=carrier_app), base_url="http://t") as c:
            return await asyncio.gather(*(c.get("/labels", headers={"Authorization": auth}) for _ in range(5)))

    statuses = sorted(r.status_code for r in asyncio.run(five()))
    assert statuses == [200, 200, 429, 429, 429]


def test_latency_fault_is_journaled(carrier):
    add_fault(carrier, kind="latency", path="/labels", latency_ms=20)
    carrier.get("/labels")
    assert journal(carrier)[-1]["latency_ms"] == 20


def test_commit_then_lose_with_delay_times_out_the_client_but_commits(carrier_app):
    client = api_client(carrier_app)
    add_fault(client, kind="commit_then_lose", path="/labels", method="POST", lose="delay", delay_ms=2000, first_n=1)
    auth = client.headers["authorization"]

    async def call():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=carrier_app), base_url="http://t") as c:
            with pytest.raises(TimeoutError):  # the client gives up, as one with a 0.3 s timeout would
                await asyncio.wait_for(c.post("/labels", json=LABEL, headers={"Authorization": auth, "Idempotency-Key": "lost-1"}), 0.3)
            return await c.post("/labels", json=LABEL, headers={"Authorization": auth, "Idempotency-Key": "lost-1"})

    retry = asyncio.run(call())
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert list(carrier_app.state.system.store.labels) == ["LBL-000001"]


def test_bad_fault_rules_are_refused_naming_the_field(carrier):
    r = carrier.post("/__admin/faults", json={"kind": "meteor"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"
    r = carrier.post("/__admin/faults", json={"kind": "error", "probability": 2})
    assert r.json()["errors"][0]["field"] == "probability"
    r = carrier.post("/__admin/faults", json={"kind": "error", "surprise": 1})
    assert r.json()["errors"][0]["field"] == "surprise"
    assert carrier.get("/__admin/faults").json() == []


def test_faults_can_be_removed_and_reset_restores_the_seeded_state(carrier):
    rule = add_fault(carrier, kind="error", path="/labels")
    assert carrier.get("/labels").status_code == 500
    assert carrier.delete(f"/__admin/faults/{rule['id']}").status_code == 204
    assert carrier.delete(f"/__admin/faults/{rule['id']}").status_code == 404
    carrier.post("/labels", json=LABEL)
    assert carrier.post("/__admin/reset").status_code == 204
    assert carrier.get("/labels").json() == []
    assert carrier.get("/__admin/state").json() == {"labels": [], "trackers": []}


def test_unknown_or_repeated_query_parameters_are_refused(carrier):
    r = carrier.get("/labels", params={"rma": "RMA-000001"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.rma"
    assert "rma_id" in r.json()["errors"][0]["message"]
    r = carrier.get("/labels?rma_id=RMA-1&rma_id=RMA-2")
    assert r.status_code == 422 and "more than once" in r.json()["detail"]


def test_token_expiry_fault_expires_the_callers_token_and_a_new_one_works():
    from simulators.erp.app import create_app as erp_app

    app = erp_app(seed=1)
    client = api_client(app)
    add_fault(client, kind="token_expiry", path="/sales-orders/*", first_n=1)
    r = client.get("/sales-orders/SO-000001")
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "expired" in r.json()["detail"]
    assert client.get("/customers").status_code == 401  # the token stays expired
    assert api_client(app).get("/sales-orders/SO-000001").status_code == 200  # a fresh token works


def test_idempotency_keys_expire_after_24_hours_and_are_bounded_in_number():
    from simulators.fakekit.idempotency import IdempotencyStore

    clock = ManualClock()
    store = IdempotencyStore(clock, max_keys=3)
    for key in "abcd":
        assert store.begin("p", key, "print") is None
        store.complete("p", key, 201, [], b"{}")
    assert len(store) == 3  # the oldest key ("a") made room
    assert store.begin("p", "a", "print") is None  # forgotten, so executed again
    clock.advance(24 * 3600 + 1)
    assert store.begin("p", "b", "print") is None and len(store) == 1


def test_frozen_documents_are_serialised_once_and_forgotten_with_them():
    import gc

    from simulators.domain import Money
    from simulators.fakekit.routes import _FROZEN_JSON, document_json

    money = Money(amount=1999, currency="USD")
    assert document_json(money) == b'{"amount":1999,"currency":"USD"}'
    assert document_json(money) is document_json(money)  # the same bytes, not serialised again
    key = id(money)
    assert key in _FROZEN_JSON
    del money
    gc.collect()
    assert key not in _FROZEN_JSON
