"""Reconciliation time and peak memory of the oracle for a large run, against a baseline.

A real run is made once (a live run of the ``erp-outage`` scenario against the embedded
reference, a few hundred returns with the faults and retries of a busy day), then copied until
the record holds N returns: each copy prefixes every id of the run (returns, RMAs, documents,
events, correlation ids) with its copy number and shifts its times by as many seconds, so the
copies are independent returns with the same shape and values of their own. The copies are written as a saved run (Parquet tables, as ``returns-harness run``
saves one), so the oracle is timed the way ``returns-harness reconcile`` runs it: open, index,
check, gather the evidence of the listed violations.

Baseline, measured in the same run on the same files: reading every value of every table once
(what any reconciler must do at least). The ratio is reconcile / baseline. Peak memory is the
peak RSS (VmHWM) of a fresh process doing only the reconcile (or only the baseline); not
ru_maxrss, which a child inherits from the process that started it.

    python benchmarks/bench_oracle.py [--returns 1000000] [--source RUN_DIR | --defect NAME] [--keep DIR]

Targets (issue 5): 1,000,000 returns in under 30 s and 2 GB on this machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulators.oracle import tables  # noqa: E402

# Columns holding ids, per table: renamed per copy so that copies are distinct returns.
ID_COLUMNS = {
    "expected": ("return_id",), "expected_units": ("return_id",), "returns": ("id", "rma_id"), "history": ("return_id",),
    "rmas": ("id", "return_id"), "documents": ("id", "rma_id"),
    "journal": ("correlation_id", "idempotency_key"), "faults": ("event_id", "correlation_id"),
    "deliveries": ("correlation_id", "event_id"),
}


def make_source(directory: Path, defect: str | None) -> Path:
    """A live run of erp-outage against the reference (with a defect, if given), saved (about 45 s)."""
    report = directory / "source"
    done = subprocess.run([sys.executable, "-m", "simulators.cli", "run", "erp-outage", "--report-dir", str(report),
                           *(["--defect", defect] if defect else [])],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        sys.exit(f"the source run failed:\n{done.stdout}\n{done.stderr}")
    return report / "run"


def replicate(source: Path, target: Path, returns: int) -> int:
    """Copies of the source run, ids prefixed per copy, until ``returns`` returns; written as a saved run."""
    con = duckdb.connect(config={"memory_limit": "2GB"})
    per_copy = con.execute(f"SELECT count(*) FROM {tables.literal(source / 'expected.parquet')}").fetchone()[0]
    copies = max(1, -(-returns // per_copy))
    target.mkdir(parents=True, exist_ok=True)
    for table, schema in tables.SCHEMA.items():
        parquet = tables.literal(source / f"{table}.parquet")
        span = con.execute(f"SELECT coalesce(max(n), 0) + 1 FROM {parquet}").fetchone()[0] if "n" in schema else 0
        columns = []
        for column, kind in schema.items():
            name = tables.quoted(column)
            if column in ID_COLUMNS[table]:
                columns.append(f"'c' || copy || '-' || {name} AS {name}")
            elif column == "n":
                columns.append(f"copy * {span} + n AS n")  # copy after copy, as if the season were that long
            elif kind == "TIMESTAMP":  # each copy a second later: the same durations, values of their own
                columns.append(f"{name} + copy * INTERVAL 1 SECOND AS {name}")
            elif column == "wall":
                columns.append("wall + copy AS wall")
            else:
                columns.append(name)
        con.execute(f"COPY (SELECT {', '.join(columns)} FROM range({copies}) AS copies(copy), {parquet} ORDER BY copy) "
                    f"TO {tables.literal(target / f'{table}.parquet')} (FORMAT parquet, COMPRESSION zstd)")
    for name in tables.SMALL:
        shutil.copy(source / f"{name}.json", target / f"{name}.json")
    return per_copy * copies


RECONCILE = """
import sys, time
from pathlib import Path
from simulators.runner import reconcile_saved
started = time.perf_counter()
verdict = reconcile_saved(Path(sys.argv[1]))
elapsed = time.perf_counter() - started
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024  # this process only
found = sum(c.get("violations_found") or 0 for c in verdict["checks"])
listed = sum(len(c["violations"]) for c in verdict["checks"])
print(elapsed, peak, verdict["ok"], f"violations={found},listed={listed}")
"""

BASELINE = """
import sys, time
from pathlib import Path
from simulators.oracle import tables
started = time.perf_counter()
con, small = tables.open_saved(Path(sys.argv[1]))
seen = 0
for table, schema in tables.SCHEMA.items():
    seen += sum(con.execute(f"SELECT {', '.join(f'coalesce(sum(hash({tables.quoted(c)}) % 1000), 0)' for c in schema)} FROM {table}").fetchone())
elapsed = time.perf_counter() - started
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024  # this process only
print(elapsed, peak, True, seen)
"""


def measure(script: str, run_dir: Path) -> tuple[float, float, str]:
    done = subprocess.run([sys.executable, "-c", script, str(run_dir)], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(done.stderr)
    elapsed, peak, ok, extra = done.stdout.split()
    return float(elapsed), float(peak), f"{ok} {extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--returns", type=int, default=1_000_000, help="Returns in the reconciled record")
    parser.add_argument("--source", type=Path, help="A saved run to copy (default: make one, ~45 s)")
    parser.add_argument("--defect", help="Make the source run with this reference defect (violations to list)")
    parser.add_argument("--keep", type=Path, help="Keep the replicated run in this directory")
    args = parser.parse_args()
    if args.returns < 1:
        parser.error("--returns: expected a positive number")
    work = Path(tempfile.mkdtemp(prefix="bench-oracle-"))
    try:
        source = args.source or make_source(work, args.defect)
        if not (source / "expected.parquet").is_file():
            source = source / "run"
        target = args.keep or work / "big"
        t0 = time.perf_counter()
        n = replicate(source, target, args.returns)
        size = sum(p.stat().st_size for p in target.iterdir()) / 2**20
        print(f"record: {n} returns, {size:.0f} MiB on disk (made in {time.perf_counter() - t0:.0f} s)")
        base = measure(BASELINE, target)
        oracle = measure(RECONCILE, target)
        print(f"baseline (read every value once): {base[0]:7.2f} s  peak {base[1]:7.0f} MiB  (checksum {base[2].split()[1]})")
        print(f"oracle (reconcile):               {oracle[0]:7.2f} s  peak {oracle[1]:7.0f} MiB  (ok {oracle[2]})")
        print(f"ratio reconcile/baseline: time {oracle[0] / base[0]:.2f}x, memory {oracle[1] / base[1]:.2f}x")
        print(f"per 1,000 returns: {oracle[0] / n * 1000:.3f} s (targets for 1,000,000: under 30 s and 2 GB)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
