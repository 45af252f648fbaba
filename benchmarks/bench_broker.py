"""The message-broker channel end to end, messages/s, against a bare aio-pika pair in the same run.

Harness side: the broker channel as a run uses it (``simulators.channels.broker.BrokerChannel``:
persistent messages, ``mandatory``, publisher confirms), publishing N distinct ``tracking.updated``
events of returns nobody created (each stored job parks: no fake is called), 64 publishes in
flight; the reference consumes them from its own queue (prefetch 32, manual acks after the
SQLite transaction), timed from the first publish until its metrics count N stored.

Baseline: a bare aio-pika publisher (same bodies and properties, confirms, 64 in flight) and a
bare aio-pika consumer in its own process (same prefetch, manual ack, nothing stored), timed
from the first publish until the consumer has acked N. Rounds alternate; the ratio is what the
channel's transport and the reference's durable intake cost over the broker's own speed.

Needs RabbitMQ on 127.0.0.1:5672 (guest/guest).

    python benchmarks/bench_broker.py [--messages 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aio_pika
import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import bench_reference as ref  # noqa: E402  (fakes and reference start-up, metrics, events)

from simulators.channels.broker import BrokerChannel  # noqa: E402
from simulators.scenario import BrokerChannel as BrokerSettings  # noqa: E402

URL = "amqp://guest:guest@127.0.0.1:5672/"
IN_FLIGHT = 64
PREFETCH = 32
EVENT = "tracking.updated"


async def _limited(coros, limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(coro):
        async with gate:
            await coro

    await asyncio.gather(*(one(c) for c in coros))


def _stored(url: str) -> float:
    metrics = ref._metrics(url)
    return sum(v for k, v in metrics.items() if k.startswith("reference_deliveries_total") and 'outcome="new"' in k)


async def reference_round(workdir: Path, fakes, n: int, tag: str) -> float:
    channel = BrokerChannel(BrokerSettings(events=[EVENT]), run_id=tag)
    await channel.open()
    env_file = workdir / f"env-{tag}"
    env_file.write_text(fakes.env_file.read_text() + "".join(f"{k}={v}\n" for k, v in channel.env().items()))
    proc, url = ref.start_reference(workdir, env_file, workers=8)
    try:
        events = [orjson.dumps(e) for e in ref.tracking_events(tag, n)]
        before = _stored(url)
        start = time.perf_counter()
        target = channel.url_for(EVENT)
        await _limited((channel.send(target, {"webhook-id": f"evt_{tag}_{i:07d}", "x-correlation-id": f"RET-{tag}-{i:07d}"},
                                     body, 10.0) for i, body in enumerate(events)), IN_FLIGHT)
        while _stored(url) - before < n:
            await asyncio.sleep(0.05)
        return n / (time.perf_counter() - start)
    finally:
        ref._stop(proc)
        await channel.close()
        await channel.remove(queues=True)


async def bare_round(n: int, tag: str) -> float:
    exchange_name, queue_name = f"bench.bare.{tag}", f"bench.bare.{tag}.q"
    connection = await aio_pika.connect(URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(queue_name, durable=True)
        await queue.bind(exchange, routing_key=EVENT)
        consumer = await asyncio.create_subprocess_exec(sys.executable, __file__, "--bare-consumer", queue_name, str(n),
                                                        stdout=subprocess.PIPE)
        assert (await consumer.stdout.readline()).strip() == b"consuming"
        events = [orjson.dumps(e) for e in ref.tracking_events(tag, n)]
        start = time.perf_counter()

        async def publish(i: int, body: bytes) -> None:
            await exchange.publish(aio_pika.Message(body, message_id=f"evt_{tag}_{i:07d}", correlation_id=f"RET-{tag}-{i:07d}",
                                                    content_type="application/json", type=EVENT,
                                                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT, app_id="bench"),
                                   routing_key=EVENT, mandatory=True, timeout=10.0)

        await _limited((publish(i, b) for i, b in enumerate(events)), IN_FLIGHT)
        await consumer.stdout.readline()  # "done": the consumer acked all n
        rate = n / (time.perf_counter() - start)
        await consumer.wait()
        await channel.queue_delete(queue_name)
        await channel.exchange_delete(exchange_name)
        return rate


async def bare_consumer(queue_name: str, n: int) -> None:
    connection = await aio_pika.connect(URL)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.declare_queue(queue_name, durable=True)
        done = asyncio.Event()
        acked = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal acked
            await message.ack()
            acked += 1
            if acked >= n:
                done.set()

        await queue.consume(on_message)
        print("consuming", flush=True)
        await done.wait()
        print("done", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare-consumer", nargs=2, metavar=("QUEUE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_consumer:
        asyncio.run(bare_consumer(args.bare_consumer[0], int(args.bare_consumer[1])))
        return
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        workdir = Path(tmp)
        fakes = ref.start_fakes(workdir, "shipped")
        try:
            harness, bare = [], []
            for r in range(args.rounds):
                tag = f"b{int(time.time()) % 100000:05d}{r}"
                harness.append(asyncio.run(reference_round(workdir, fakes, args.messages, tag)))
                bare.append(asyncio.run(bare_round(args.messages, tag)))
                print(f"round {r + 1}: channel + reference {harness[-1]:,.0f} msg/s, bare aio-pika pair {bare[-1]:,.0f} msg/s",
                      flush=True)
        finally:
            fakes.stop()
    h, b = statistics.median(harness), statistics.median(bare)
    print(f"\nmedian of {args.rounds}: channel + reference {h:,.0f} msg/s, bare pair {b:,.0f} msg/s: ratio {h / b:.2f}x")


if __name__ == "__main__":
    main()
