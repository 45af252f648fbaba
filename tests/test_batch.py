"""The batch-file channel: the WMS's facts exported as CSV files to the harness's own SFTP
server, picked up by the reference; a file cut short must be refused whole.

Needs nothing but the package (the SFTP server is embedded, on loopback)."""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import asyncssh
import orjson
import pytest
import yaml

from reference_middleware.batch import BadFile, records
from simulators.channels.batch import BatchChannel, _csv
from simulators.faults import SIGNATURE_FAULTS
from simulators.oracle import query
from simulators.scenario import BatchChannel as BatchSettings
from simulators.scenario import ScenarioError, load, parse
from tests.channel_runs import side_by_side


def short_batch() -> dict:
    """The shipped `batch-files`, a day of it, with cut and twice-exported files often enough."""
    scenario = load("batch-files").model_dump(mode="json")
    scenario["volumes"].update(days=1, max_returns=30)
    scenario["channels"]["batch"].update(truncated_rate=0.35, duplicate_file_rate=0.3)
    return scenario


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """The correct reference and the one that books truncated files, side by side."""
    return side_by_side(tmp_path_factory.mktemp("batch"), short_batch(),
                        [("correct",), ("accepts", "--defect", "accepts-truncated-batch")])


def _checks(verdict: dict) -> dict[str, dict]:
    return {c["name"]: c for c in verdict["checks"]}


def test_the_reference_picks_up_the_files_and_refuses_the_cut_ones(runs):
    path, verdict = runs["correct"]
    checks = _checks(verdict)
    assert verdict["ok"], [(n, c["violations"][:2]) for n, c in checks.items() if c["valid"] is False]
    cut = checks["truncated-file-refused"]
    assert cut["valid"] is True and cut["counts"]["ok"] >= 3 and cut["exposure"]["batch files cut short"] >= 2
    # Every file was moved by the layer: the cut ones to rejected, the others to archive.
    ended = dict(query(path / "run", "SELECT truncated, list(DISTINCT ended_in) FROM batch_records GROUP BY ALL"))
    assert ended == {True: ["rejected"], False: ["archive"]}
    # A record of a cut file was answered "truncated" and went again in a later, complete file.
    again = query(path / "run", """
        SELECT count(*) FROM deliveries d JOIN deliveries later USING (event_id)
        WHERE d.fault = 'truncated' AND d.status IS NULL AND later.attempt > d.attempt AND later.status = 202""")
    assert again[0][0] >= cut["counts"]["ok"]
    files = verdict["coverage"]["files"]
    assert files["cut short"] >= 2 and files["exported twice"] >= 1 and files["exported"] > files["cut short"]
    # No signature travels with a file, nor a record malformed on its own.
    events = verdict["coverage"]["events"]
    assert all(events["inspection.completed"][k] is None for k in (*SIGNATURE_FAULTS, "malformed"))
    assert events["inspection.completed"]["duplicate"] > 0  # the files exported twice
    env = (path / ".env.fakes").read_text()
    assert "RH_SFTP_PORT=" in env and "RH_SFTP_HOST_KEY=ssh-ed25519 " in env and "RH_BATCH_REJECTED=/wms/rejected" in env


def test_a_layer_that_books_truncated_files_fails_only_that_check(runs):
    _, verdict = runs["accepts"]
    failed = {name for name, c in _checks(verdict).items() if c["valid"] is False}
    assert failed == {"truncated-file-refused"}
    messages = [v["message"] for v in _checks(verdict)["truncated-file-refused"]["violations"]]
    assert any("was left in archive, not moved to rejected" in m for m in messages)
    assert any("was acted on at" in m and "before a complete file carried it" in m for m in messages)


def test_the_run_leaves_no_folder_and_no_password_behind(runs):
    path, verdict = runs["correct"]
    assert verdict["summary"]["run_id"] and not list(Path(tempfile.gettempdir()).glob(f"rh-sftp-{verdict['summary']['run_id']}-*"))
    password = next(line.split("=", 1)[1] for line in (path / ".env.fakes").read_text().splitlines()
                    if line.startswith("RH_SFTP_PASSWORD="))
    for name in ("verdict.json", "report.html", "junit.xml"):
        assert password not in (path / name).read_text()


