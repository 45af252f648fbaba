"""Intake from the message broker (RabbitMQ, AMQP 0-9-1): the layer's own durable queue, bound to
the WMS's topic exchange, consumed with manual acknowledgements.

A message is acknowledged only once its event is stored (a crash before that and the broker
delivers it again); one that breaks the contract is rejected without requeue, so the broker
dead-letters it (the queue's ``x-dead-letter-exchange``) where a person can look at it and
replay it. Both behaviours have a defect that breaks them: ``ack-before-store`` and
``requeues-poison``.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from reference_middleware.defects import Defect
from reference_middleware.intake import Intake, Refused
from reference_middleware.settings import BrokerSettings

log = logging.getLogger("reference.broker")
REQUEUE_PAUSE_S = 0.2  # requeues-poison: the pause before a poison message goes back (a tight loop otherwise)
STORE_RETRY_S = 1.0  # a store that failed (the database down): the message goes back after this


class BrokerIntake:
    def __init__(self, settings: BrokerSettings, intake: Intake, defects: frozenset[Defect]) -> None:
        self.settings = settings
        self.intake = intake
        self.defects = defects
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def start(self) -> None:
        """Declare the topology this layer owns (its queue, dead-letter exchange and queue), bind
        to the WMS's exchange, and consume. The connection reconnects by itself after an outage."""
        s = self.settings
        self.connection = await aio_pika.connect_robust(s.url, client_properties={"connection_name": "returns-harness reference"})
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=s.prefetch)
        dead_letters = await channel.declare_exchange(s.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
        parked = await channel.declare_queue(s.dead_letter_queue, durable=True)
        await parked.bind(dead_letters)
        events = await channel.declare_exchange(s.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(s.queue, durable=True, arguments={"x-dead-letter-exchange": s.dead_letter_exchange})
        for key in s.routing_keys:
            await queue.bind(events, routing_key=key)
        await queue.consume(self._on_message)

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            result = await self.intake.accept(message.body, message.message_id)
        except Exception:  # noqa: BLE001 - the store failed: the broker keeps the message for a later try
            log.exception("could not store message %s; it goes back to the queue", message.message_id)
            await asyncio.sleep(STORE_RETRY_S)
            await message.nack(requeue=True)
            return
        if isinstance(result, Refused):
            if Defect.REQUEUES_POISON in self.defects:
                await asyncio.sleep(REQUEUE_PAUSE_S)
                await message.nack(requeue=True)
            else:
                await message.reject(requeue=False)  # to the dead-letter exchange
            return
        await message.ack()
