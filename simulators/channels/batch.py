"""The batch-file channel: WMS facts exported as CSV files to an SFTP server the harness runs.

Older WMSs hand their day over as a flat file. The world's deliverer hands this transport a fact
as it would POST a webhook; the transport holds it for the next export (``slot``: the WMS exports
at set business times, ``at_hour`` then every ``every_hours``), and every fact due at one export
goes into one file: a header row, a row per fact, a trailer row with the record count. The file
is written under a temporary name and renamed, as real partners do, so a layer never picks up a
half-written file. The answer (202: in a complete file) is the channel's; the layer's own answer
is where it moves the file: ``archive`` once processed, ``rejected`` when refused.

Faults are the file's, drawn from the seed and the export's slot: a file cut short as it is
written (no trailer; every record in it is answered "truncated" and goes again in the next
export, as an operator's re-export would) and a file exported twice under two names.

The server (asyncssh, loopback only) serves the run's own directory with one user, whose
password and the server's host key are made for the run and handed to the layer in the fakes'
env file (RH_SFTP_*), never logged.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import logging
import math
import os
import random
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncssh
import orjson

from simulators.delivery.transport import Answer
from simulators.scenario import BatchChannel as BatchSettings
from simulators.sut import free_port

EXPORTED = 202  # in a complete file in the layer's inbox
HEADER = ("record_type", "event_id", "occurred_at", "correlation_id", "data")
TRAILER = "TRAILER"
FOLDERS = ("outbound", "archive", "rejected")  # under /wms: where the WMS drops, where the layer moves
USER = "returns-layer"
GATHER_S = 0.02  # wall seconds an export waits for the rest of its slot's facts (they are due at one instant)

logging.getLogger("asyncssh").setLevel(logging.WARNING)  # one INFO line per connection and SFTP call otherwise


@dataclass
class BatchFile:
    """One file the WMS exported, and the facts in it."""

    name: str
    dropped_at_sim: float
    records: list[tuple[str, str, str]]  # (event id, event type, correlation id)
    truncated: bool
    copy_of: str | None = None  # exported twice: the first file's name


class _Gathering:
    """The rows due at one export, and the answer every one of their senders awaits."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.rows: list[tuple[str, ...]] = []  # HEADER's fields
        self.done: asyncio.Future[Answer] = loop.create_future()


class _Server(asyncssh.SSHServer):
    """One user, by password; nothing but SFTP (no shell, no forwarding)."""

    def __init__(self, password: str) -> None:
        self._password = password

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return hmac.compare_digest(username, USER) & hmac.compare_digest(password.encode(), self._password.encode())


