"""Shared fixtures: each fake in-process, with a client that already carries its credentials."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def api_client(app, **headers) -> TestClient:
    """A client for a fake app, authenticated the way an integration layer would be."""
    system = app.state.system
    client = TestClient(app)
    creds = system.credentials
    if creds.api_key:
        client.headers["Authorization"] = f"Bearer {creds.api_key}"
    else:
        r = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    client.headers.update(headers)
    return client


@pytest.fixture
def clock():
    """Business time that moves only when a test says so (``clock.advance(seconds)``)."""
    from simulators.clock import ManualClock

    return ManualClock()


@pytest.fixture
def store(app):
    """The store behind the module's ``app`` fixture."""
    return app.state.system.store


@pytest.fixture
def carrier_app():
    from simulators.carrier.app import create_app

    return create_app(seed=7)


@pytest.fixture
def carrier(carrier_app) -> TestClient:
    return api_client(carrier_app)


# Runs started early (tests/early_runs.py), beside tests that leave a core idle: (the fixture of
# the tests they wait for, None to start with the session; the fixture of the tests that collect
# them; the function of those tests' module that starts them). The oracle's side-by-side runs
# start with the session, beside the channel runs and the unit tests. The chaos runs wait on the
# layer's own wall time (its backoffs, its restarts after the kills) for 80 s at under one core;
# they start after the oracle's tests, whose lone slow-defect run is timed on a quiet machine,
# and the tests that judge them go last.
EARLY = ((None, "verdicts", "start_side_by_side"),
         ("verdicts", "chaos_runs", "start_live_runs"))
GO_LAST = "chaos_runs"
_BEGUN = pytest.StashKey[set]()  # the starters already called this session


def _using(items, fixture: str) -> list[int]:
    return [n for n, item in enumerate(items) if fixture in getattr(item, "fixturenames", ())]


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: GO_LAST in getattr(item, "fixturenames", ()))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def early_runs(tmp_path_factory):
    """Runs started before the tests that judge them; killed at the session's end if nobody collected them."""
    from tests.early_runs import EarlyRuns

    runs = EarlyRuns(tmp_path_factory.mktemp("early"))
    yield runs
    runs.stop()


@pytest.fixture(scope="module", autouse=True)
def _start_early_runs(request):
    items, begun = request.session.items, request.session.stash.setdefault(_BEGUN, set())
    here = next(n for n, item in enumerate(items) if item.module is request.module)
    for after, fixture, starter in EARLY:
        needing = _using(items, fixture)
        if starter not in begun and needing and (after is None or here > max(_using(items, after), default=-1)):
            begun.add(starter)
            getattr(items[needing[0]].module, starter)(request.getfixturevalue("early_runs"))


REFERENCE_SEED = 5


@pytest.fixture(scope="session")
def reference_fleet():
    """The four fakes on loopback, shared by the reference's tests (each takes its own orders)."""
    from simulators.serving import fleet_in_thread

    with fleet_in_thread(REFERENCE_SEED, base_port=0) as fleet:
        yield fleet


@pytest.fixture(scope="session")
def reference_orders(reference_fleet):
    """Delivered orders, eligible or past the window, handed out once each across the session."""
    from tests.reference_script import Script

    script = Script(reference_fleet, None, REFERENCE_SEED)
    return {"eligible": script.orders(eligible=True), "late": script.orders(eligible=False)}
