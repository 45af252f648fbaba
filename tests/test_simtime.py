"""The SimPy clock runs inside the asyncio loop without blocking it."""

from __future__ import annotations

import asyncio

import simpy

from simulators.seed import DEFAULT_EPOCH
from simulators.simtime import RealtimeDriver


def test_driver_keeps_time_scale_and_leaves_the_loop_free():
    env = simpy.Environment()
    driver = RealtimeDriver(env, time_scale=1000, epoch=DEFAULT_EPOCH)  # 1000 simulated s per wall s
    fired: list[float] = []

    def ticker():
        for _ in range(5):
            yield env.timeout(50)
            fired.append(env.now)

    env.process(ticker())
    ticks_of_the_loop = 0

    async def other_work():
        nonlocal ticks_of_the_loop
        while len(fired) < 5:
            ticks_of_the_loop += 1
            await asyncio.sleep(0.005)

    async def main():
        await asyncio.gather(driver.run(until=300), other_work())

    asyncio.run(main())
    assert fired == [50, 100, 150, 200, 250]
    assert env.now == 300
    # Paced, not instant: the loop served other work while the clock waited for wall time.
    assert ticks_of_the_loop > 10


def test_events_scheduled_from_outside_wake_the_driver_early():
    env = simpy.Environment()
    driver = RealtimeDriver(env, time_scale=100, epoch=DEFAULT_EPOCH)
    seen: list[float] = []

    async def main():
        run = asyncio.create_task(driver.run(until=100))  # nothing scheduled: would idle to t=100 (1 s)
        await asyncio.sleep(0.05)
        driver.call_at(10, lambda: seen.append(env.now))
        await run

    asyncio.run(main())
    assert seen == [10]
