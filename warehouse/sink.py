"""The warehouse sink: consume canonical topics, rejects and duplicate notices into DuckDB.

It is the only process that opens the warehouse for writing. It reads every
partition itself (no consumer group: there is exactly one writer) starting from
the offsets stored in DuckDB, which it trusts only for the topic incarnation
they were written for. Kafka-side offsets are never committed; DuckDB is the
source of truth for how far the warehouse got.

No message stops it: one it cannot read becomes a reject as it is decoded, and one
the warehouse cannot store is found by writing the failed transaction's messages in
smaller groups, then kept as a reject (:class:`IsolatingWriter`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition

from foundation.errors import ConfigurationError, InputRejected, RetryableError
from foundation.kafka_security import kafka_python_options
from foundation.logs import get_logger
from foundation.metrics import BATCH_ROWS, BATCH_SECONDS, CONSUMER_LAG, count_records
from foundation.retrying import OnRetry, retrying
from foundation.settings import Settings
from schemas.rejects import describe_error
from schemas.topics import sink_topics
from warehouse.contract import BatchContract
from warehouse.decode import UNWRITABLE, decode_all, decode_message, refuse
from warehouse.idle_checkpoint import IdleCheckpoint
from warehouse.writer import Batch, Origin, UnwritableBatch, WarehouseBroken, WarehouseWriter

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

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...

    def position(self, partition: TopicPartition) -> int | None: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...


class Collector:
    """Cuts the polled messages into batches that keep the caps of one DuckDB transaction.

    A single poll may return many ``canonical.batches`` messages of thousands of rows each, far
    more than a transaction may hold. So each message is decoded on its own and joins the batch
    only while the batch has room for it; the messages behind it wait, in the order they were
    polled, for the next batch. No message is polled twice or skipped, a batch stores exactly the
    offsets of the messages it holds, and a message bigger than a cap goes alone.

    A batch of single records waits to fill only while a backlog is arriving (the broker holds more
    than has been read). When a poll brings all there is, say one report's case, it is written at once:
    waiting out the batch timer for records that were not coming added half a second to every
    incident on a quiet day. ``GRIDHUB_SINK_BATCH_LINGER_MS`` trades that back where fewer, larger
    transactions matter more than a case's latency. A batch holding bulk-lane rows always waits out
    the batch wait: each transaction scans the copy tables, so a department's export is written
    fastest in the largest transactions, and it arrives faster than the sink writes only now and then.
    """

    def __init__(self, consumer: Poller, settings: Settings) -> None:
        self.consumer = consumer
        self.max_records = settings.sink_batch_records
        self.max_bulk_rows = settings.sink_bulk_rows
        self.wait_ms = settings.sink_batch_wait_ms
        self.linger_ms = min(settings.sink_batch_linger_ms, settings.sink_batch_wait_ms)
        self.waiting: deque[Batch] = deque()
        self.read_up_to: dict[TopicPartition, int] = {}
        """Per partition, the offset after the last message polled (or where it was sought): never past the
        consumer's position, which may stand further on where the broker skipped records it does not hand over."""

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset`` on."""
        self.consumer.seek(partition, offset)
        self.read_up_to[partition] = offset

    def behind(self) -> dict[TopicPartition, int]:
        """Records the broker holds past the consumer's position, for every assigned partition that has some.

        The consumer's own ``position`` walks every assigned partition (kafka-python validates them
        all on each call), so asking it for each of the sink's partitions (64 when this was measured)
        after every poll is work that grows with the square of the partitions (7.6% of the sink's
        sampled Python stacks at 20 reports/s, though its measured CPU did not move beyond noise).
        It is asked only where the offsets polled so far do not already reach the high watermark.
        """
        behind: dict[TopicPartition, int] = {}
        for partition in self.consumer.assignment():
            highwater = self.consumer.highwater(partition)
            if highwater is None or self.read_up_to.get(partition, -1) >= highwater:
                continue
            position = self.consumer.position(partition)
            if position is not None and highwater > position:
                behind[partition] = highwater - position
        return behind

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
        """The next batch: waiting messages first, then polls until it is full, the backlog is read or time is up."""
        batch = Batch()
        started = time.monotonic()
        deadline, lingered = started + self.wait_ms / 1000, started + self.linger_ms / 1000
        while not stop.is_set():
            while self.waiting and self._fits(batch, self.waiting[0]):
                batch.absorb(self.waiting.popleft())
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if self.waiting or self._full(batch) or remaining_ms <= 0:
                break
            if batch.offsets and not batch.bulk_rows and not self.behind() and time.monotonic() >= lingered:
                break
            polled = self.consumer.poll(timeout_ms=remaining_ms, max_records=self.max_records - len(batch))
            for partition, messages in polled.items():
                if messages:
                    self.read_up_to[partition] = messages[-1].offset + 1
                self.waiting.extend(
                    decode_message(partition.topic, partition.partition, message.offset, message.value or b"")
                    for message in messages
                )
        return batch


def _cause(error: Exception) -> BaseException:
    """What DuckDB or Arrow raised, for a person to read, rather than the writer's classification of it."""
    return error.__cause__ if isinstance(error, UnwritableBatch) and error.__cause__ else error


