"""A partition's end as the hub reads it includes the records of its last batch, on the embedded broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka.admin import NewTopic

from foundation.partition_ends import fetched_ends, held_records
from gridhub.broker import admin_client
from tests.support.hub import Hub, unique

BATCH = 5


def new_topic(hub: Hub) -> str:
    """A topic of one partition that only this test writes."""
    topic = unique("ends")
    admin = admin_client(hub.stack.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    return topic


async def publish_one_batch(bootstrap: str, topic: str) -> None:
    """Five records in one record batch: the case where the broker's ListOffsets answer falls short."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        batch = producer.create_batch()
        for number in range(BATCH):
            assert batch.append(key=None, value=f"record {number}".encode(), timestamp=None) is not None
        await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


async def ends_and_messages(bootstrap: str, topic: str) -> tuple[dict[TopicPartition, int], list[bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        ends = await fetched_ends(consumer, [partition])
        await consumer.seek_to_beginning(partition)
        values: list[bytes] = []
        while await consumer.position(partition) < ends[partition]:
            for messages in (await consumer.getmany(partition, timeout_ms=1000)).values():
                values.extend(message.value or b"" for message in messages)
        return ends, values
    finally:
        await consumer.stop()


def test_the_end_of_a_partition_is_after_every_record_of_its_last_batch(hub: Hub) -> None:
    topic = new_topic(hub)
    asyncio.run(publish_one_batch(hub.stack.bootstrap, topic))

    ends, values = asyncio.run(ends_and_messages(hub.stack.bootstrap, topic))

    assert ends == {TopicPartition(topic, 0): BATCH}
    assert values == [f"record {number}".encode() for number in range(BATCH)]


def test_an_empty_partition_ends_at_zero(hub: Hub) -> None:
    topic = new_topic(hub)

    ends, values = asyncio.run(ends_and_messages(hub.stack.bootstrap, topic))

    assert ends == {TopicPartition(topic, 0): 0}
    assert values == []


async def held(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        return await held_records(consumer, [(topic, 0)])
    finally:
        await consumer.stop()


def test_a_partition_holds_every_record_of_its_batches(hub: Hub) -> None:
    topic = new_topic(hub)
    assert asyncio.run(held(hub.stack.bootstrap, topic)) == 0

    asyncio.run(publish_one_batch(hub.stack.bootstrap, topic))
    asyncio.run(publish_one_batch(hub.stack.bootstrap, topic))

    assert asyncio.run(held(hub.stack.bootstrap, topic)) == 2 * BATCH
