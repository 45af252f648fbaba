"""The reference survives being killed: its inbox and jobs are durable, on SQLite and on
PostgreSQL. The PostgreSQL case needs the server on 127.0.0.1:5432 (trust auth, user
postgres); the fixture starts it when it is down and skips if it cannot.
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import subprocess
import uuid

import pytest

from tests.conftest import REFERENCE_SEED as SEED
from tests.reference_process import ReferenceProcess, wait_until
from tests.reference_script import Script, approved, through_inspection

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def fleet(reference_fleet):
    return reference_fleet


@pytest.fixture
def orders(reference_orders):
    """Shared with every reference test, so that no two runs return the same order."""
    return reference_orders["eligible"]


def _postgres_up() -> bool:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


@pytest.fixture
def postgres_url():
    """A fresh database on the machine's PostgreSQL, dropped afterwards."""
    import psycopg

    if not _postgres_up() and shutil.which("pg_ctlcluster"):
        for version in glob.glob("/etc/postgresql/*"):
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version.rsplit("/", 1)[1], "main", "start"],
                           capture_output=True, timeout=60, check=False)
        with contextlib.suppress(TimeoutError):
            wait_until(_postgres_up, 30, interval_s=0.5, what="PostgreSQL")
    if not _postgres_up():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432 and could not be started")
    name = f"rh_reference_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def test_killed_with_work_pending_and_in_flight_it_restarts_losing_and_doubling_nothing(fleet, orders, tmp_path, database):
    ref = ReferenceProcess(tmp_path, database=database)
    ref.start(fleet.env())
    ref.wait_healthy()
    script = Script(fleet, ref, SEED)
    try:
        # One return's credit memo is in flight (the ERP takes 3 s to answer) when the kill comes...
        in_flight = approved(script, next(orders))
        slow = script.add_fault("erp", kind="latency", method="POST", path="/credit-memos", latency_ms=3000)
        through_inspection(script, in_flight)
        erp = f"{script.env['RH_ERP_URL']}/__admin/faults"
        wait_until(lambda: any(r["id"] == slow["id"] and r["fired"] for r in script.http.get(erp).json()), 30, what="the memo in flight")
        # ...and three new returns wait out an ERP outage, their jobs pending with retries.
        script.add_fault("erp", kind="outage", path="/return-authorizations*", retry_after_s=1)
        pending = [script.new_return(next(orders)) for _ in range(3)]
        for ret in pending:
            assert script.send(script.created(ret)).status_code == 200
        wait_until(lambda: script.metric("reference_retries") >= 3, 30, what="the pending returns retried")

        ref.kill()
        script.heal()
        ref.start()
        ref.wait_healthy()

        script.wait_status(in_flight["id"], "closed")
        for ret in pending:
            script.wait_status(ret["id"], "approved")
        for ret in [in_flight, *pending]:
            assert len(script.rmas(ret["id"])) == 1
        rma = script.rmas(in_flight["id"])[0]["id"]
        assert len(script.memos(rma)) == 1
        units = sum(line["quantity"] for line in in_flight["lines"])
        assert sum(a["quantity"] for a in script.adjustments(rma)) == units
    finally:
        script.heal()
        ref.stop()
        script.close()
