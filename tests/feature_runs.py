"""Running the Gherkin features in a pytest subprocess, and reading back which scenarios failed.

A subprocess per run keeps the live worlds (and their reference processes) out of the test
process, and lets independent runs go side by side."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FEATURES = REPO / "features"
TIMEOUT_S = 300


@dataclass
class Outcome:
    returncode: int
    passed: list[str]
    failed: dict[str, str]  # test name -> failure message
    output: str
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        """For assertion messages (pass ``str(outcome)``: pytest shortens a repr, and the failing
        step's explanation is what a reader needs)."""
        return f"exit {self.returncode}; passed {self.passed}; failed {sorted(self.failed)}\n{self.output[-4000:]}"


def run_pytest(args: list[str], cwd: Path, junit: Path) -> Outcome:
    """``python -m pytest ARGS --junitxml JUNIT`` in ``cwd``; the outcome of every test case."""
    command = [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-q", f"--junitxml={junit}", "-o", "junit_family=xunit2"]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, env=dict(os.environ), check=False)
    passed, failed, skipped = [], {}, []
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            if problem is not None:
                failed[case.get("name")] = problem.get("message", "") + "\n" + (problem.text or "")
            elif case.find("skipped") is None:
                passed.append(case.get("name"))
            else:
                skipped.append(case.get("name"))
    return Outcome(done.returncode, passed, failed, done.stdout + done.stderr, skipped)


def run_features(jobs: dict[str, list[str]], tmp: Path, parallel: int = 4) -> dict[str, Outcome]:
    """Several runs of ``pytest features/ ARGS`` side by side, by name."""

    def one(name: str) -> Outcome:
        return run_pytest([str(FEATURES), *jobs[name], "--basetemp", str(tmp / name)], REPO, tmp / f"{name}.xml")

    with ThreadPoolExecutor(parallel) as pool:
        return dict(zip(jobs, pool.map(one, jobs), strict=True))
