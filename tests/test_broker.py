"""The message-broker channel against a real RabbitMQ: the WMS's facts published to a topic
exchange, consumed by the reference from its own queue, poison dead-lettered.

Needs RabbitMQ on 127.0.0.1:5672 (guest/guest): started with ``rabbitmq-server -detached`` when
it is down, and these tests skip, saying why, when it cannot be had.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from simulators.faults import SIGNATURE_FAULTS, FaultPlan
from simulators.oracle import query
from simulators.scenario import ScenarioError, load, parse
from tests.channel_runs import harness, side_by_side

BROKER = ("127.0.0.1", 5672)
START_TIMEOUT_S = 60.0


def _listening() -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(BROKER) == 0


@pytest.fixture(scope="module")
def rabbitmq() -> None:
    """RabbitMQ on loopback, started if it is down; a skip naming the reason if it cannot be."""
    if _listening():
        return
    server = shutil.which("rabbitmq-server") or next((p for p in ("/usr/sbin/rabbitmq-server",) if Path(p).exists()), None)
    if server is None:
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672 and rabbitmq-server is not installed (Debian: rabbitmq-server)")
    subprocess.run([server, "-detached"], capture_output=True, timeout=60, check=False)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _listening():
            return
        time.sleep(0.5)
    pytest.skip(f"RabbitMQ did not start on 127.0.0.1:5672 within {START_TIMEOUT_S:g} s (rabbitmq-server -detached)")


def short_channels() -> dict:
    """The shipped `channels` scenario, shorter: poison and duplicates often enough in 40 returns."""
    scenario = load("channels").model_dump(mode="json")
    scenario["volumes"]["max_returns"] = 40
    scenario["time_scale"] = 172_800
    for event_type in ("receipt.completed", "inspection.completed"):
        scenario["faults"]["events"]["by_event_type"][event_type]["malformed_rate"] = 0.12
    return scenario


@pytest.fixture(scope="module")
def runs(rabbitmq, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """The correct reference and the one that requeues poison, side by side on one broker."""
    return side_by_side(tmp_path_factory.mktemp("broker"), short_channels(),
                        [("correct",), ("requeues-poison", "--defect", "requeues-poison")])


def _checks(verdict: dict) -> dict[str, dict]:
    return {c["name"]: c for c in verdict["checks"]}


def test_the_reference_consumes_the_broker_and_passes_with_poison_dead_lettered(runs):
    path, verdict = runs["correct"]
    checks = _checks(verdict)
    assert verdict["ok"], [(n, c["violations"][:2]) for n, c in checks.items() if c["valid"] is False]
    poison = checks["poison-dead-lettered"]
    assert poison["valid"] is True and poison["counts"]["ok"] >= 2  # poison was put to the layer, and parked
    # The WMS's facts went by the broker: confirmed (202) by it, with no acknowledgement latency
    # timed (the layer acks to the broker); the others are webhooks the layer answered.
    rows = query(path / "run", "SELECT event_type, status, latency_ms FROM deliveries WHERE status IS NOT NULL")
    by_type = {t: {(s, lat is None) for tt, s, lat in rows if tt == t} for t in {r[0] for r in rows}}
    assert by_type["inspection.completed"] == by_type["receipt.completed"] == {(202, True)}
    assert {s for s, _ in by_type["return.created"]} == {200} and not any(none for _, none in by_type["return.created"])
    # Unsigned facts draw no signature faults, and the coverage grid says they cannot happen.
    events = verdict["coverage"]["events"]
    assert all(events["inspection.completed"][k] is None for k in SIGNATURE_FAULTS)
    assert events["inspection.completed"]["duplicate"] > 0 and events["receipt.completed"]["malformed"] > 0
    env = (path / ".env.fakes").read_text()
    assert "RH_BROKER_URL=amqp://" in env and "RH_BROKER_DEAD_LETTER_QUEUE=returns-layer." in env


def test_a_layer_that_requeues_poison_fails_only_the_dead_letter_check(runs):
    _, verdict = runs["requeues-poison"]
    failed = {name for name, c in _checks(verdict).items() if c["valid"] is False}
    assert failed == {"poison-dead-lettered"}
    violation = _checks(verdict)["poison-dead-lettered"]["violations"][0]
    assert violation["kind"] == "lost" and "is not in the layer's dead-letter queue" in violation["message"]
    assert violation["evidence"]["deliveries"]  # the poison message's own deliveries, with their fault


def test_a_run_leaves_nothing_of_its_own_on_the_broker(runs):
    """The run's exchange and the layer's queues carry the run id, and are removed after it."""
    import aio_pika

    names = []
    for _, verdict in runs.values():
        run_id = verdict["summary"]["run_id"]
        names += [f"returns-layer.{run_id}", f"returns-layer.{run_id}.dead"]

    async def declared() -> list[str]:
        left = []
        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            for name in names:
                channel = await connection.channel()
                try:
                    await channel.declare_queue(name, passive=True)
                    left.append(name)
                except aio_pika.exceptions.ChannelClosed:
                    pass
        return left

    assert asyncio.run(declared()) == []


def test_a_fact_no_queue_is_bound_for_comes_back_and_is_not_confirmed(rabbitmq):
    """`mandatory`: before the layer binds its queue a publish is returned, not silently dropped,
    and the delivery is retried (no answer); once a queue is bound, the broker confirms (202)."""
    import aio_pika

    from simulators.channels.broker import BrokerChannel
    from simulators.scenario import BrokerChannel as BrokerSettings

    async def go() -> tuple:
        channel = BrokerChannel(BrokerSettings(events=["receipt.completed"]), run_id=f"t{time.time_ns() % 10**6:06d}")
        await channel.open()
        headers = {"webhook-id": "evt_1", "x-correlation-id": "RET-1"}
        try:
            unbound = await channel.send(channel.url_for("receipt.completed"), headers, b"{}", 5.0)
            connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
            async with connection:
                amqp = await connection.channel()
                queue = await amqp.declare_queue(channel.topology.queue, durable=True)
                await queue.bind(channel.topology.exchange, routing_key="receipt.completed")
                bound = await channel.send(channel.url_for("receipt.completed"), headers, b"{}", 5.0)
                message = await queue.get(timeout=5)
                await message.ack()
            return unbound, bound, message
        finally:
            await channel.close()
            await channel.remove(queues=True)

    unbound, bound, message = asyncio.run(go())
    assert unbound.status is None and "no queue is bound" in unbound.error and unbound.by_layer is False
    assert bound.status == 202 and bound.by_layer is False
    assert (message.message_id, message.correlation_id, message.type, message.delivery_mode) == (
        "evt_1", "RET-1", "receipt.completed", aio_pika.DeliveryMode.PERSISTENT)


def test_an_unreachable_broker_is_exit_3_naming_it(tmp_path):
    scenario = short_channels()
    scenario["channels"]["broker"]["url"] = "amqp://127.0.0.1:9/"
    (tmp_path / "nowhere.yaml").write_text(yaml.safe_dump(scenario))
    done = harness("run", "nowhere.yaml", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "the message broker at amqp://127.0.0.1:9/ cannot be reached" in done.stderr.replace("\n", " ")
    assert "Traceback" not in done.stderr


def test_broker_settings_are_checked_with_the_field_named():
    with pytest.raises(ScenarioError, match="channels.broker: .*without user and password"):
        parse("name: x\nchannels:\n  broker: {url: 'amqp://guest:guest@127.0.0.1/'}\n", "x.yaml")
    with pytest.raises(ScenarioError, match="channels.broker.events.0: Input should be"):
        parse("name: x\nchannels:\n  broker: {events: [receipt.done]}\n", "x.yaml")


def test_facts_sent_by_the_broker_never_draw_signature_faults():
    scenario = parse("name: x\nseed: 3\nchannels:\n  broker: {events: [inspection.completed]}\n"
                     "faults:\n  events: {forged_rate: 1.0, clock_skew_rate: 1.0, rotation_rate: 1.0}\n", "x.yaml")
    plan = FaultPlan(scenario)
    by_broker = plan.deliveries("evt_1", "inspection.completed", "RET-1", "RET-1:inspection.completed:1")
    assert [options.fault for _, options in by_broker] == [None]
    by_webhook = plan.deliveries("evt_2", "receipt.completed", "RET-1", "RET-1:receipt.completed:1")
    assert by_webhook[0][1].fault == "forged"
