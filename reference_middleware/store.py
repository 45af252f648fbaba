"""Durable state: the inbox of events, the jobs they became, the steps each return has done.

One small repository over SQL that SQLite (the default: a file, or memory) and PostgreSQL
both run. A job is the work one event asks for; it stays ``pending`` until its handler ran to
the end, so a crash leaves it to be run again. A step is one write to a fake, recorded with
its result once it succeeded, so running a job again skips what was done: together with the
Idempotency-Key sent on every write, that is what makes "at least once" do things once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq {serial},
    event_id TEXT NOT NULL,
    fact_key TEXT NOT NULL,
    type TEXT NOT NULL,
    return_id TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_event ON inbox (event_id);
CREATE INDEX IF NOT EXISTS inbox_fact ON inbox (fact_key);
CREATE TABLE IF NOT EXISTS jobs (
    id {serial},
    return_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, due_at);
CREATE INDEX IF NOT EXISTS jobs_return ON jobs (return_id, state);
CREATE TABLE IF NOT EXISTS steps (
    return_id TEXT NOT NULL,
    step TEXT NOT NULL,
    result TEXT NOT NULL,
    done_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (return_id, step)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id {serial},
    at DOUBLE PRECISION NOT NULL,
    webhook_id TEXT,
    reason TEXT NOT NULL,
    body TEXT NOT NULL
);
"""

PENDING, WAITING, DONE, DEAD = "pending", "waiting", "done", "dead"


@dataclass(frozen=True)
class Job:
    id: int
    return_id: str
    kind: str
    event_id: str
    occurred_at: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class NewJob:
    return_id: str
    kind: str
    event_id: str
    occurred_at: str
    payload: dict[str, Any]


class Database:
    """The little of a DB-API connection the repository needs, the same for both engines."""

    serial = ""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    async def executescript(self, sql: str) -> None:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        raise NotImplementedError
        yield

    async def close(self) -> None:
        raise NotImplementedError


CHECKPOINT_S = 1.0  # how often the checkpointer thread copies the WAL into the database


class SqliteDatabase(Database):
    """SQLite through the standard library, on the event loop's thread: its calls take
    microseconds, and one writer is all a single process needs. WAL keeps readers unblocked.

    With synchronous=NORMAL a commit does not wait for the disk; only a WAL checkpoint does
    (fsync). SQLite runs one inside the commit that fills the WAL, which would stop the whole
    loop for as long as a busy disk takes (a second, seen beside other jobs' writes: every
    webhook waiting on it). So checkpoints run in a thread of their own, on a connection of
    their own, and never in a commit."""

    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash
        self.conn.execute("PRAGMA busy_timeout=5000")
        # No statement awaits anything, so a transaction cannot interleave with another task's.
        self.lock = asyncio.Lock()
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if path != ":memory:":
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = threading.Thread(target=self._checkpoints, args=(path,), name="sqlite-checkpoints", daemon=True)
            self._checkpointer.start()

    def _checkpoints(self, path: str) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        try:
            while not self._stop.wait(CHECKPOINT_S):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits for the writer
        finally:
            conn.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    async def executescript(self, sql: str) -> None:
        self.conn.executescript(sql)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._stop.set()
            await asyncio.to_thread(self._checkpointer.join)
        self.conn.close()


class PostgresDatabase(Database):
    """PostgreSQL through psycopg 3 (``pip install returns-harness[postgres]``): one async
    connection, statements serialised by a lock, which a single process needs no more than."""

    serial = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = asyncio.Lock()
        # Set inside a transaction, for the task running it only: others wait on the lock.
        self.in_tx: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tx", default=False)

    @classmethod
    async def connect(cls, url: str) -> PostgresDatabase:
        try:
            import psycopg
        except ImportError:
            raise RuntimeError("a postgresql:// database needs psycopg: pip install 'returns-harness[postgres]'") from None
        return cls(await psycopg.AsyncConnection.connect(url, autocommit=True))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        sql = sql.replace("?", "%s")
        if self.in_tx.get():
            return await self._run(sql, params)
        async with self.lock:
            return await self._run(sql, params)

    async def _run(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, tuple(params))
            return await cur.fetchall() if cur.description else []

    async def executescript(self, sql: str) -> None:
        async with self.lock:
            for statement in filter(str.strip, sql.split(";")):
                await self.conn.execute(statement)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self.lock:
            token = self.in_tx.set(True)
            try:
                async with self.conn.transaction():
                    yield
            finally:
                self.in_tx.reset(token)

    async def close(self) -> None:
        await self.conn.close()


