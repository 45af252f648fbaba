"""The reference integration layer as a separate process, and a live world run against it.

Tests (and later `returns-harness run`) treat the reference as a user's middleware: a process
started from the command line, told where the fakes are, reached over HTTP only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from simulators import sut
from simulators.sut import wait_until  # noqa: F401 (the tests' one way to wait)
from simulators.world import World

SECRET = "whsec_" + "cmVmZXJlbmNlLXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk="


class ReferenceProcess(sut.ReferenceProcess):
    """The harness's reference process, with the tests' fixed secret."""

    def __init__(self, workdir: Path, defects: tuple[str, ...] = (), database: str | None = None) -> None:
        super().__init__(workdir, SECRET, defects, database)

    async def wait_healthy_async(self) -> None:
        await asyncio.to_thread(self.wait_healthy)


@contextlib.contextmanager
def reference(workdir: Path, **options) -> Iterator[ReferenceProcess]:
    ref = ReferenceProcess(workdir, **options)
    try:
        yield ref
    finally:
        ref.stop()


def run_world(world: World, ref: ReferenceProcess, timeout_s: float = 180, settle_limit_days: float = 6) -> None:
    """Serve the fakes, start the reference against them, run the season live, settle."""

    async def main() -> None:
        async def started(fleet) -> None:
            ref.start(fleet.env())
            await ref.wait_healthy_async()

        await asyncio.wait_for(world.run_live(webhook_url=f"{ref.url}/webhooks", secret=SECRET, on_started=started,
                                              settle_limit_days=settle_limit_days), timeout_s)

    asyncio.run(main())
