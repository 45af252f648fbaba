"""The oracle's tables: a run as a few flat, typed tables holding only what the checks and the
evidence read, in DuckDB.

A run's record is JSON-shaped (documents nested as the fakes keep them); reconciling a million
returns that way takes minutes and tens of GB. Flattened into these tables, every check is a set
operation DuckDB runs in a pass or two, and a saved run is one Parquet file per table (anyone can
query it: ``duckdb -c "SELECT * FROM 'run/documents.parquet' LIMIT 5"``).

Every table but ``expected`` and ``expected_units`` has ``n``, the row's position in the record (the order the fakes kept), where a check
needs "the first" of something. Times are UTC timestamps (the fakes write UTC only).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson

from simulators.oracle.record import RunRecord

SMALL = ("scenario", "summary", "timeline")  # kept as JSON beside the tables

# table -> column -> DuckDB type
SCHEMA: dict[str, dict[str, str]] = {
    "expected": {"return_id": "VARCHAR", "order_id": "VARCHAR", "eligible": "BOOLEAN", "ineligible_reason": "VARCHAR", "outcome": "VARCHAR",
                 "resolution": "VARCHAR", "inspected_units": "BIGINT", "refund_cents": "BIGINT", "replacement": "BOOLEAN"},
    # What the inspection should move: stock per "item|site|status", and units claimed per item.
    "expected_units": {"return_id": "VARCHAR", "kind": "VARCHAR", "key": "VARCHAR", "units": "BIGINT"},
    # refund_*: what the portal shows the customer of their refund (the layer's PATCH refunded).
    "returns": {"n": "BIGINT", "id": "VARCHAR", "status": "VARCHAR", "requested_at": "TIMESTAMP", "rma_id": "VARCHAR",
                "refund_amount": "BIGINT", "refund_memo_id": "VARCHAR"},
    "history": {"n": "BIGINT", "return_id": "VARCHAR", "from_status": "VARCHAR", "to_status": "VARCHAR", "at": "TIMESTAMP",
                "regression": "BOOLEAN"},
    # RMAs with the return they name (external_reference, else the correlation id).
    "rmas": {"n": "BIGINT", "id": "VARCHAR", "return_id": "VARCHAR", "created_at": "TIMESTAMP"},
    # Every other document tied to an RMA; supplier claims have a row per line.
    "documents": {"n": "BIGINT", "kind": "VARCHAR", "id": "VARCHAR", "rma_id": "VARCHAR", "created_at": "TIMESTAMP",
                  "amount": "BIGINT", "item_id": "VARCHAR", "site_id": "VARCHAR", "stock_status": "VARCHAR", "quantity": "BIGINT"},
    "journal": {"n": "BIGINT", "system": "VARCHAR", "at": "TIMESTAMP", "wall": "DOUBLE", "method": "VARCHAR", "path": "VARCHAR",
                "status": "INTEGER", "duration_ms": "DOUBLE", "principal": "VARCHAR", "correlation_id": "VARCHAR",
                "idempotency_key": "VARCHAR", "fault": "VARCHAR", "fault_kind": "VARCHAR", "replayed": "BOOLEAN", "lost": "BOOLEAN",
                "latency_ms": "DOUBLE", "retry_after_s": "DOUBLE"},
    "faults": {"n": "BIGINT", "kind": "VARCHAR", "event_id": "VARCHAR", "event_type": "VARCHAR", "correlation_id": "VARCHAR"},
    # intended_at: when the attempt was due (business); sent_at (business) and sent_wall (Unix
    # seconds): when it went out, the start of the layer's turn (the gap is the harness's lag).
    "deliveries": {"n": "BIGINT", "correlation_id": "VARCHAR", "event_id": "VARCHAR", "event_type": "VARCHAR", "attempt": "INTEGER",
                   "status": "INTEGER", "fault": "VARCHAR", "latency_ms": "DOUBLE", "round_trip_ms": "DOUBLE",
                   "intended_at": "TIMESTAMP", "sent_at": "TIMESTAMP", "sent_wall": "DOUBLE", "error": "VARCHAR", "final": "VARCHAR"},
    # Malformed messages a queue handed the layer, and whether its dead-letter queue held them after.
    "dead_letters": {"n": "BIGINT", "event_id": "VARCHAR", "correlation_id": "VARCHAR", "event_type": "VARCHAR",
                     "dead_lettered": "BOOLEAN", "queue_found": "BOOLEAN"},
    # Every record of every batch file, the file's drop (business time) and where the layer left it.
    "batch_records": {"n": "BIGINT", "file": "VARCHAR", "dropped_at": "TIMESTAMP", "truncated": "BOOLEAN", "copy_of": "VARCHAR",
                      "ended_in": "VARCHAR", "event_id": "VARCHAR", "event_type": "VARCHAR", "correlation_id": "VARCHAR"},
}

# (system, collection, kind) of the documents table; the key column names the RMA.
DOCUMENTS = (("erp", "credit_memos", "credit_memo", "return_authorization_id"),
             ("erp", "inventory_adjustments", "adjustment", "return_authorization_id"),
             ("erp", "supplier_claims", "claim", "return_authorization_id"),
             ("erp", "sales_orders", "replacement", "replacement_for"),
             ("wms", "expected_receipts", "asn", "rma_id"),
             ("wms", "receipts", "receipt", "rma_id"),
             ("wms", "inspections", "inspection", "rma_id"),
             ("carrier", "labels", "label", "rma_id"))


def _expected(record: RunRecord) -> Iterator[dict[str, Any]]:
    for rid, exp in record.expected.items():
        yield {"return_id": rid, "order_id": exp.get("order_id"), "eligible": exp.get("eligible"), "ineligible_reason": exp.get("ineligible_reason"),
               "outcome": exp.get("outcome"), "resolution": exp.get("resolution"),
               "inspected_units": sum(u["quantity"] for u in exp.get("inspected") or ()),
               "refund_cents": exp.get("refund_cents"), "replacement": exp.get("replacement")}


def _expected_units(record: RunRecord) -> Iterator[dict[str, Any]]:
    for rid, exp in record.expected.items():
        for kind, field in (("stock", "stock"), ("claim", "supplier_claims")):
            for key, units in (exp.get(field) or {}).items():
                yield {"return_id": rid, "kind": kind, "key": key, "units": units}


def _documents(state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for system, collection, kind, key in DOCUMENTS:
        for doc in state.get(system, {}).get(collection, []):
            if kind == "replacement" and not doc.get(key):
                continue  # a customer's sales order, not a replacement
            row = {"kind": kind, "id": doc.get("id"), "rma_id": doc.get(key), "created_at": doc.get("created_at")}
            if kind == "credit_memo":
                yield {**row, "amount": (doc.get("total") or {}).get("amount")}
            elif kind == "adjustment":
                yield {**row, **{k: doc.get(k) for k in ("item_id", "site_id", "stock_status", "quantity")}}
            elif kind == "claim":
                for line in doc.get("lines") or ():
                    yield {**row, "item_id": line.get("item_id"), "quantity": line.get("quantity")}
            else:
                yield row


def _business(record: RunRecord) -> Callable[[float | None], datetime | None]:
    """Simulated seconds of the run as business time (naive UTC, as the other timestamps)."""
    epoch = datetime.fromisoformat(record.scenario["epoch"]).astimezone(UTC).replace(tzinfo=None) if record.scenario.get("epoch") else None
    return lambda seconds: epoch + timedelta(seconds=seconds) if seconds is not None and epoch is not None else None


def _deliveries(record: RunRecord) -> Iterator[dict[str, Any]]:
    business = _business(record)
    for attempt in record.deliveries:
        yield {**attempt, "intended_at": business(attempt.get("intended_at_sim")), "sent_at": business(attempt.get("sent_at_sim")),
               "sent_wall": attempt.get("sent_at_wall")}


def rows(record: RunRecord) -> dict[str, Iterator[dict[str, Any]]]:
    """Each table's rows, drawn from the record."""
    portal = record.state.get("returns_portal", {})
    erp = record.state.get("erp", {})
    return {
        "expected": _expected(record),
        "expected_units": _expected_units(record),
        "returns": ({"id": r["id"], "status": r.get("status"), "requested_at": r.get("requested_at"), "rma_id": r.get("rma_id"),
                     "refund_amount": ((r.get("refund") or {}).get("amount") or {}).get("amount"),
                     "refund_memo_id": (r.get("refund") or {}).get("credit_memo_id")}
                    for r in portal.get("returns", [])),
        "history": ({"return_id": c["return_id"], "from_status": c.get("from"), "to_status": c.get("to"), "at": c.get("at"),
                     "regression": bool(c.get("regression"))} for c in portal.get("history", [])),
        "rmas": ({"id": r["id"], "return_id": r.get("external_reference") or r.get("correlation_id"), "created_at": r.get("created_at")}
                 for r in erp.get("return_authorizations", [])),
        "documents": _documents(record.state),
        "journal": ({"system": system, **entry} for system, entries in record.journals.items() for entry in entries),
        "faults": iter(record.faults),
        "deliveries": _deliveries(record),
        "dead_letters": iter(record.dead_letters),
        "batch_records": ({**r, "dropped_at": _business(record)(r.get("dropped_at_sim"))} for r in record.batch_records),
    }


