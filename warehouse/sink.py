"""The warehouse sink: consume canonical topics, rejects and duplicate notices into DuckDB.

It is the only process that opens the warehouse for writing. It reads every
partition itself (no consumer group: there is exactly one writer) starting from
the offsets stored in DuckDB, which it trusts only for the topic incarnation
they were written for. Kafka-side offsets are never committed; DuckDB is the
source of truth for how far the warehouse got.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition

from foundation.logs import get_logger
from foundation.settings import Settings
from schemas.topics import sink_topics
from warehouse.contract import BatchContract
from warehouse.decode import decode_message
from warehouse.writer import Batch, WarehouseWriter

log = get_logger(__name__)


class Message(Protocol):
    """What the sink reads of a polled Kafka record."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...


class Poller(Protocol):
    """The part of a Kafka consumer the collector uses."""

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[TopicPartition, Sequence[Message]]: ...


class Collector:
    """Cuts the polled messages into batches that keep the caps of one DuckDB transaction.

    A single poll may return many ``canonical.batches`` messages of thousands of rows each, far
    more than a transaction may hold. So each message is decoded on its own and joins the batch
    only while the batch has room for it; the messages behind it wait, in the order they were
    polled, for the next batch. No message is polled twice or skipped, a batch stores exactly the
    offsets of the messages it holds, and a message bigger than a cap goes alone.
    """

    def __init__(self, consumer: Poller, settings: Settings) -> None:
        self.consumer = consumer
        self.max_records = settings.sink_batch_records
        self.max_bulk_rows = settings.sink_bulk_rows
        self.wait_ms = settings.sink_batch_wait_ms
        self.waiting: deque[Batch] = deque()

    def _fits(self, batch: Batch, message: Batch) -> bool:
        """Whether ``message`` may join ``batch``: an empty batch takes any message, however big."""
        if not batch.offsets:
            return True
        return (
            len(batch) + len(message) <= self.max_records and batch.bulk_rows + message.bulk_rows <= self.max_bulk_rows
        )

    def _full(self, batch: Batch) -> bool:
        return len(batch) >= self.max_records or batch.bulk_rows >= self.max_bulk_rows

    def collect(self, stop: threading.Event) -> Batch:
        """The next batch: waiting messages first, then polls until it is full or the wait budget is spent."""
        batch = Batch()
        deadline = time.monotonic() + self.wait_ms / 1000
        while not stop.is_set():
            while self.waiting and self._fits(batch, self.waiting[0]):
                batch.absorb(self.waiting.popleft())
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if self.waiting or self._full(batch) or remaining_ms <= 0:
                break
            polled = self.consumer.poll(timeout_ms=remaining_ms, max_records=self.max_records - len(batch))
            for partition, messages in polled.items():
                self.waiting.extend(
                    decode_message(partition.topic, partition.partition, message.offset, message.value or b"")
                    for message in messages
                )
        return batch


class Sink:
    """Micro-batching consumer; each batch is one DuckDB transaction."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        writer: WarehouseWriter,
        contract: BatchContract,
        topic_ids: dict[str, str],
    ) -> None:
        self.writer = writer
        self.contract = contract
        self.topic_ids = topic_ids
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="gridhub-sink",
            group_id=None,
            enable_auto_commit=False,
            max_poll_records=settings.sink_batch_records,
        )
        self.collector = Collector(self.consumer, settings)

    def _assign(self) -> None:
        """Take every partition and seek to where the warehouse left off (or the start)."""
        stored = self.writer.stored_offsets()
        partitions: list[TopicPartition] = []
        for topic in sink_topics():
            for number in sorted(self.consumer.partitions_for_topic(topic) or ()):
                partitions.append(TopicPartition(topic, number))
        self.consumer.assign(partitions)
        for partition in partitions:
            offset, topic_id = stored.get((partition.topic, partition.partition), (0, self.topic_ids[partition.topic]))
            if topic_id != self.topic_ids[partition.topic]:
                log.warning(
                    "topic was recreated since the warehouse last read it; reading it from the start",
                    topic=partition.topic,
                    partition=partition.partition,
                    stale_offset=offset,
                )
                offset = 0
            self.consumer.seek(partition, offset)

    def run(self, stop: threading.Event) -> None:
        """Write batches until ``stop`` is set; the batch in hand is always finished first."""
        self._assign()
        while not stop.is_set():
            batch = self.collector.collect(stop)
            if batch.offsets:
                refused = self.contract.enforce(batch)
                if refused:
                    log.warning("rows broke the warehouse contract and went to rejects", rows=refused)
                self.writer.write(batch, self.topic_ids)
                log.info("batch written", records=len(batch), bulk_rows=batch.bulk_rows)
        self.consumer.close()
