"""The message-broker channel: WMS facts published to RabbitMQ (AMQP 0-9-1) through aio-pika.

The world's deliverer hands this transport a fact as it would POST a webhook. It is published
to the WMS's topic exchange, persistent, with the event id as ``message_id``, the return id as
``correlation_id`` and the event type as routing key and ``type``; ``mandatory``, so a fact no
queue is bound for comes back instead of vanishing. The broker's publisher confirm is the
answer (202: accepted for the layer). The layer acknowledges to the broker, not to us, so no
acknowledgement latency is timed for these facts, and a broker that refuses is not the layer's
silence. A publish that is not confirmed is retried on the delivery schedule, with the same
``message_id``: an at-least-once publisher, as real WMSs are.

Names carry the run id, so runs side by side on one broker do not share queues. After the run,
:meth:`BrokerChannel.dead_letters` reads (without taking) which message ids the layer's
dead-letter queue holds, and :meth:`BrokerChannel.remove` removes the run's names from the broker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika
from aio_pika.exceptions import AMQPError, ChannelClosed, DeliveryError

from simulators.delivery.transport import Answer
from simulators.scenario import BrokerChannel as BrokerSettings
from simulators.sut import Unreachable

CONFIRMED = 202  # accepted by the broker for the layer: the HTTP status that says exactly that
INSPECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Topology:
    """The run's names: the exchange the WMS publishes to, and the layer's queue and dead letters."""

    exchange: str
    queue: str
    dead_letter_exchange: str
    dead_letter_queue: str
    routing_keys: tuple[str, ...]
    per_run: bool  # the names carry a run id: the run may remove them afterwards

    @classmethod
    def of(cls, settings: BrokerSettings, run_id: str) -> Topology:
        suffix = f".{run_id}" if run_id else ""
        queue = settings.queue + suffix
        return cls(settings.exchange + suffix, queue, queue + ".dlx", queue + ".dead", tuple(settings.events), bool(run_id))


def _with_credentials(url: str) -> str:
    """The broker URL with RH_BROKER_USER / RH_BROKER_PASSWORD (default guest/guest) put in."""
    parts = urlsplit(url)
    user = quote(os.environ.get("RH_BROKER_USER", "guest"), safe="")
    password = quote(os.environ.get("RH_BROKER_PASSWORD", "guest"), safe="")
    netloc = f"{user}:{password}@{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    return urlunsplit(parts._replace(netloc=netloc))


class BrokerChannel:
    """The WMS's publisher: one connection, one confirming channel, the run's topic exchange."""

    def __init__(self, settings: BrokerSettings, run_id: str) -> None:
        self.settings = settings
        self.topology = Topology.of(settings, run_id)
        self.url = settings.url  # no credentials: this one may be journaled and shown
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def open(self, timeout_s: float = 10.0) -> None:
        """Connect and declare the exchange; a broker that cannot be reached is a clear error."""
        try:
            self._connection = await aio_pika.connect_robust(_with_credentials(self.url), timeout=timeout_s,
                                                             client_properties={"connection_name": "returns-harness wms"})
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await channel.declare_exchange(self.topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        except (AMQPError, OSError, TimeoutError) as e:
            await self.aclose()
            raise BrokerUnavailable(f"the message broker at {self.url} cannot be reached ({type(e).__name__}: {e}); "
                                    "start it (rabbitmq-server -detached) or remove channels.broker from the scenario") from None

    def url_for(self, event_type: str) -> str:
        """Where a fact of ``event_type`` goes, as a URL without secrets (journaled per attempt)."""
        return f"{self.url.rstrip('/')}/{quote(self.topology.exchange, safe='')}/{quote(event_type, safe='')}"

    def env(self) -> dict[str, str]:
        """What the layer needs to consume, for the fakes' env file (the URL there has credentials)."""
        t = self.topology
        return {"RH_BROKER_URL": _with_credentials(self.url), "RH_BROKER_EXCHANGE": t.exchange, "RH_BROKER_QUEUE": t.queue,
                "RH_BROKER_DEAD_LETTER_EXCHANGE": t.dead_letter_exchange, "RH_BROKER_DEAD_LETTER_QUEUE": t.dead_letter_queue,
                "RH_BROKER_ROUTING_KEYS": ",".join(t.routing_keys)}

    # -- the transport -----------------------------------------------------------------------

    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Answer:
        routing_key = unquote(url.rsplit("/", 1)[1])
        message = aio_pika.Message(
            body, message_id=headers.get("webhook-id"), correlation_id=headers.get("x-correlation-id"),
            content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT, type=routing_key,
            app_id="returns-harness-wms")
        try:
            if self._exchange is None:
                return Answer(None, None, "broker: not connected", by_layer=False)
            await self._exchange.publish(message, routing_key=routing_key, mandatory=True, timeout=timeout_s)
        except DeliveryError as e:
            returned = getattr(e, "message", None) is not None
            reason = (f"the broker returned it: no queue is bound to {self.topology.exchange} for {routing_key!r} "
                      "(the layer declares and binds its queue at startup)") if returned else f"the broker did not confirm it: {e}"
            return Answer(None, None, reason, by_layer=False)
        except (AMQPError, OSError, TimeoutError) as e:
            return Answer(None, None, f"broker: {type(e).__name__}: {e}", by_layer=False)
        return Answer(CONFIRMED, None, None, by_layer=False)

    # -- after the run -----------------------------------------------------------------------

    async def dead_letters(self) -> set[str] | None:
        """The message ids in the layer's dead-letter queue, read without taking them (the channel
        closes unacknowledged, so the broker keeps them); None if that queue does not exist."""
        if self._connection is None:
            return None
        channel = await self._connection.channel()
        ids: set[str] = set()
        try:
            queue = await channel.declare_queue(self.topology.dead_letter_queue, passive=True)
            while (message := await queue.get(no_ack=False, fail=False, timeout=INSPECT_TIMEOUT_S)) is not None:
                if message.message_id:
                    ids.add(message.message_id)
        except ChannelClosed:
            return None
        finally:
            if not channel.is_closed:
                await channel.close()
        return ids

    async def close(self) -> None:
        """Close the publisher. The topology stays: the layer may still be consuming from it
        (see :meth:`remove`, once the layer has stopped)."""
        await self.aclose()

    async def remove(self, *, queues: bool) -> None:
        """Remove the run's exchange and (``queues``: the layer that owned them has stopped) the
        layer's queues and dead-letter exchange; only names that carry the run id, so a shared
        broker keeps nothing of a run, and a fixed name (``--run-id fixed``) is never touched."""
        if not self.topology.per_run:
            return
        t = self.topology
        try:
            connection = await aio_pika.connect(_with_credentials(self.url), timeout=INSPECT_TIMEOUT_S)
        except (AMQPError, OSError, TimeoutError):
            return  # the broker went away: nothing of ours is left to remove
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(t.exchange)
            if queues:
                for queue in (t.queue, t.dead_letter_queue):
                    await channel.queue_delete(queue)
                await channel.exchange_delete(t.dead_letter_exchange)

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._exchange = None


class BrokerUnavailable(Unreachable):
    """The broker a scenario's channel names cannot be reached (exit 3, as an unreachable layer)."""
