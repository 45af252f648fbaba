"""The fakes over real sockets: the fleet, lost responses, and the `returns-harness fakes` command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from simulators.serving import PORT_OFFSETS, FakeFleet, fleet_in_thread
from tests.test_fakekit import LABEL


@pytest.fixture(scope="module")
def fleet():
    with fleet_in_thread(seed=11, base_port=0) as fleet:
        yield fleet


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_every_fake_answers_on_its_own_port(fleet):
    assert set(fleet.fakes) == set(PORT_OFFSETS)
    ports = {httpx.URL(f.url).port for f in fleet.fakes.values()}
    assert len(ports) == 4
    for name, fake in fleet.fakes.items():
        r = httpx.get(f"{fake.url}/healthz")
        assert r.json() == {"status": "ok", "system": name}
        assert httpx.get(f"{fake.url}/openapi.json").json()["info"]["title"]


def test_each_fakes_api_docs_work_offline(fleet):
    """/docs is Swagger UI from the package: every file the page loads is served by the fake
    itself, none from another host (a CDN a machine without network cannot reach)."""
    import re

    for fake in fleet.fakes.values():
        page = httpx.get(f"{fake.url}/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower()
        assert not re.findall(r"https?://", page.text)
        loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"} <= set(loaded)
        for path in loaded:
            assert httpx.get(f"{fake.url}{path}").status_code == 200, path


def test_env_names_every_url_and_credential(fleet, tmp_path):
    env = dict(line.split("=", 1) for line in fleet.write_env(tmp_path / ".env").read_text().splitlines() if "=" in line)
    assert env["RH_SEED"] == "11"
    for name in ("ERP", "WMS", "CARRIER", "RETURNS_PORTAL"):
        assert env[f"RH_{name}_URL"].startswith("http://127.0.0.1:")
    assert env["RH_ERP_TOKEN_URL"].endswith("/oauth/token") and env["RH_ERP_CLIENT_SECRET"]
    token = httpx.post(
        env["RH_ERP_TOKEN_URL"],
        data={"grant_type": "client_credentials", "client_id": env["RH_ERP_CLIENT_ID"], "client_secret": env["RH_ERP_CLIENT_SECRET"]},
    ).json()["access_token"]
    assert httpx.get(f"{env['RH_ERP_URL']}/sales-orders/SO-000001", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    r = httpx.get(f"{env['RH_WMS_URL']}/sites", headers={"Authorization": f"Bearer {env['RH_WMS_API_KEY']}"})
    assert r.status_code == 200


def test_the_four_fakes_share_one_world_of_master_data(fleet):
    apps = {name: fake.system for name, fake in fleet.fakes.items()}
    assert len({id(s.master) for s in apps.values()}) == 1
    assert len({id(s.clock) for s in apps.values()}) == 1


def test_a_lost_response_breaks_the_connection_but_the_write_is_committed(fleet):
    carrier = fleet.fakes["carrier"]
    headers = {"Authorization": f"Bearer {carrier.credentials.api_key}", "Idempotency-Key": "lost-over-socket"}
    httpx.post(f"{carrier.url}/__admin/faults", json={"kind": "commit_then_lose", "path": "/labels", "method": "POST", "first_n": 1})
    try:
        with httpx.Client(base_url=carrier.url, headers=headers) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                client.post("/labels", json=LABEL)
            retry = client.post("/labels", json=LABEL)
        assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
        labels = [l for l in carrier.system.store.labels.values() if l.id == retry.json()["id"]]
        assert len(labels) == 1
        lost = httpx.get(f"{carrier.url}/__admin/journal", params={"idempotency_key": "lost-over-socket"}).json()["entries"]
        assert [e.get("lost") for e in lost] == [True, None]
    finally:
        httpx.delete(f"{carrier.url}/__admin/faults")


def _free_base_port() -> int:
    for base in range(20100, 40000, 10):
        socks = []
        try:
            for offset in PORT_OFFSETS.values():
                s = socket.socket()
                s.bind(("127.0.0.1", base + offset))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "simulators.cli", *args]


def test_fakes_command_serves_writes_env_and_stops_cleanly_on_ctrl_c(tmp_path: Path):
    base = _free_base_port()
    env_file = tmp_path / "fakes.env"
    proc = subprocess.Popen(
        _cli("fakes", "--seed", "4", "--base-port", str(base), "--env-file", str(env_file)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    try:
        _wait_for(lambda: env_file.exists() or proc.poll() is not None, 30, "the env file")
        assert proc.poll() is None, proc.stdout.read()
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        assert env["RH_ERP_URL"] == f"http://127.0.0.1:{base + 1}"
        assert env["RH_RETURNS_PORTAL_URL"] == f"http://127.0.0.1:{base + 4}"
        from simulators.runner import webhook_secret

        assert env["RH_WEBHOOK_SECRET"] == webhook_secret(4) and env["RH_CLOCK_URL"] == f"http://127.0.0.1:{base + 1}/clock"
        assert env_file.stat().st_mode & 0o077 == 0
        for key in ("RH_ERP_URL", "RH_WMS_URL", "RH_CARRIER_URL", "RH_RETURNS_PORTAL_URL"):
            assert httpx.get(f"{env[key]}/healthz").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert "Stopping the fakes" in out and "Traceback" not in out
    assert f"http://127.0.0.1:{base + 3}" in out


def test_the_command_says_its_version_and_completes_in_the_shell():
    done = subprocess.run(_cli("--version"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("returns-harness ")
    # Completion finds the user's shell from the process tree, which a test run may not have:
    # the options are offered, for a person at a shell to use.
    usage = subprocess.run(_cli("--help"), capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "120"})
    assert usage.returncode == 0 and "--install-completion" in usage.stdout and "--show-completion" in usage.stdout


def test_fakes_command_says_which_port_is_taken(tmp_path: Path):
    base = _free_base_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 2))
        busy.listen()
        done = subprocess.run(_cli("fakes", "--base-port", str(base), "--env-file", str(tmp_path / "e")), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"127.0.0.1:{base + 2}" in done.stderr and "wms" in done.stderr and "Traceback" not in done.stderr
    unknown = subprocess.run(_cli("fakes", "--host", "no-such-host.invalid", "--env-file", str(tmp_path / "e")), capture_output=True,
                             text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert unknown.returncode == 2 and "--host 'no-such-host.invalid': not an address of this machine" in unknown.stderr
    assert "--base-port" not in unknown.stderr and "Traceback" not in unknown.stderr


def _erp_token(erp) -> str:
    c = erp.credentials
    return httpx.post(f"{erp.url}/oauth/token", data={"grant_type": "client_credentials", "client_id": c.client_id,
                                                      "client_secret": c.client_secret}).json()["access_token"]


def test_a_body_cut_off_mid_request_leaves_no_trace_and_the_retry_succeeds_once(fleet):
    """A layer killed while sending a keyed POST: the fragment is no request, so the retry with
    the same key and the whole body is done exactly once (it used to meet 422 "key reused")."""
    erp = fleet.fakes["erp"]
    store = fleet.apps["erp"].state.system.store
    item = next(iter(fleet.master.items))
    site = next(iter(fleet.master.sites))
    body = orjson.dumps({"item_id": item, "site_id": site, "stock_status": "scrap", "quantity": 1, "reason": "scrapped"})
    token, key = _erp_token(erp), "cut-off-adjustment-1"
    port = httpx.URL(erp.url).port
    head = (f"POST /inventory-adjustments HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    before = len(store.adjustments)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + body[:10])
    journal = fleet.apps["erp"].state.system.journal
    aborted = _wait_for(lambda: [e for e in journal.find() if e.get("idempotency_key") == key], 5, "the cut-off request in the journal")
    assert aborted[0]["status"] == 499 and aborted[0]["aborted"] and len(store.adjustments) == before

    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key, "Content-Type": "application/json"}
    first = httpx.post(f"{erp.url}/inventory-adjustments", content=body, headers=headers)
    again = httpx.post(f"{erp.url}/inventory-adjustments", content=body, headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"] and len(store.adjustments) == before + 1


def test_the_journal_keeps_no_client_secret_or_token_and_tokens_are_unpredictable(fleet):
    erp = fleet.fakes["erp"]
    journal = fleet.apps["erp"].state.system.journal
    tokens = [_erp_token(erp) for _ in range(3)]
    assert len(set(tokens)) == 3
    entries = [e for e in journal.find() if e["path"] == "/oauth/token"]
    text = orjson.dumps(entries).decode()
    assert entries and erp.credentials.client_secret not in text and not any(t in text for t in tokens)
    # Another fleet with the same seed issues other tokens: they follow from no seed.
    with fleet_in_thread(seed=11, base_port=0) as twin:
        assert _erp_token(twin.fakes["erp"]) not in tokens


def test_a_body_over_a_megabyte_is_refused_413_without_reading_it_all(fleet):
    erp = fleet.fakes["erp"]
    token = _erp_token(erp)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": "huge-1"}
    store = fleet.apps["erp"].state.system.store
    before = len(store.credit_memos)
    huge = httpx.post(f"{erp.url}/credit-memos", content=b"[" + b"0," * 600_000 + b"0]", headers=headers)
    assert huge.status_code == 413 and huge.headers["content-type"].startswith("application/problem+json")
    # Declared too large: refused at once, before a byte of the body is read.
    with socket.create_connection(("127.0.0.1", httpx.URL(erp.url).port)) as sock:
        sock.sendall(f"POST /credit-memos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    assert len(store.credit_memos) == before


def test_the_admin_api_beyond_loopback_wants_the_fleets_token(tmp_path):
    with fleet_in_thread(seed=3, host="0.0.0.0", base_port=0) as wide:
        port = httpx.URL(wide.fakes["erp"].url).port
        admin = f"http://127.0.0.1:{port}/__admin/faults"
        refused = httpx.get(admin)
        assert refused.status_code == 401 and "admin token" in refused.json()["detail"]
        assert httpx.get(admin, headers={"Authorization": "Bearer guess"}).status_code == 401
        assert httpx.get(admin, headers={"Authorization": f"Bearer {wide.admin_token}"}).status_code == 200
        assert "RH_ADMIN_TOKEN" not in wide.write_env(tmp_path / ".env").read_text()  # a layer has no need of it


def test_the_admin_api_on_loopback_answers_loopback_clients_only(fleet):
    from fastapi.testclient import TestClient

    app = fleet.apps["wms"]
    assert fleet.admin_token is None
    assert httpx.get(f"{fleet.fakes['wms'].url}/__admin/faults").status_code == 200
    # The admin URL itself (what `fakes` prints) lists what it offers.
    offered = {(e["method"], e["path"]) for e in httpx.get(f"{fleet.fakes['wms'].url}/__admin").json()["endpoints"]}
    assert {("GET", "/__admin/journal"), ("POST", "/__admin/faults"), ("POST", "/__admin/reset")} <= offered
    remote = TestClient(app, client=("192.0.2.7", 40000))  # a documentation address: nothing is sent anywhere
    assert remote.get("/__admin/faults").status_code == 403 and remote.post("/__admin/reset").status_code == 403
    assert remote.get("/__admin").status_code == 403


def test_random_secrets_make_every_credential_unguessable(monkeypatch):
    from simulators.fakekit import auth
    from simulators.runner import webhook_secret

    def credentials() -> list[str]:
        apps = FakeFleet(4).apps.values()
        return [v for app in apps for v in (app.state.system.credentials.api_key, app.state.system.credentials.client_secret) if v]

    seeded = (credentials(), webhook_secret(4))
    assert seeded == (credentials(), webhook_secret(4))  # fixed by the seed: configure a layer once
    monkeypatch.setattr(auth, "_salt", "")
    auth.random_secrets()
    random = (credentials(), webhook_secret(4))
    assert len(seeded[0]) == len(random[0]) == 4 and not set(seeded[0]) & set(random[0]) and seeded[1] != random[1]
