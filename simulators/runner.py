"""The main job: serve the fakes, drive a scenario live against an integration layer, settle,
reconcile, and keep everything needed to reconcile again later.

The integration layer is the embedded reference (started as its own process) unless a URL is
given; either way it gets the fakes' URLs and credentials from ``.env.fakes`` in the report
directory, and the webhook secret from ``RH_WEBHOOK_SECRET`` in the same file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.fakekit.auth import seeded
from simulators.nemesis import Nemesis, kill_times, shell
from simulators.oracle import RunRecord, reconcile, save
from simulators.scenario import Scenario
from simulators.sut import STARTUP_TIMEOUT_S, ReferenceProcess, Unreachable, check_reachable, wait_until
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
    sut_start: str | None = None  # shell commands that start and kill a --sut-url layer, for the kill nemesis
    sut_stop: str | None = None
    sut_wait_s: float = 0.0  # a --sut-url layer you start yourself: wait this long for it once the fakes are up
    progress: Callable[[World], None] | None = None
    log: Callable[[str], None] = print
    secret: str = field(default="")
    # Namespaces every id the run sends (RET-3f9a1c-000001), so a layer that keeps its state
    # between runs need not be cleared; None: a fresh one; "": none (the ids of every run alike).
    run_id: str | None = None


RUN_ID = re.compile(r"^[0-9a-z]{1,8}$")


def fresh_run_id() -> str:
    """A label, not a draw of the world's: the world is the same whatever it is."""
    return secrets.token_hex(3)


def run(options: RunOptions) -> dict[str, Any]:
    """Run the scenario live, settle, reconcile; returns the verdict (reports not yet written)."""
    scenario, report_dir = options.scenario, options.report_dir.resolve()  # the reference runs in it
    report_dir.mkdir(parents=True, exist_ok=True)
    secret = options.secret or webhook_secret(scenario.seed)
    if options.sut_url:
        if not (options.sut_start or options.sut_wait_s):  # else the layer may start once the fakes are up
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
    run_id = fresh_run_id() if options.run_id is None else options.run_id
    if run_id and not RUN_ID.match(run_id):
        raise ValueError(f"--run-id: expected 1 to 8 lowercase letters or digits (or 'fixed'), got {run_id!r}")
    world = World(scenario, live=True, run_id=run_id)
    started = time.monotonic()
    hooks = _Hooks(options)
    nemesis = _nemesis(options, reference, world, hooks)

    async def on_started(fleet) -> None:
        fleet.write_env(report_dir / ".env.fakes", RH_WEBHOOK_SECRET=secret, **world.channel_env)
        if reference is not None:
            reference.start()
            await asyncio.to_thread(reference.wait_healthy)
            sut["clock"] = reference.health.get("clock", "wall")
        else:
            options.log(f"fakes up; their URLs and the webhook secret are in {report_dir / '.env.fakes'}")
            if options.sut_start and not _reachable(options.sut_url):
                options.log("starting the layer with --sut-start")
                await asyncio.to_thread(hooks.start)
            elif options.sut_wait_s and not _reachable(options.sut_url):
                await asyncio.to_thread(_wait_for_layer, options, report_dir / ".env.fakes")
        if nemesis is not None:
            world.deliverer.on_acknowledged.append(nemesis.acknowledged)
            nemesis.schedule(world.driver.call_at, kill_times(scenario), aim=scenario.faults.kills.aim)

    interrupted: list[int] = []  # the signal that asked the run to stop (SIGTERM from a CI timeout, Ctrl-C)

    def watch(world: World) -> str | None:
        """Why the run must stop, if it must: a signal, the embedded reference's exit, or silence."""
        if interrupted:
            return f"interrupted by {signal.Signals(interrupted[0]).name}, {time.monotonic() - started:.1f} s into the run"
        if nemesis is not None and nemesis.error:
            return nemesis.error
        if nemesis is not None and nemesis.busy:
            return None  # a planned kill: the layer is down on purpose
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
        hooks.stop_if_started()
        # A layer of the user's own may still consume from the run's queues: those stay its own.
        world.remove_channels(layer_stopped=reference is not None or bool(options.sut_stop))
    if interrupted and world.stopped:
        world.stopped["signal"] = interrupted[0]
    record = RunRecord.from_world(world)
    record.summary["sut"] = sut
    record.summary["run_id"] = run_id
    if scenario.faults.kills is not None:
        record.summary["kills"] = nemesis.kills if nemesis else []
        record.summary["kill_aim"] = scenario.faults.kills.aim
    return reconcile(save(record, report_dir / RUN_DIR), sut=sut, wall_seconds=round(time.monotonic() - started, 1))


