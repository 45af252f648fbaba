"""Reconciliation time and peak memory of the oracle for a large run, against a baseline.

A real run is made once (a live run of the ``erp-outage`` scenario against the embedded
reference, a few hundred returns with the faults and retries of a busy day), then copied until
the record holds N returns: each copy renames every document id of the run (returns, RMAs,
labels, ASNs, receipts, inspections, memos, adjustments, claims, replacement orders, events),
so the copies are independent returns with the same shape; master data (customers, items,
seeded orders) stays shared, as in a real season. The copies are written as a saved run, so
the oracle is timed the way ``returns-harness reconcile`` runs it: load, index, check.

Baseline, measured in the same run on the same files: loading the saved run and walking every
document once (what any reconciler must do at least). The ratio is reconcile / baseline.
Peak memory is the peak RSS of a fresh process doing only the reconcile (or only the baseline).

    python benchmarks/bench_oracle.py [--returns 100000] [--source RUN_DIR]

Targets (issue 5): 1,000,000 returns in under 30 s and 2 GB on this machine.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
ID_PREFIXES = ("RET", "RMA", "LBL", "evt", "INS", "CM", "ASN", "RCV", "ADJ", "SC", "FLT", "SO")
SEEDED = re.compile(rb"SO-(\d{6})")  # seeded sales orders keep their ids; replacements get new ones


def make_source(directory: Path) -> Path:
    """A live run of erp-outage against the reference, saved (about 35 s)."""
    report = directory / "source"
    done = subprocess.run([sys.executable, "-m", "simulators.cli", "run", "erp-outage", "--report-dir", str(report)],
                          cwd=directory, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        sys.exit(f"the source run failed:\n{done.stdout}\n{done.stderr}")
    return report / "run"


def replicate(source: Path, target: Path, returns: int) -> int:
    """Copies of the source run, ids renamed per copy, until ``returns`` returns; written as a saved run."""
    raw = {p.stem: p.read_bytes() for p in source.glob("*.json")}
    seeded_orders = int(orjson.loads(raw["scenario"])["seed_data"]["orders"])
    per_copy = len(orjson.loads(raw["expected"]))
    copies = max(1, -(-returns // per_copy))
    pattern = re.compile(rb"\b(" + b"|".join(p.encode() for p in ID_PREFIXES) + rb")([-_])")

    def renamed(blob: bytes, k: int) -> bytes:
        tag = f"{k:05d}".encode()

        def one(m: re.Match) -> bytes:
            if m.group(1) == b"SO":
                # Keep the seeded order ids: their number follows "SO-" directly.
                number = SEEDED.match(blob, m.start())
                if number and int(number.group(1)) <= seeded_orders:
                    return m.group(0)
            return m.group(1) + m.group(2) + b"c" + tag + b"-"
        return pattern.sub(one, blob)

    shared = {name: orjson.loads(raw[name]) for name in ("scenario", "summary", "timeline")}
    expected: dict = {}
    state: dict = {}
    journals: dict = {}
    faults: list = []
    deliveries: list = []
    base_state = orjson.loads(raw["state"])
    for k in range(copies):
        expected.update(orjson.loads(renamed(raw["expected"], k)))
        copy_state = orjson.loads(renamed(raw["state"], k))
        for system, collections in copy_state.items():
            into = state.setdefault(system, {})
            for name, docs in collections.items():
                if name == "inventory":  # stock levels are master data: one copy
                    into[name] = base_state[system][name]
                else:
                    into.setdefault(name, []).extend(docs)
        for system, entries in orjson.loads(renamed(raw["journals"], k)).items():
            journals.setdefault(system, []).extend(entries)
        faults.extend(orjson.loads(renamed(raw["faults"], k)))
        deliveries.extend(orjson.loads(renamed(raw["deliveries"], k)))
    target.mkdir(parents=True, exist_ok=True)
    for name, value in (*shared.items(), ("expected", expected), ("state", state), ("journals", journals),
                        ("faults", faults), ("deliveries", deliveries)):
        (target / f"{name}.json").write_bytes(orjson.dumps(value))
    return len(expected)


RECONCILE = """
import sys, time, resource
from pathlib import Path
from simulators.runner import reconcile_saved
started = time.perf_counter()
verdict = reconcile_saved(Path(sys.argv[1]))
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(elapsed, peak, verdict["ok"], sum(len(c["violations"]) for c in verdict["checks"]))
"""

BASELINE = """
import sys, time, resource
from pathlib import Path
import orjson
started = time.perf_counter()
run = {p.stem: orjson.loads(p.read_bytes()) for p in Path(sys.argv[1]).glob("*.json")}
seen = 0
def walk(value):
    global seen
    if isinstance(value, dict):
        seen += 1
        for v in value.values():
            if isinstance(v, (dict, list)):
                walk(v)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                walk(v)
walk(run)
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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
    parser.add_argument("--returns", type=int, default=100_000, help="Returns in the reconciled record")
    parser.add_argument("--source", type=Path, help="A saved run to copy (default: make one, ~35 s)")
    parser.add_argument("--keep", type=Path, help="Keep the replicated run in this directory")
    args = parser.parse_args()
    if args.returns < 1:
        parser.error("--returns: expected a positive number")
    work = Path(tempfile.mkdtemp(prefix="bench-oracle-"))
    try:
        source = args.source or make_source(work)
        if not (source / "expected.json").is_file():
            source = source / "run"
        target = args.keep or work / "big"
        t0 = time.perf_counter()
        n = replicate(source, target, args.returns)
        size = sum(p.stat().st_size for p in target.glob("*.json")) / 2**20
        print(f"record: {n} returns, {size:.0f} MiB on disk (made in {time.perf_counter() - t0:.0f} s)")
        base = measure(BASELINE, target)
        oracle = measure(RECONCILE, target)
        print(f"baseline (load + walk):  {base[0]:7.2f} s  peak {base[1]:7.0f} MiB  ({base[2].split()[1]} objects)")
        print(f"oracle (reconcile):      {oracle[0]:7.2f} s  peak {oracle[1]:7.0f} MiB  (ok {oracle[2]})")
        print(f"ratio reconcile/baseline: time {oracle[0] / base[0]:.2f}x, memory {oracle[1] / base[1]:.2f}x")
        print(f"per 1,000 returns: {oracle[0] / n * 1000:.3f} s, {oracle[1] / n * 1000:.1f} MiB "
              f"(1M returns at this rate: {oracle[0] / n * 1e6:.0f} s, {oracle[1] / n * 1e6 / 1024:.1f} GiB)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _ = resource  # peak memory is read in the child processes


if __name__ == "__main__":
    main()
