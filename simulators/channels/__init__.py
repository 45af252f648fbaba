"""Channels other than webhooks by which facts reach the integration layer: adapters beside the
fakes. Each is a delivery transport (:mod:`simulators.delivery.transport`), so the world, its
faults and the oracle stay as they are; docs/CONTRACT.md describes each channel.

- :mod:`.broker`: WMS facts published to RabbitMQ (AMQP 0-9-1).
"""
