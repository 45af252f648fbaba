"""docs/CONTRACT.md tells the truth: every route of every fake and every event type is in it,
and the payloads the stores announce are the ones the event schemas describe."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from simulators.events import PAYLOADS, EventType, json_schemas
from simulators.serving import PORT_OFFSETS

CONTRACT = (Path(__file__).parent.parent / "docs" / "CONTRACT.md").read_text()


def _routes(system: str) -> list[tuple[str, str]]:
    app = importlib.import_module(f"simulators.{system}.app").create_app(seed=0)
    return [
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute) and not route.path.startswith(("/__admin", "/healthz"))
        for method in route.methods
    ]


@pytest.mark.parametrize("system", list(PORT_OFFSETS))
def test_every_route_is_documented(system):
    missing = [f"{m} {p}" for m, p in _routes(system) if f"`{p}`" not in CONTRACT]
    assert not missing, f"docs/CONTRACT.md does not mention: {missing}"


def test_every_event_type_is_documented_with_a_schema():
    schemas = json_schemas()
    for event in EventType:
        assert f"`{event.value}`" in CONTRACT
        assert schemas[event.value]["properties"]
    assert set(PAYLOADS) == set(EventType)


def test_announced_payloads_match_the_event_schemas():
    from simulators.returns_portal.app import create_app as portal_app
    from simulators.wms.app import create_app as wms_app
    from tests.conftest import api_client

    portal, wms = portal_app(seed=2), wms_app(seed=2)
    heard: list[tuple[str, dict]] = []
    for app in (portal, wms):
        app.state.system.store.listeners.append(lambda kind, data: heard.append((kind, data)))
    master = portal.state.system.master
    order = next(o for o in master.orders.values() if o.delivered_at is not None)
    email = master.customers[order.customer_id].email
    line = order.lines[0]
    client = api_client(portal)
    ret = client.post("/returns", json={"order_id": order.id, "customer_email": email, "resolution": "refund",
                                        "lines": [{"line_number": line.line_number, "quantity": 1, "reason": "size_fit"}]})
    assert ret.status_code == 201, ret.text
    assert client.post(f"/returns/{ret.json()['id']}/cancel").status_code == 200
    w = api_client(wms)
    receipt = w.post("/receipts", json={"site_id": order.site_id, "rma_id": "RMA-000001", "lines": [{"item_id": line.item_id, "quantity": 1}]})
    assert receipt.status_code == 201, receipt.text
    serials = {"serial_numbers": ["SN-1"]} if master.items[line.item_id].serial_controlled else {}
    inspection = w.post("/inspections", json={"receipt_id": receipt.json()["id"], "lines": [
        {"item_id": line.item_id, "quantity": 1, "condition": "new", "disposition": "restock", **serials}]})
    assert inspection.status_code == 201, inspection.text

    assert [kind for kind, _ in heard] == ["return.created", "return.cancelled", "receipt.completed", "inspection.completed"]
    for kind, data in heard:
        PAYLOADS[EventType(kind)].model_validate(data)
