"""The raw ceiling of the client stack: how fast bare aiokafka moves the same records on the same broker.

A scenario's records/s alone does not say whether the hub is slow or the machine is; its
ratio to this loop does. The loop does the least any stage of the hub must do with the raw
records (consume them, produce them on with the hub's producer guarantees) and nothing
else, on the messages the bulk scenario published (its Arrow batches, as they travel),
right after it, while the hub sits idle.

The producer is acks=all but not idempotent: aiokafka's InitProducerId request fails on the
embedded broker (kafka-python's, which the connectors use, does not).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.hub import ensure_topic
from foundation.kafka_security import aiokafka_options
from foundation.partition_ends import held_records
from foundation.settings import Settings

TARGET_TOPIC = "bench.ceiling"


async def _consume_and_produce(
    bootstrap: str, source: str, timeout_s: float, options: dict[str, Any]
) -> tuple[int, float]:
    """Copy every message of ``source`` to the target topic; return their count and the seconds taken."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, client_id="bench-ceiling", **options
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, client_id="bench-ceiling", **options
    )
    await consumer.start()
    try:
        await producer.start()
        try:
            return await _copy(consumer, producer, source, timeout_s)
        finally:
            await producer.stop()
    finally:
        await consumer.stop()


async def _copy(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, source: str, timeout_s: float
) -> tuple[int, float]:
    partitions = [TopicPartition(source, number) for number in sorted(consumer.partitions_for_topic(source) or ())]
    records = await held_records(consumer, partitions)
    await consumer.seek_to_beginning(*partitions)
    copied = 0
    started = time.perf_counter()
    deadline = started + timeout_s
    while copied < records and time.perf_counter() < deadline:
        polled = await consumer.getmany(timeout_ms=1000, max_records=10_000)
        for messages in polled.values():
            for message in messages:
                await producer.send(TARGET_TOPIC, value=message.value, key=message.key)
            copied += len(messages)
    await producer.flush()
    return copied, time.perf_counter() - started


def measure_ceiling(settings: Settings, bootstrap: str, source: str) -> tuple[int, float]:
    """Messages copied and seconds taken by the bare loop (everything on ``source``, at most 10 minutes)."""
    # The hub's partition count, so the producer spreads as the hub's do.
    ensure_topic(settings, bootstrap, TARGET_TOPIC, settings.topic_partitions)
    return asyncio.run(_consume_and_produce(bootstrap, source, 600, aiokafka_options(settings)))
