"""The kill nemesis (after Jepsen's): the integration layer is killed with SIGKILL at seeded
moments of the season and started again after a pause, as a deploy, an OOM kill or a crashed
node does. What it acknowledged before the kill must still be done after it: the webhooks it
answered 200 are never sent again. Deliveries while it is down go unanswered and are retried.

The last kill is aimed (``faults.kills.aim``): from its seeded moment it waits for the layer to
acknowledge a fact of one type (by default an inspection, which asks for money) and strikes at
once, inside the window where a layer that answers before it stores has not stored it yet.

The embedded reference is killed and restarted by the harness; a layer at a URL through the
user's own commands (``--sut-stop``, which must kill it, and ``--sut-start``), run by /bin/sh.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from simulators.delivery.deliverer import Event
from simulators.model.demand import DAY
from simulators.scenario import Scenario

RESTART_TIMEOUT_S = 30.0


def kill_times(scenario: Scenario) -> list[float]:
    """When the layer is killed, in simulated seconds: seeded, inside the request window (where
    the traffic is), never in its first or last tenth."""
    kills = scenario.faults.kills
    if kills is None:
        return []
    rng = random.Random(f"{scenario.seed}:kills")
    span = 0.8 * scenario.volumes.days * DAY / kills.count  # one kill in each of count equal slices
    return [0.1 * scenario.volumes.days * DAY + span * (i + rng.uniform(0.2, 0.8)) for i in range(kills.count)]


def shell(command: str, what: str, timeout_s: float = RESTART_TIMEOUT_S) -> None:
    """Run a user's hook; a failure or a hang is an error naming the hook. Its output goes to a
    file, not a pipe: a layer it starts in the background keeps its copy of stdout and stderr,
    and a pipe would hold the hook open until the layer exits."""
    with tempfile.TemporaryFile() as err:
        try:
            done = subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{what} did not finish within {timeout_s:g} s: {command}") from None
        if done.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{what} exited with {done.returncode}: {err.read().decode(errors='replace')[-500:]}")


@dataclass
class Nemesis:
    """Kills and restarts one layer; ``busy`` while it is down, so supervision does not call a
    planned kill a death."""

    kill: Callable[[], None]
    start: Callable[[], None]  # blocking: returns once the layer is up again
    down_s: float
    up_s: float
    now: Callable[[], str]  # business time, for the record
    kills: list[dict] = field(default_factory=list)
    busy: bool = False
    error: str | None = None
    _tasks: set[asyncio.Task] = field(default_factory=set)
    _one_at_a_time: asyncio.Lock = field(default_factory=asyncio.Lock)
    _up_since: float = -1e9  # monotonic time the layer last came back
    _aim: str | None = None  # the event type whose next acknowledgement the armed aimed kill waits for
    _acknowledged: set[str] = field(default_factory=set)  # event ids the layer has acknowledged

    async def strike(self) -> None:
        async with self._one_at_a_time:  # a kill due while the layer is still down waits for it to be up
            if self.error:
                return
            await asyncio.sleep(max(0.0, self._up_since + self.up_s - time.monotonic()))
            self.busy = True
            await self._strike()

    async def _strike(self, after: Event | None = None) -> None:
        at, started = self.now(), time.monotonic()
        try:
            await asyncio.to_thread(self.kill)
            await asyncio.sleep(self.down_s)
            await asyncio.to_thread(self.start)
            self._up_since = time.monotonic()
            aimed = {"after": {"event_type": after.type, "event_id": after.id, "return_id": after.correlation_id}} if after else {}
            self.kills.append({"at": at, "down_wall_s": round(self._up_since - started, 2), **aimed})
        except Exception as e:  # noqa: BLE001 - reported as the run's stop reason
            self.error = f"the kill nemesis could not restart the layer: {e}"
        finally:
            self.busy = False

    def acknowledged(self, event: Event) -> None:
        """The layer answered 2xx to a delivery: if the aimed kill is armed for its type, this is
        the fact's first acknowledgement, and the layer is up and settled, strike now."""
        first = event.id not in self._acknowledged
        self._acknowledged.add(event.id)
        if (event.type == self._aim and first and not self.busy and not self._one_at_a_time.locked()
                and time.monotonic() >= self._up_since + self.up_s):
            self._aim = None
            self.busy = True  # from this instant: supervision must not take the kill for a death
            self._spawn(self._aimed(event))

    async def _aimed(self, event: Event) -> None:
        async with self._one_at_a_time:
            if not self.error:
                await self._strike(after=event)
            self.busy = False

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def schedule(self, call_at: Callable[[float, Callable[[], None]], None], times: list[float], aim: str | None = None) -> None:
        """Strike at each simulated time (through the world's scheduler, on the loop's thread);
        with ``aim``, the last time arms the aimed kill instead (see :meth:`acknowledged`)."""
        def fire() -> None:
            self._spawn(self.strike())

        def arm() -> None:
            self._aim = aim

        for i, t in enumerate(times):
            call_at(t, arm if aim and i == len(times) - 1 else fire)
