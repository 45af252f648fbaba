"""The main job: serve the fakes, drive a scenario live against an integration layer, settle,
reconcile, and keep everything needed to reconcile again later.

The integration layer is the embedded reference (started as its own process) unless a URL is
given; either way it gets the fakes' URLs and credentials from ``.env.fakes`` in the report
directory, and the webhook secret from ``RH_WEBHOOK_SECRET`` in the same file.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.fakekit.auth import seeded
from simulators.oracle import RunRecord, reconcile, save
from simulators.scenario import Scenario
from simulators.sut import ReferenceProcess, check_reachable
from simulators.world import World

RUN_DIR = "run"  # inside the report directory: what `returns-harness reconcile` reads
SILENCE_S = 20.0  # a layer that answered no delivery for this many wall seconds has stopped answering


def _death(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name} (signal {-code})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def webhook_secret(seed: int) -> str:
    """A Standard Webhooks secret fixed by the seed, so a user's layer can be configured once
    (random, as the credentials, after ``--random-secrets``)."""
    return "whsec_" + base64.b64encode(seeded(f"{seed}:webhooks")).decode()


@dataclass
class RunOptions:
    scenario: Scenario
    report_dir: Path
    sut_url: str | None = None  # None: the embedded reference
    sut_clock: str = "wall"  # the clock a --sut-url layer schedules by (the reference says its own)
    defects: tuple[str, ...] = ()
    react_delay_s: float = 0.0  # the embedded reference waits this long before working on each event
    base_port: int | None = None  # None: ephemeral for the embedded reference, 8100 for a user's layer
    settle_limit_days: float = 30
    silence_s: float = SILENCE_S  # no delivery answered for this long (wall): the layer stopped answering
    progress: Callable[[World], None] | None = None
    log: Callable[[str], None] = print
    secret: str = field(default="")


def run(options: RunOptions) -> dict[str, Any]:
    """Run the scenario live, settle, reconcile; returns the verdict (reports not yet written)."""
    scenario, report_dir = options.scenario, options.report_dir.resolve()  # the reference runs in it
    report_dir.mkdir(parents=True, exist_ok=True)
    secret = options.secret or webhook_secret(scenario.seed)
    if options.sut_url:
        check_reachable(options.sut_url)
        sut = {"kind": "external", "url": options.sut_url, "defects": [], "clock": options.sut_clock}
        reference = None
    else:
        reference = ReferenceProcess(report_dir, secret, tuple(options.defects), f"sqlite:///{report_dir / 'reference.sqlite3'}",
                                     react_delay_s=options.react_delay_s)
        (report_dir / "reference.sqlite3").unlink(missing_ok=True)  # a fresh layer for a fresh world
        sut = {"kind": "reference", "url": reference.url + "/webhooks", "defects": list(options.defects), "clock": "wall",
               **({"react_delay_s": options.react_delay_s} if options.react_delay_s else {})}
    base_port = options.base_port if options.base_port is not None else (0 if reference else 8100)
    world = World(scenario, live=True)
    started = time.monotonic()

    async def on_started(fleet) -> None:
        fleet.write_env(report_dir / ".env.fakes", RH_WEBHOOK_SECRET=secret)
        if reference is not None:
            reference.start()
            await asyncio.to_thread(reference.wait_healthy)
            sut["clock"] = reference.health.get("clock", "wall")
        else:
            options.log(f"fakes up; their URLs and the webhook secret are in {report_dir / '.env.fakes'}")

    interrupted: list[int] = []  # the signal that asked the run to stop (SIGTERM from a CI timeout, Ctrl-C)

    def watch(world: World) -> str | None:
        """Why the run must stop, if it must: a signal, the embedded reference's exit, or silence."""
        if interrupted:
            return f"interrupted by {signal.Signals(interrupted[0]).name}, {time.monotonic() - started:.1f} s into the run"
        if reference is not None and reference.proc is not None and (code := reference.proc.poll()) is not None:
            return (f"the integration layer (the embedded reference) died: {_death(code)}, "
                    f"{time.monotonic() - started:.1f} s into the run; its log: {report_dir / 'reference.log'}")
        deliverer = world.deliverer
        if deliverer is not None and deliverer.silent_for() >= options.silence_s:
            return (f"the integration layer at {sut['url']} stopped answering: {deliverer.unanswered} deliveries in a row got no "
                    f"answer for {deliverer.silent_for():.0f} s ({deliverer.last_error})")
        return None

    async def live() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, interrupted.append, signum)
        await world.run_live(webhook_url=sut["url"], secret=secret, base_port=base_port, on_started=on_started,
                             progress=options.progress, watch=watch, settle_limit_days=options.settle_limit_days)

    try:
        asyncio.run(live())
    finally:
        if reference is not None:
            reference.stop()
    if interrupted and world.stopped:
        world.stopped["signal"] = interrupted[0]
    record = RunRecord.from_world(world)
    record.summary["sut"] = sut
    return reconcile(save(record, report_dir / RUN_DIR), sut=sut, wall_seconds=round(time.monotonic() - started, 1))


def reconcile_saved(run_dir: Path) -> dict[str, Any]:
    """The oracle again, on a saved run directory (a report directory or its ``run`` folder)."""
    directory = run_dir / RUN_DIR if (run_dir / RUN_DIR).is_dir() else run_dir
    return reconcile(directory)
