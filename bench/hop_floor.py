"""The floor under every latency figure: one bare Kafka hop on the hub's own broker, in the same run.

A report crosses several Kafka hops before a desk or the warehouse sees it, and each hop costs
at least what the broker and the client stack cost for one record: the produce round trip and
the consumer's fetch, which an idle broker may hold for up to the consumer's fetch wait. This
measures that, with nothing of the hub in between: a plain aiokafka producer (acks=all, no
linger) sends one small record every ``INTERVAL_S`` to a topic of the benchmark's own, and a
plain consumer receives it, timed on one clock from just before the send to the moment the
consumer hands the record over. It is done twice, with the fetch wait the hub's services use
(``GRIDHUB_FETCH_WAIT_MS``) and with aiokafka's default, so the curve can be read against both.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.hub import BenchError, BenchHub, ensure_topic
from bench.report import Result, percentiles
from bench.session import Session
from foundation.kafka_security import aiokafka_options

FLOOR_TOPIC = "bench.floor"
RECORDS = 200
INTERVAL_S = 0.02
TIMEOUT_S = 30.0
"""How long the last record is awaited before the hop is declared broken."""
AIOKAFKA_FETCH_WAIT_MS: int = inspect.signature(AIOKafkaConsumer).parameters["fetch_max_wait_ms"].default


async def _hop(bootstrap: str, options: dict[str, Any], fetch_wait_ms: int) -> tuple[list[float], float]:
    """Latencies in seconds of ``RECORDS`` records sent one by one, and the seconds the sending took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, client_id="bench-floor", **options
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_wait_ms,
        client_id="bench-floor",
        **options,
    )
    await producer.start()
    try:
        await consumer.start()
        try:
            partition = TopicPartition(FLOOR_TOPIC, 0)
            consumer.assign([partition])
            await consumer.seek_to_end(partition)
            return await _send_and_receive(producer, consumer)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()


async def _send_and_receive(producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> tuple[list[float], float]:
    sent: dict[int, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        deadline = time.perf_counter() + RECORDS * INTERVAL_S + TIMEOUT_S
        while len(latencies) < RECORDS and time.perf_counter() < deadline:
            for messages in (await consumer.getmany(timeout_ms=100)).values():
                arrived = time.perf_counter()
                latencies.extend(arrived - sent[int(message.value)] for message in messages)

    receiving = asyncio.create_task(receive())
    start = time.perf_counter()
    for number in range(RECORDS):
        await asyncio.sleep(max(0.0, start + number * INTERVAL_S - time.perf_counter()))
        sent[number] = time.perf_counter()
        await producer.send(FLOOR_TOPIC, str(number).encode(), partition=0)
    seconds = time.perf_counter() - start
    await receiving
    if len(latencies) < RECORDS:
        raise BenchError(f"the bare hop delivered {len(latencies)} of {RECORDS} records within {TIMEOUT_S:.0f}s")
    return latencies, seconds


def measure_floor(session: Session, hub: BenchHub) -> None:
    """Record the bare hop with the hub's fetch wait and with aiokafka's default."""
    ensure_topic(hub.settings, hub.bootstrap, FLOOR_TOPIC, 1)
    options = aiokafka_options(hub.settings)
    for fetch_wait_ms, whose in (
        (hub.settings.fetch_wait_ms, "the hub's"),
        (AIOKAFKA_FETCH_WAIT_MS, "aiokafka's default"),
    ):
        with session.console.status(f"timing a bare Kafka hop, fetch wait {fetch_wait_ms} ms..."):
            latencies, seconds = asyncio.run(_hop(hub.bootstrap, options, fetch_wait_ms))
        session.record(
            Result(
                "incidents",
                f"bare hop floor, fetch wait {fetch_wait_ms} ms ({whose})",
                RECORDS,
                seconds,
                latency_ms=percentiles(latencies),
                details={
                    "topic": FLOOR_TOPIC,
                    "fetch_max_wait_ms": fetch_wait_ms,
                    "interval_ms": INTERVAL_S * 1000,
                    "producer": "aiokafka, acks=all, linger 0 ms",
                },
            )
        )
