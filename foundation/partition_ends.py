"""Where Kafka partitions end, read from a fetch answer instead of ListOffsets.

The embedded Tansu broker answers ListOffsets ("latest", which aiokafka's ``end_offsets``
asks) with the first offset of the partition's last record batch plus one, short of the end
whenever that batch holds several records. A reader that stops there misses the tail of the
partition: Faust restored its tables only up to that offset, so a worker killed right after
it noted an overdue alert in a table came back without the note and raised the alert again.
A fetch answer carries the partition's true high watermark, so the end is read from one; a
broker that answers ListOffsets correctly gives the same number either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

FETCH_POLL_MS = 200
P = TypeVar("P", bound=tuple[str, int])
"""A partition as the caller names it: aiokafka's ``TopicPartition`` or Faust's ``TP``."""


async def fetched_ends(consumer: AIOKafkaConsumer, partitions: Sequence[P], timeout_s: float = 60) -> dict[P, int]:
    """The high watermark of each of ``partitions``, from a fetch answer.

    The consumer is assigned exactly ``partitions`` and left positioned near their ends, so a
    caller that reads them afterwards seeks first. ``partitions`` may be any (topic, partition)
    pairs, Faust's ``TP`` as well; the answer is keyed by them. Raises :class:`TimeoutError`
    when no fetch answer came for some partition within ``timeout_s``.
    """
    wanted = [TopicPartition(topic, number) for topic, number in partitions]
    if not wanted:
        return {}
    consumer.assign(wanted)
    listed = await consumer.end_offsets(wanted)
    for partition in wanted:  # inside the last batch, so the answer is short but carries the high watermark
        consumer.seek(partition, max(listed[partition] - 1, 0))
    async with asyncio.timeout(timeout_s):
        while any(consumer.highwater(partition) is None for partition in wanted):
            await consumer.getmany(*wanted, timeout_ms=FETCH_POLL_MS)
    ends = {partition: max(listed[partition], consumer.highwater(partition) or 0) for partition in wanted}
    return {given: ends[TopicPartition(*given)] for given in partitions}


async def held_records(consumer: AIOKafkaConsumer, partitions: Sequence[P]) -> int:
    """How many records ``partitions`` hold together, from their first offset to the end a fetch answer gives.

    Leaves the consumer as :func:`fetched_ends` does: a caller that reads the records seeks first.
    """
    ends = await fetched_ends(consumer, partitions)
    starts = await consumer.beginning_offsets([TopicPartition(topic, number) for topic, number in partitions])
    return sum(ends[given] - starts[TopicPartition(*given)] for given in partitions)
