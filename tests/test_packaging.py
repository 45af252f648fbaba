"""The package works from a wheel, not only from the checkout: what it ships (the scenarios, the
reference) is inside it. The wheel is built from this checkout and imported from a folder of its
own, ahead of the editable install, in a directory away from the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_wheel_carries_the_scenarios_and_runs_them_away_from_the_checkout(tmp_path):
    # From a clean copy: setuptools would otherwise take files named by the editable install's
    # egg-info, and a wheel built here would carry what a clean clone's would not.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "rh-report", "rh-load", "__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("returns_harness-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "simulators/scenarios/baseline.yaml" in names and "reference_middleware/defects.py" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "160"}
    where = subprocess.run([sys.executable, "-c", "import simulators; print(simulators.__file__)"], capture_output=True, text=True,
                           cwd=away, env=env, timeout=60, check=False)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    done = subprocess.run([sys.executable, "-m", "simulators.cli", "simulate", "baseline", "--returns", "5"], capture_output=True,
                          text=True, cwd=away, env=env, timeout=120, check=False)
    assert done.returncode == 0 and "baseline (seed 1)" in done.stdout, done.stdout + done.stderr
    # `init` writes the starter folder from the wheel's own copy; its scenario loads.
    init = subprocess.run([sys.executable, "-m", "simulators.cli", "init", "starter"], capture_output=True, text=True, cwd=away, env=env,
                          timeout=60, check=False)
    assert init.returncode == 0, init.stdout + init.stderr
    assert {p.relative_to(away / "starter").as_posix() for p in (away / "starter").rglob("*") if p.is_file()} == {
        "README.md", "my-season.yaml", "features/our_returns.feature", "features/test_our_returns.py"}
    mine = subprocess.run([sys.executable, "-m", "simulators.cli", "simulate", "starter/my-season.yaml", "--returns", "5"],
                          capture_output=True, text=True, cwd=away, env=env, timeout=120, check=False)
    assert mine.returncode == 0 and "my-season (seed 1)" in mine.stdout, mine.stdout + mine.stderr
