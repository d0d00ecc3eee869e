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

from kafka import KafkaConsumer, TopicPartition

from foundation.logs import get_logger
from foundation.settings import Settings
from schemas.topics import sink_topics
from warehouse.contract import BatchContract
from warehouse.decode import add_message
from warehouse.writer import Batch, WarehouseWriter

log = get_logger(__name__)


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
        self.settings = settings
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
        self.batches_written = 0

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

    def _collect(self, stop: threading.Event) -> Batch:
        """Poll until the batch is full or the wait budget is spent."""
        batch = Batch()
        deadline = time.monotonic() + self.settings.sink_batch_wait_ms / 1000
        while (
            len(batch) < self.settings.sink_batch_records
            and batch.bulk_rows < self.settings.sink_bulk_rows
            and not stop.is_set()
        ):
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            polled = self.consumer.poll(
                timeout_ms=remaining_ms, max_records=self.settings.sink_batch_records - len(batch)
            )
            for partition, messages in polled.items():
                for message in messages:
                    add_message(batch, partition.topic, message.offset, message.value or b"")
                batch.offsets[(partition.topic, partition.partition)] = messages[-1].offset + 1
        return batch

    def run(self, stop: threading.Event) -> None:
        """Write batches until ``stop`` is set; the batch in hand is always finished first."""
        self._assign()
        while not stop.is_set():
            batch = self._collect(stop)
            if batch.offsets:
                refused = self.contract.enforce(batch)
                if refused:
                    log.warning("rows broke the warehouse contract and went to rejects", rows=refused)
                self.writer.write(batch, self.topic_ids)
                self.batches_written += 1
                log.info("batch written", records=len(batch), bulk_rows=batch.bulk_rows)
        self.consumer.close()