class _Hooks:
    """A --sut-url layer's --sut-start and --sut-stop; one the harness started it also stops."""

    def __init__(self, options: RunOptions) -> None:
        self.url, self.start_cmd, self.stop_cmd = options.sut_url, options.sut_start, options.sut_stop
        self.started = False

    def start(self) -> None:
        shell(self.start_cmd, "--sut-start")
        self.started = True
        try:
            wait_until(lambda: _reachable(self.url), STARTUP_TIMEOUT_S, what=f"the layer at {self.url} after --sut-start")
        except TimeoutError as e:
            raise Unreachable(str(e)) from None

    def kill(self) -> None:
        shell(self.stop_cmd, "--sut-stop")
        self.started = False

    def stop_if_started(self) -> None:
        if self.started and self.stop_cmd:
            with contextlib.suppress(RuntimeError):
                self.kill()


def _nemesis(options: RunOptions, reference: ReferenceProcess | None, world: World, hooks: _Hooks) -> Nemesis | None:
    """The kill nemesis for this layer, if the scenario asks for kills and the layer can be killed."""
    kills = options.scenario.faults.kills
    if kills is None:
        return None
    now = lambda: world.clock.now().isoformat()  # noqa: E731
    if reference is not None:
        def restart() -> None:
            reference.start()
            reference.wait_healthy()

        return Nemesis(kill=reference.kill, start=restart, down_s=kills.down_s, up_s=kills.up_s, now=now)
    if not (options.sut_start and options.sut_stop):
        options.log("the scenario kills the layer, but without --sut-start and --sut-stop the harness cannot: no kills this run")
        return None
    return Nemesis(kill=hooks.kill, start=hooks.start, down_s=kills.down_s, up_s=kills.up_s, now=now)


WAIT_REPORT_EVERY_S = 5.0


def _wait_for_layer(options: RunOptions, env_file: Path) -> None:
    """--sut-wait: the fakes are up and their settings written; wait, saying how long is left,
    until the layer accepts connections (Unreachable when the time is up)."""
    options.log(f"waiting up to {options.sut_wait_s:g} s for your layer at {options.sut_url}: start it now, "
                f"with the settings in {env_file}")
    deadline = time.monotonic() + options.sut_wait_s
    said = time.monotonic()
    while not _reachable(options.sut_url):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Unreachable(f"the layer at {options.sut_url} did not accept connections within {options.sut_wait_s:g} s of the "
                              f"fakes starting (--sut-wait); its settings are in {env_file}")
        if time.monotonic() - said >= WAIT_REPORT_EVERY_S:
            said = time.monotonic()
            options.log(f"  still waiting for {options.sut_url}: {left:.0f} s left")
        time.sleep(min(0.2, left))
    options.log(f"your layer at {options.sut_url} is up")


def _reachable(url: str) -> bool:
    try:
        check_reachable(url, timeout_s=1.0)
        return True
    except Exception:  # noqa: BLE001 - not yet
        return False


def reconcile_saved(run_dir: Path) -> dict[str, Any]:
    """The oracle again, on a saved run directory (a report directory or its ``run`` folder)."""
    directory = run_dir / RUN_DIR if (run_dir / RUN_DIR).is_dir() else run_dir
    return reconcile(directory)
