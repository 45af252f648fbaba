"""Virtual-mode returns per second of the full model, against a bare SimPy skeleton that
schedules the same number of events per return, measured in the same run; and peak memory.

    python benchmarks/bench_model.py [--returns 5000] [--rounds 3] [--memory-returns 0]

Targets (issue 3): >= 0.5x the skeleton; peak memory for 1,000,000 returns under 2 GB.
Also measured: the floor, the skeleton plus only what any model of ours must do per return
(three keyed random streams, a trace line per step), which bounds the ratio any model can reach.
With --memory-returns N, a fresh process runs N returns (trace streamed to /dev/null) and
reports its peak resident memory.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import subprocess
import sys
import time

import orjson
import simpy

from simulators.scenario import Scenario
from simulators.world import World


def _scenario(returns: int) -> Scenario:
    # Enough days at a steady rate for the requested number of returns, and a warehouse staffed
    # for that rate (10 inspectors a site clear 2,400 a day): with the default 3 a site (720 a
    # day) the backlog grows for the whole run, every return stays in flight, and memory then
    # measures the backlog rather than the model.
    per_day = 2000
    return Scenario(name="bench", volumes={"days": returns / per_day * 1.3 + 1, "returns_per_day": per_day, "max_returns": returns},
                    seed_data={"orders": 3000}, warehouse={"inspection_capacity": 10})


def full_model(returns: int) -> tuple[float, float]:
    """(returns per second, events scheduled per return)"""
    world = World(_scenario(returns))
    started = time.perf_counter()
    world.run_virtual()
    elapsed = time.perf_counter() - started
    return world.model.requested / elapsed, next(world.env._eid) / world.model.requested  # events scheduled so far


def skeleton(returns: int, events_per_return: float, floor: bool = False) -> float:
    """The same lifecycle's shape with nothing in it: timeouts and two resource holds per return.

    With ``floor``, also the least any model of ours must add to it: the return's three keyed
    random streams (live runs need draws keyed by what they decide, see MODEL.md) and a trace
    line per step. No business rule, no document: what is left is the ceiling of the ratio."""
    env = simpy.Environment()
    sink = io.BytesIO()
    receiving, inspecting = simpy.Resource(env, 4), simpy.Resource(env, 3)
    # A resource request and release cost about 3 events, a process start 2, a timeout 1.
    timeouts = max(1, round(events_per_return) - 2 * 3 - 2)

    def one(n: int):
        rid = f"RET-{n:06d}"
        if floor:
            streams = [random.Random(f"7:{part}:{rid}") for part in ("customer", "carrier", "warehouse")]
            streams[0].random()
        for _ in range(timeouts // 2):
            yield env.timeout(60)
            if floor:
                sink.write(orjson.dumps({"t": env.now, "kind": "step", "return_id": rid}) + b"\n")
        with receiving.request() as slot:
            yield slot
            yield env.timeout(1)
        with inspecting.request() as slot:
            yield slot
            yield env.timeout(1)
        for _ in range(timeouts - timeouts // 2 - 2):
            yield env.timeout(60)

    def demand():
        for n in range(returns):
            yield env.timeout(30)
            env.process(one(n))

    env.process(demand())
    started = time.perf_counter()
    env.run()
    return returns / (time.perf_counter() - started)


def peak_memory(returns: int) -> None:
    with open("/dev/null", "wb") as sink:
        world = World(_scenario(returns), trace_sink=sink)
        world.run_virtual()
    # VmHWM, not ru_maxrss: a child inherits its parent's ru_maxrss.
    peak = int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) / 1024
    print(f"{world.model.requested} returns, peak RSS {peak:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-returns", type=int, default=0)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        peak_memory(args.memory_child)
        return
    full, skel, floor, per_return = [], [], [], 0.0
    for _ in range(args.rounds):
        rate, per_return = full_model(args.returns)
        full.append(rate)
        skel.append(skeleton(args.returns, per_return))
        floor.append(skeleton(args.returns, per_return, floor=True))
    f, s, least = statistics.median(full), statistics.median(skel), statistics.median(floor)
    print(f"{args.returns} returns x {args.rounds} rounds, {per_return:.1f} SimPy events per return")
    print(f"full model {f:,.0f} returns/s, skeleton {s:,.0f} returns/s, ratio {f / s:.3f}x")
    print(f"floor (skeleton + 3 keyed streams + a trace line per step) {least:,.0f} returns/s, ratio {least / s:.3f}x: "
          "the most any model of ours could reach")
    if args.memory_returns:
        subprocess.run([sys.executable, __file__, "--memory-child", str(args.memory_returns)], check=True)


if __name__ == "__main__":
    main()