def quoted(column: str) -> str:
    return f'"{column}"'  # "at" is an SQL keyword


def literal(path: Path | str) -> str:
    """A path as an SQL string (file names in DuckDB statements cannot be parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


def _columns(table: str) -> str:
    return ", ".join(f"'{name}': '{kind}'" for name, kind in SCHEMA[table].items())


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Under 2 GB for a million returns: DuckDB spills what does not fit to disk, in a folder of
    # this process's own (DuckDB removes a folder it made when it closes, whoever else uses it).
    spill = Path(tempfile.gettempdir()) / f"returns-harness-duckdb-{os.getpid()}"
    con.execute(f"SET memory_limit = '1GB'; SET temp_directory = {literal(spill)}; "
                "SET preserve_insertion_order = true; SET enable_progress_bar = false")
    return con


def from_record(record: RunRecord) -> duckdb.DuckDBPyConnection:
    """An in-memory database holding the record's tables."""
    con = _connect()
    with tempfile.TemporaryDirectory(prefix="returns-harness-") as tmp:
        for table, source in rows(record).items():
            path = Path(tmp) / f"{table}.ndjson"
            # Every row says where it stood in the record: "the first" of something is what the fakes kept first.
            path.write_bytes(b"".join(orjson.dumps({**row, "n": n}, default=str) + b"\n" for n, row in enumerate(source)))
            con.execute(f"CREATE TABLE {table} ({', '.join(f'{quoted(c)} {t}' for c, t in SCHEMA[table].items())})")
            if path.stat().st_size:
                con.execute(f"INSERT INTO {table} SELECT {', '.join(map(quoted, SCHEMA[table]))} FROM read_json({literal(path)}, "
                            f"format = 'newline_delimited', columns = {{{_columns(table)}}})")
    return con


