"""Intake of batch files: the WMS's CSV exports, picked up from its SFTP server.

The inbox is listed every ``poll_s``; a file (``*.csv``: a name starting with a dot is still being
written) is read whole and checked before any record is booked: the column header, every row's
five fields and the trailer's count must all be right, or the file is refused whole and moved to
``rejected`` (with a ``.reason`` beside it). A good file's records are stored one by one through
the same intake as webhooks (duplicates of a record already stored change nothing: a file
exported twice books nothing twice), then the file moves to ``archive``. A crash before the move
leaves the file in the inbox, and its records are stored again as duplicates: nothing is lost.

The only host key trusted is the one the harness handed over (RH_SFTP_HOST_KEY). The defect
``accepts-truncated-batch`` books rows as it reads them and archives whatever it read.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging

import asyncssh
import orjson

from reference_middleware.defects import Defect
from reference_middleware.intake import Intake, Refused
from reference_middleware.settings import BatchSettings

log = logging.getLogger("reference.batch")
logging.getLogger("asyncssh").setLevel(logging.WARNING)
HEADER = ["record_type", "event_id", "occurred_at", "correlation_id", "data"]
RETRY_S = 1.0  # the server could not be reached or a file could not be moved: try again after this


class BadFile(ValueError):
    """A file that breaks the layout: refused whole."""


def _rows(content: bytes) -> list[list[str]]:
    try:
        rows = list(csv.reader(io.StringIO(content.decode())))
    except (UnicodeDecodeError, csv.Error) as e:
        raise BadFile(f"not a CSV file: {e}") from None
    if not rows or rows[0] != HEADER:
        raise BadFile(f"line 1: expected the header {','.join(HEADER)}")
    return rows


def records(content: bytes) -> list[list[str]]:
    """The data rows of one export, checked against the layout (docs/CONTRACT.md, "Batch files")."""
    rows = _rows(content)
    body, trailer = rows[1:-1], rows[-1]
    if len(rows) < 2 or len(trailer) != 2 or trailer[0] != "TRAILER" or not trailer[1].isdigit():
        raise BadFile(f"line {len(rows)}: expected the trailer TRAILER,<record count> (the file is cut short?)")
    if int(trailer[1]) != len(body):
        raise BadFile(f"the trailer counts {trailer[1]} records, the file holds {len(body)}")
    for number, row in enumerate(body, start=2):
        if len(row) != len(HEADER):
            raise BadFile(f"line {number}: expected {len(HEADER)} fields, found {len(row)}")
    return body


def readable_records(content: bytes) -> list[list[str]]:
    """accepts-truncated-batch: the rows as far as they read, whatever the trailer says."""
    rows = [row for row in _rows(content)[1:] if row[:1] != ["TRAILER"]]
    whole = next((n for n, row in enumerate(rows) if len(row) != len(HEADER)), len(rows))
    return rows[:whole]


def envelope(row: list[str]) -> bytes:
    record_type, event_id, occurred_at, correlation_id, data = row
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        payload = data  # the intake refuses it, naming the field
    return orjson.dumps({"id": event_id, "type": record_type, "occurred_at": occurred_at, "correlation_id": correlation_id,
                         "data": payload})


class BatchIntake:
    def __init__(self, settings: BatchSettings, intake: Intake, defects: frozenset[Defect]) -> None:
        self.settings = settings
        self.intake = intake
        self.defects = defects
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Connect before the layer says it is up: the first connection's key exchange and the
        crypto it loads take a blocking half second or so, which webhooks answered meanwhile
        would wait out. Unreachable now, the poller keeps trying."""
        try:
            first = await self._connect()
        except (OSError, asyncssh.Error) as e:
            log.warning("the WMS's SFTP server: %s; trying again in %.0f s", e, RETRY_S)
            first = None
        self._task = asyncio.get_running_loop().create_task(self._poll(first), name="batch-intake")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _connect(self) -> asyncssh.SSHClientConnection:
        s = self.settings
        trusted = asyncssh.import_known_hosts(f"[{s.host}]:{s.port} {s.host_key}\n")  # this key only
        return await asyncssh.connect(s.host, s.port, username=s.user, password=s.password, known_hosts=trusted,
                                      client_keys=None, agent_path=None)

    async def _poll(self, conn: asyncssh.SSHClientConnection | None) -> None:
        s = self.settings
        while True:
            try:
                conn = conn or await self._connect()
                async with conn, conn.start_sftp_client() as sftp:
                    while True:
                        for name in sorted(await sftp.listdir(s.inbox)):
                            if name.endswith(".csv") and not name.startswith("."):
                                await self._take(sftp, name)
                        await asyncio.sleep(s.poll_s)
            except (OSError, asyncssh.Error) as e:
                log.warning("the WMS's SFTP server: %s; trying again in %.0f s", e, RETRY_S)
                await asyncio.sleep(RETRY_S)
            conn = None

    async def _take(self, sftp: asyncssh.SFTPClient, name: str) -> None:
        s = self.settings
        async with sftp.open(f"{s.inbox}/{name}", "rb") as f:
            content = await f.read()
        try:
            rows = (readable_records if Defect.ACCEPTS_TRUNCATED_BATCH in self.defects else records)(content)
        except BadFile as e:
            log.warning("refused %s whole: %s", name, e)
            async with sftp.open(f"{s.rejected}/{name}.reason", "wb") as f:
                await f.write(f"{e}\n".encode())
            await sftp.rename(f"{s.inbox}/{name}", f"{s.rejected}/{name}")
            return
        for row in rows:
            result = await self.intake.accept(envelope(row), row[1])
            if isinstance(result, Refused):  # a record the contract refuses is dead-lettered by the intake
                log.warning("%s, record %s refused: %s", name, row[1], result.detail)
        await sftp.rename(f"{s.inbox}/{name}", f"{s.archive}/{name}")
