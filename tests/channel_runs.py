"""Runs of `returns-harness run` for the channel tests: a scenario file, several layers side by
side (the correct reference and a defect of it), each run's report folder and verdict."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import yaml


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulators.cli", *args], capture_output=True, text=True, timeout=240, cwd=cwd,
                          check=False)


def side_by_side(base: Path, scenario: dict, jobs: list[tuple[str, ...]]) -> dict[str, tuple[Path, dict]]:
    """Run ``scenario`` once per job (a report folder's name, then `run` options), at once;
    each run must end with a verdict (exit 0 or 1)."""
    (base / "scenario.yaml").write_text(yaml.safe_dump(scenario))

    def one(name: str, *options: str) -> tuple[str, tuple[Path, dict]]:
        done = harness("run", "scenario.yaml", "--report-dir", name, *options, cwd=base)
        assert done.returncode in (0, 1), f"{name}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
        return name, (base / name, orjson.loads((base / name / "verdict.json").read_bytes()))

    with ThreadPoolExecutor(len(jobs)) as pool:
        return dict(pool.map(lambda job: one(*job), jobs))
