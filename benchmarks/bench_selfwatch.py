"""What the harness's watch on itself costs a live run (docs/CONTRACT.md, "Time").

Each round runs the same scenario live against the embedded reference twice, alternating which
goes first: once with the self-monitoring (an event-loop probe every 20 ms, the world's
lateness per event), once without. Reported: the ratio of wall time and of the harness
process's own CPU time (the reference's CPU is its own process's, not counted), with / without.

    python benchmarks/bench_selfwatch.py --scenario baseline --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from simulators.runner import webhook_secret
from simulators.scenario import load
from simulators.sut import ReferenceProcess
from simulators.world import World


def one_run(name: str, watch_self: bool) -> tuple[float, float]:
    """(wall seconds, harness CPU seconds) of one live run."""
    scenario = load(name)
    secret = webhook_secret(scenario.seed)
    with tempfile.TemporaryDirectory(prefix="bench-selfwatch-") as tmp:
        reference = ReferenceProcess(Path(tmp), secret, database=f"sqlite:///{tmp}/reference.sqlite3")
        world = World(scenario, live=True)

        async def started(fleet) -> None:
            reference.start({**fleet.env(), "RH_WEBHOOK_SECRET": secret})
            await asyncio.to_thread(reference.wait_healthy)

        wall, cpu = time.perf_counter(), time.process_time()
        try:
            asyncio.run(world.run_live(webhook_url=f"{reference.url}/webhooks", secret=secret, on_started=started,
                                       watch_self=watch_self))
        finally:
            reference.stop()
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="baseline")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for n in range(args.rounds):
        for watch_self in ((True, False) if n % 2 == 0 else (False, True)):
            results[watch_self].append(one_run(args.scenario, watch_self))
            wall, cpu = results[watch_self][-1]
            print(f"round {n + 1} {'with' if watch_self else 'without'} self-monitoring: wall {wall:.1f} s, harness CPU {cpu:.2f} s")
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in results.items()}
    print(f"median wall {med[True][0]:.1f} s vs {med[False][0]:.1f} s: ratio {med[True][0] / med[False][0]:.3f}x")
    print(f"median harness CPU {med[True][1]:.2f} s vs {med[False][1]:.2f} s: ratio {med[True][1] / med[False][1]:.3f}x")


if __name__ == "__main__":
    main()