def save(con: duckdb.DuckDBPyConnection, small: dict[str, Any], directory: Path) -> Path:
    """The tables as Parquet, and the run's small parts (``SMALL``) as JSON, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for table in SCHEMA:
        con.execute(f"COPY {table} TO {literal(directory / f'{table}.parquet')} (FORMAT parquet, COMPRESSION zstd)")
    for name in SMALL:
        (directory / f"{name}.json").write_bytes(orjson.dumps(small[name], default=str))
    return directory


def missing(directory: Path) -> list[str]:
    wanted = [f"{t}.parquet" for t in SCHEMA] + [f"{name}.json" for name in SMALL]
    return [name for name in wanted if not (directory / name).is_file()]


def open_saved(directory: Path) -> tuple[duckdb.DuckDBPyConnection, dict[str, Any]]:
    """Views over a saved run's Parquet files, and its small parts (scenario, summary, timeline)."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} does not exist" if not directory.exists() else f"{directory} is not a directory")
    lacking = missing(directory)
    if lacking and (directory / "expected.json").is_file():
        raise FileNotFoundError(f"{directory} was saved by an earlier returns-harness (JSON files); this one reads "
                                "Parquet tables: run the scenario again to reconcile it")
    if lacking:
        raise FileNotFoundError(f"{directory} is not a saved run: it lacks {', '.join(lacking)}")
    con = _connect()
    for table in SCHEMA:
        path = directory / f"{table}.parquet"
        try:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({literal(path)})")
            found = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
        except duckdb.Error as exc:
            con.close()
            raise ValueError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0]})") from None
        lacking = [f"{c} {t}" for c, t in SCHEMA[table].items() if found.get(c) != t]
        if lacking:
            con.close()
            raise ValueError(f"{path}: expected the columns {', '.join(lacking)} (a run saved by another version?)")
    return con, {name: orjson.loads((directory / f"{name}.json").read_bytes()) for name in SMALL}