async def open_database(url: str) -> Database:
    """``sqlite:///relative/path``, ``sqlite:////absolute/path`` (as SQLAlchemy spells them),
    ``sqlite://:memory:`` (or a bare path), or ``postgresql://...``."""
    if url.startswith(("postgresql://", "postgres://")):
        db: Database = await PostgresDatabase.connect(url)
    else:
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
        db = SqliteDatabase(path or ":memory:")
    await db.executescript(SCHEMA.format(serial=db.serial))
    return db


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class Repository:
    """What the intake and the workers ask of storage, in their own words."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def close(self) -> None:
        await self.db.close()

    # -- the inbox ---------------------------------------------------------------------------

    async def accept(self, event: dict[str, Any], fact_key: str, jobs: list[NewJob], *, dedupe: bool, delay_s: float = 0.0) -> str:
        """Store an event and the jobs it asks for (due ``delay_s`` from now), in one transaction.

        Returns ``new``, ``duplicate`` (this event id was stored before) or
        ``semantic-duplicate`` (another event stated the same fact); duplicates make no jobs.
        """
        now = time.time()
        async with self.db.transaction():
            outcome = "new"
            if dedupe:
                if await self.db.execute("SELECT 1 FROM inbox WHERE event_id = ? LIMIT 1", (event["id"],)):
                    outcome = "duplicate"
                elif await self.db.execute("SELECT 1 FROM inbox WHERE fact_key = ? LIMIT 1", (fact_key,)):
                    outcome = "semantic-duplicate"
            if outcome == "duplicate":
                return outcome
            await self.db.execute(
                "INSERT INTO inbox (event_id, fact_key, type, return_id, received_at, body) VALUES (?, ?, ?, ?, ?, ?)",
                (event["id"], fact_key, event["type"], event["correlation_id"], now, _json(event)),
            )
            if outcome == "new":
                for job in jobs:
                    await self._insert_job(job, now, now + delay_s)
            return outcome

    async def _insert_job(self, job: NewJob, now: float, due_at: float) -> None:
        await self.db.execute(
            "INSERT INTO jobs (return_id, kind, event_id, occurred_at, payload, state, due_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job.return_id, job.kind, job.event_id, job.occurred_at, _json(job.payload), PENDING, due_at, now),
        )

    async def dead_letter(self, webhook_id: str | None, reason: str, body: bytes) -> None:
        await self.db.execute(
            "INSERT INTO dead_letters (at, webhook_id, reason, body) VALUES (?, ?, ?, ?)",
            (time.time(), webhook_id, reason, body.decode("utf-8", "replace")),
        )

    # -- jobs --------------------------------------------------------------------------------

    async def due_jobs(self, now: float, limit: int) -> list[Job]:
        rows = await self.db.execute(
            "SELECT id, return_id, kind, event_id, occurred_at, payload, attempts FROM jobs"
            " WHERE state = ? AND due_at <= ? ORDER BY due_at, occurred_at, id LIMIT ?",
            (PENDING, now, limit),
        )
        return [Job(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5]), r[6]) for r in rows]

    async def next_due(self) -> float | None:
        rows = await self.db.execute("SELECT MIN(due_at) FROM jobs WHERE state = ?", (PENDING,))
        return rows[0][0] if rows else None

    async def finish(self, job: Job) -> None:
        """The job ran to its end: jobs of the same return that were waiting may now go on."""
        now = time.time()
        async with self.db.transaction():
            await self.db.execute("UPDATE jobs SET state = ?, finished_at = ? WHERE id = ?", (DONE, now, job.id))
            await self.db.execute(
                "UPDATE jobs SET state = ?, due_at = ? WHERE return_id = ? AND state = ?", (PENDING, now, job.return_id, WAITING)
            )

    async def retry(self, job: Job, due_at: float, error: str) -> None:
        await self.db.execute(
            "UPDATE jobs SET attempts = attempts + 1, due_at = ?, last_error = ? WHERE id = ?", (due_at, error, job.id)
        )

    async def park(self, job: Job, reason: str) -> None:
        await self.db.execute("UPDATE jobs SET state = ?, last_error = ? WHERE id = ?", (WAITING, reason, job.id))

    async def kill(self, job: Job, error: str) -> None:
        await self.db.execute(
            "UPDATE jobs SET state = ?, attempts = attempts + 1, finished_at = ?, last_error = ? WHERE id = ?",
            (DEAD, time.time(), error, job.id),
        )

    # -- steps -------------------------------------------------------------------------------

    async def step(self, return_id: str, step: str) -> Any | None:
        rows = await self.db.execute("SELECT result FROM steps WHERE return_id = ? AND step = ?", (return_id, step))
        return orjson.loads(rows[0][0]) if rows else None

    async def steps(self, return_id: str) -> dict[str, Any]:
        rows = await self.db.execute("SELECT step, result FROM steps WHERE return_id = ? ORDER BY done_at", (return_id,))
        return {step: orjson.loads(result) for step, result in rows}

    async def record(self, return_id: str, step: str, result: Any) -> None:
        await self.db.execute(
            "INSERT INTO steps (return_id, step, result, done_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (return_id, step) DO UPDATE SET result = excluded.result, done_at = excluded.done_at",
            (return_id, step, _json(result), time.time()),
        )

    # -- what the status API and the metrics show --------------------------------------------

    async def jobs_of(self, return_id: str) -> list[dict[str, Any]]:
        rows = await self.db.execute(
            "SELECT id, kind, event_id, state, attempts, last_error FROM jobs WHERE return_id = ? ORDER BY id", (return_id,)
        )
        keys = ("id", "kind", "event_id", "state", "attempts", "last_error")
        return [dict(zip(keys, row)) for row in rows]

    async def gauges(self) -> dict[str, float]:
        now = time.time()
        by_state = dict(await self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
        oldest = await self.db.execute("SELECT MIN(created_at) FROM jobs WHERE state = ?", (PENDING,))
        dead_letters = await self.db.execute("SELECT COUNT(*) FROM dead_letters")
        retries = await self.db.execute("SELECT COALESCE(SUM(attempts), 0) FROM jobs")
        return {
            "jobs_pending": by_state.get(PENDING, 0),
            "jobs_waiting": by_state.get(WAITING, 0),
            "jobs_done": by_state.get(DONE, 0),
            "jobs_dead": by_state.get(DEAD, 0),
            "inbox_lag_seconds": now - oldest[0][0] if oldest and oldest[0][0] is not None else 0.0,
            "dead_letters": dead_letters[0][0],
            "retries": retries[0][0],
        }