def test_a_complete_export_reads_back_and_a_cut_one_is_refused_whole():
    rows = [("receipt.completed", f"evt_{n}", "2027-01-01T02:00:00Z", "RET-1", orjson.dumps({"lines": [n, ","]}).decode())
            for n in range(3)]
    content = _csv(rows)
    assert [tuple(r) for r in records(content)] == rows
    lines = content.decode().splitlines()
    assert lines[0] == "record_type,event_id,occurred_at,correlation_id,data" and lines[-1] == "TRAILER,3"
    with pytest.raises(BadFile, match="expected the trailer"):
        records(content[:content.rindex(b"TRAILER")])
    with pytest.raises(BadFile, match="the trailer counts 4 records, the file holds 3"):
        records(content.replace(b"TRAILER,3", b"TRAILER,4"))
    with pytest.raises(BadFile, match="line 1: expected the header"):
        records(b"id,type\n" + content)


def _channel(tmp_path: Path, **settings) -> BatchChannel:
    return BatchChannel(BatchSettings(**settings), "t1", seed=1, epoch=datetime(2027, 1, 1, 9, 30, tzinfo=UTC), now_sim=lambda: 0.0)


def test_exports_happen_at_their_slots_in_business_time(tmp_path):
    channel = _channel(tmp_path, every_hours=6, at_hour=2)
    # The epoch is 09:30: slots at 14:00, 20:00, 02:00 ... as simulated seconds from it.
    assert channel.slot("sftp://x", 0) == 4.5 * 3600
    assert channel.slot("sftp://x", 4.5 * 3600) == 4.5 * 3600
    assert channel.slot("sftp://x", 4.5 * 3600 + 1) == 10.5 * 3600
    channel.remove()


def test_the_sftp_server_lets_in_only_its_user_and_shows_a_whole_file_or_none(tmp_path):
    async def scenario() -> None:
        channel = _channel(tmp_path)
        await channel.open()
        env = channel.env()
        trusted = asyncssh.import_known_hosts(f"[127.0.0.1]:{channel.port} {env['RH_SFTP_HOST_KEY']}\n")
        try:
            with pytest.raises(asyncssh.PermissionDenied):
                await asyncssh.connect("127.0.0.1", channel.port, username=env["RH_SFTP_USER"], password="wrong",
                                       known_hosts=trusted, client_keys=None, agent_path=None)
            event = {"id": "evt_1", "type": "receipt.completed", "occurred_at": "2027-01-01T02:00:00Z",
                     "correlation_id": "RET-1", "data": {"id": "RCT-1"}}
            answer = await channel.send(channel.url, {}, orjson.dumps(event), 5.0)
            assert answer.status == 202 and not answer.by_layer
            async with asyncssh.connect("127.0.0.1", channel.port, username=env["RH_SFTP_USER"], password=env["RH_SFTP_PASSWORD"],
                                        known_hosts=trusted, client_keys=None, agent_path=None) as conn:
                async with conn.start_sftp_client() as sftp:
                    (name,) = set(await sftp.listdir(env["RH_BATCH_INBOX"])) - {".", ".."}  # no ".part" beside it
                    assert name.startswith("wms-returns-") and name.endswith("-t1.csv")
                    async with sftp.open(f"{env['RH_BATCH_INBOX']}/{name}", "rb") as f:
                        rows = list(csv.reader(io.StringIO((await f.read()).decode())))
                    assert rows[1][:4] == ["receipt.completed", "evt_1", "2027-01-01T02:00:00Z", "RET-1"] and rows[-1] == ["TRAILER", "1"]
                    assert set(await sftp.listdir("/wms")) - {".", ".."} == {"archive", "outbound", "rejected"}
                with pytest.raises(asyncssh.ChannelOpenError):  # SFTP only: no shell, no command
                    await conn.run("ls /")
        finally:
            await channel.close()
            channel.remove()
        assert not channel.root.exists()

    asyncio.run(scenario())


def test_a_fact_goes_by_one_channel_only():
    spec = load("batch-files").model_dump(mode="json")
    spec["channels"]["broker"] = {"events": ["inspection.completed"]}
    with pytest.raises(ScenarioError, match="batch.events: inspection.completed already go by the broker"):
        parse(yaml.safe_dump(spec), "test.yaml")
    spec["channels"] = {"batch": {"every_hours": 0}}
    with pytest.raises(ScenarioError, match="every_hours"):
        parse(yaml.safe_dump(spec), "test.yaml")