class BatchChannel:
    """The WMS's exporter and the SFTP server it exports to."""

    def __init__(self, settings: BatchSettings, run_id: str, *, seed: int, epoch: datetime, now_sim: Callable[[], float],
                 on_fault: Callable[[str, str, str, str], None] = lambda kind, event_id, event_type, correlation_id: None) -> None:
        self.settings = settings
        self.run_id = run_id
        self.seed = seed
        self.epoch = epoch
        self.now_sim = now_sim
        self.on_fault = on_fault  # (kind, event id, event type, correlation id): into the fault log
        self.period = settings.every_hours * 3600
        midnight = epoch.replace(hour=0, minute=0, second=0, microsecond=0)
        self.first = (midnight + timedelta(hours=settings.at_hour) - epoch).total_seconds()  # sim seconds of the first slot
        self.root = Path(tempfile.gettempdir()) / "rh-sftp-unopened"  # made by open()
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.host_key: asyncssh.SSHKey | None = None
        self.files: list[BatchFile] = []
        self._server: asyncssh.SSHAcceptor | None = None
        self._gathering: _Gathering | None = None
        self._in_slot: Counter[int] = Counter()

    async def open(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"rh-sftp-{self.run_id or 'run'}-"))
        for folder in FOLDERS:
            (self.root / "wms" / folder).mkdir(parents=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.port = free_port()
        try:
            self._server = await asyncssh.listen(
                "127.0.0.1", self.port, server_factory=lambda: _Server(self.password), server_host_keys=[self.host_key],
                sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=os.fsencode(self.root)),
                allow_scp=False, agent_forwarding=False, x11_forwarding=False, allow_pty=False)
        except BaseException:
            self.remove()
            raise

    @property
    def inbox(self) -> Path:
        return self.root / "wms" / "outbound"

    @property
    def url(self) -> str:
        return f"sftp://127.0.0.1:{self.port}/wms/outbound"

    def url_for(self, event_type: str) -> str:
        return self.url

    def env(self) -> dict[str, str]:
        """What the layer needs to pick files up, for the fakes' env file (it holds the password)."""
        public = self.host_key.export_public_key().decode().strip() if self.host_key else ""
        return {"RH_SFTP_HOST": "127.0.0.1", "RH_SFTP_PORT": str(self.port), "RH_SFTP_USER": USER, "RH_SFTP_PASSWORD": self.password,
                "RH_SFTP_HOST_KEY": public, "RH_BATCH_INBOX": "/wms/outbound", "RH_BATCH_ARCHIVE": "/wms/archive",
                "RH_BATCH_REJECTED": "/wms/rejected"}

    # -- the transport -----------------------------------------------------------------------

    def slot(self, url: str, at_sim: float) -> float:
        """The first export at or after ``at_sim`` (simulated seconds)."""
        k = math.ceil((at_sim - self.first) / self.period - 1e-9)
        return self.first + k * self.period

    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Answer:
        envelope = orjson.loads(body)
        row = (envelope["type"], envelope["id"], envelope["occurred_at"], envelope["correlation_id"],
               orjson.dumps(envelope["data"]).decode())
        if self._gathering is None:
            loop = asyncio.get_running_loop()
            self._gathering = _Gathering(loop)
            loop.call_later(GATHER_S, self._export)
        gathering = self._gathering
        gathering.rows.append(row)
        return await asyncio.shield(gathering.done)

    def _export(self) -> None:
        gathering, self._gathering = self._gathering, None
        now = self.now_sim()  # a little past the slot: the deliverer fires on time, the gathering took GATHER_S
        index = math.floor((now - self.first) / self.period + 1e-9)
        rng = random.Random(f"{self.seed}:batch:{index}:{self._in_slot[index]}")
        self._in_slot[index] += 1
        truncated = rng.random() < self.settings.truncated_rate
        twice = rng.random() < self.settings.duplicate_file_rate
        content = _csv(gathering.rows)
        records = [(event_id, event_type, correlation_id) for event_type, event_id, _, correlation_id, _ in gathering.rows]
        if truncated:  # cut inside the rows: the trailer (and maybe a row's end) is lost
            end = content.rindex(TRAILER.encode())
            content = content[:max(1, int(end * rng.uniform(0.4, 0.95)))]
        stamp = (self.epoch + timedelta(seconds=self.first + index * self.period)).strftime("%Y%m%dT%H%M")
        name = f"wms-returns-{stamp}-{len(self.files) + 1:05d}{'-' + self.run_id if self.run_id else ''}.csv"
        self._drop(name, content)
        self.files.append(BatchFile(name, now, records, truncated))
        if twice and not truncated:
            copy = name.replace(".csv", "-resent.csv")
            self._drop(copy, content)
            self.files.append(BatchFile(copy, now, records, False, copy_of=name))
        for event_id, event_type, correlation_id in records:
            if truncated:
                self.on_fault("truncated", event_id, event_type, correlation_id)
            elif twice:
                self.on_fault("duplicate", event_id, event_type, correlation_id)
        answer = (Answer(None, None, f"in {name}, which was cut short (no trailer): exported again next time", by_layer=False,
                         fault="truncated") if truncated else Answer(EXPORTED, None, None, by_layer=False))
        gathering.done.set_result(answer)

    def _drop(self, name: str, content: bytes) -> None:
        """Write under a temporary name, then rename: the layer sees the whole file or none."""
        part = self.inbox / f".{name}.part"
        part.write_bytes(content)
        os.replace(part, self.inbox / name)

    # -- after the run -----------------------------------------------------------------------

    def where(self, name: str) -> str:
        """Where the layer left a file: archive, rejected, outbound (not moved) or gone (deleted)."""
        return next((folder for folder in FOLDERS if (self.root / "wms" / folder / name).exists()), "gone")

    def record_rows(self) -> list[dict]:
        """A row per record of every file: the file, when it was dropped, whether cut short, where it ended."""
        rows = []
        for f in self.files:
            ended = self.where(f.name)
            for event_id, event_type, correlation_id in f.records:
                rows.append({"file": f.name, "dropped_at_sim": f.dropped_at_sim, "truncated": f.truncated, "copy_of": f.copy_of,
                             "ended_in": ended, "event_id": event_id, "event_type": event_type, "correlation_id": correlation_id})
        return rows

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def aclose(self) -> None:
        await self.close()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _csv(rows: list[tuple[str, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    writer.writerow((TRAILER, len(rows)))
    return out.getvalue().encode()