def _waiting_out_the_warehouse(
    stop: threading.Event, what: str, write: Callable[[], None], on_retry: OnRetry | None = None
) -> None:
    """Run ``write`` until it succeeds or fails for another reason than a warehouse that cannot be written now."""
    for attempt in retrying(stop, what, on_retry):
        with attempt:
            write()


MAX_TRIES = 3
"""Tries of a message that fails alone for a reason not known to lie in its content, before it is a reject."""


class IsolatingWriter:
    """Writes each batch in one transaction; when it fails, finds the messages the warehouse cannot store.

    One such message used to fail its whole transaction at every start, and the sink died on it
    until its supervisor gave up. Now the failure's type decides (:mod:`foundation.errors`): a
    warehouse that cannot be written now (an I/O error, a full disk) is waited for and the same
    batch tried again; a broken one stops the sink. Any other failure may lie in the batch: its
    halves are written apart, down to single messages, so the good messages land. A message that
    still fails alone is a reject with its place and the error: at once when DuckDB or Arrow
    refused its content (it fails the same way every time), after :data:`MAX_TRIES` tries for
    anything else. Its offset commits with its reject, so the partition moves on.
    """

    def __init__(
        self, writer: WarehouseWriter, topic_ids: dict[str, str], contract: BatchContract | None = None
    ) -> None:
        self.writer = writer
        self.topic_ids = topic_ids
        self.contract = contract
        self.unwritable: str | None = None
        """Why the warehouse cannot be written now, while the sink waits for it (its /healthz says so)."""

    def _cannot_write(self, error: RetryableError, _wait_s: float) -> None:
        self.unwritable = str(error)

    def write(self, batch: Batch, stop: threading.Event) -> None:
        """Store the batch: its rows, or the rejects of the messages that cannot be stored, with all its offsets.

        Raises :class:`RetryableError` only when ``stop`` is set while the warehouse cannot be
        written: nothing of the batch is stored, and the sink reads it again at its next start.
        """
        error = self._attempt(batch, stop)
        if error is None:
            return
        if len(batch.origins) > 1:
            half = len(batch.origins) // 2
            log.warning(
                "a transaction failed; writing its messages in halves to find the ones at fault",
                messages=len(batch.origins),
                error=describe_error(_cause(error)),
            )
            self.write(decode_all(batch.origins[:half]), stop)
            self.write(decode_all(batch.origins[half:]), stop)
            return
        tries = 1
        while not isinstance(error, InputRejected) and tries < MAX_TRIES:
            error = self._attempt(decode_all(batch.origins), stop)
            if error is None:
                return
            tries += 1
        self._refuse(batch.origins[0], error, stop)

    def _attempt(self, batch: Batch, stop: threading.Event) -> Exception | None:
        """Write the batch once (waiting out a warehouse that cannot be written now): None, or why it failed."""
        try:
            _waiting_out_the_warehouse(
                stop, "writing a batch to the warehouse", lambda: self._transaction(batch), self._cannot_write
            )
        except (RetryableError, ConfigurationError):
            raise
        except Exception as exc:  # noqa: BLE001 - any other failure may lie in the batch: the caller looks for it
            return exc
        finally:
            self.unwritable = None
        return None

    def _transaction(self, batch: Batch) -> None:
        if self.contract is not None:
            refused = self.contract.enforce(batch)
            if refused:
                log.warning("rows broke the warehouse contract and went to rejects", rows=refused)
        self.writer.write(batch, self.topic_ids)
        log.info("batch written", records=len(batch), bulk_rows=batch.bulk_rows)

    def _refuse(self, origin: Origin, error: Exception, stop: threading.Event) -> None:
        """Keep a message that fails alone as a reject; if even that cannot be stored, the warehouse is at fault."""
        cause = _cause(error)
        log.warning(
            "a message the warehouse cannot store was kept as a reject",
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            error=describe_error(cause),
        )
        rejects = refuse(origin, UNWRITABLE, cause)
        try:
            _waiting_out_the_warehouse(
                stop, "writing a reject to the warehouse", lambda: self.writer.write(rejects, self.topic_ids)
            )
        except (RetryableError, ConfigurationError):
            raise
        except Exception as exc:
            raise WarehouseBroken(
                f"the warehouse cannot store even the reject of {origin.topic}[{origin.partition}]@{origin.offset} "
                f"({describe_error(exc)}), so it is at fault, not the message; the sink stops: check the warehouse "
                "file and the disk, then start it again"
            ) from exc


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
        self.topic_ids = topic_ids
        self.isolating = IsolatingWriter(writer, topic_ids, contract)
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="gridhub-sink",
            group_id=None,
            enable_auto_commit=False,
            max_poll_records=settings.sink_batch_records,
            fetch_max_wait_ms=settings.sink_fetch_wait_ms,
            **kafka_python_options(settings),
        )
        self.collector = Collector(self.consumer, settings)
        self.idle_checkpoint_kib = settings.sink_idle_checkpoint_kib

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
            self.collector.seek(partition, offset)

    def run(self, stop: threading.Event) -> None:
        """Write batches until ``stop`` is set, then read on until a poll finds nothing more.

        The supervisor stops the sink after the worker, so what the worker sent last (a case
        derived from the last report, say) is in the topics but may not be read yet: reading
        to an empty poll, not to the broker's end offsets (which the embedded broker reports
        wrongly), lands it before the broker goes. A batch wait that brings nothing is a pause
        in which to checkpoint the warehouse (:mod:`warehouse.idle_checkpoint`).
        """
        self._assign()
        idle_checkpoint = IdleCheckpoint(self.writer.connection, self.idle_checkpoint_kib)
        try:
            while not stop.is_set():
                batch = self.collector.collect(stop)
                if batch.offsets:
                    self._write(batch, stop)
                elif not stop.is_set():
                    idle_checkpoint.run()
                self._measure_lag()
            self._read_to_the_end(stop)
        except RetryableError as exc:
            log.warning(
                "stopped while the warehouse could not be written; the batch is read again at the next start",
                error=str(exc),
            )
        finally:
            self.consumer.close()

    def _read_to_the_end(self, stop: threading.Event) -> None:
        """Write what is still to be read, batch by batch, until one poll window brings nothing."""
        reading = threading.Event()
        while (batch := self.collector.collect(reading)).offsets:
            self._write(batch, stop)

    def _write(self, batch: Batch, stop: threading.Event) -> None:
        """Write one batch, timed and counted for /metrics."""
        started = time.monotonic()
        self.isolating.write(batch, stop)
        BATCH_SECONDS.observe(time.monotonic() - started)
        BATCH_ROWS.observe(len(batch) + batch.bulk_rows)
        count_batch(batch)

    def _measure_lag(self) -> None:
        """Set the lag gauge of every topic: the high watermarks the last fetches saw, less the sink's positions."""
        seen = {
            partition.topic
            for partition in self.consumer.assignment()
            if self.consumer.highwater(partition) is not None
        }
        lag = dict.fromkeys(seen, 0)
        for partition, records in self.collector.behind().items():
            lag[partition.topic] += records
        for topic, records in lag.items():
            CONSUMER_LAG.labels("sink", topic).set(records)


def count_batch(batch: Batch) -> None:
    """Count a written batch's records by source: its ledger entries and its bulk-lane rows."""
    outcomes: Counter[tuple[str | None, bool]] = Counter(
        (row.get("source"), row.get("outcome") == "rejected") for row in batch.intake
    )
    for parts in batch.bulk.values():
        for part in parts:
            outcomes[(part.source, False)] += len(part)
    for (source, rejected), records in outcomes.items():
        if rejected:
            count_records("warehouse", source, taken=records, rejected=records)
        else:
            count_records("warehouse", source, taken=records, passed=records)
