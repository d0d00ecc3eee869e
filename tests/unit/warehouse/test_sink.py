"""The sink on a real DuckDB file, without Kafka: transactions keep their caps within a poll and commit whole.

A scripted consumer stands in for Kafka's poll; everything after it (decoding, batching, the
writer, DuckDB) is the sink's own code.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from kafka import TopicPartition

from foundation.settings import Settings
from schemas.batches import encode_batch
from schemas.messages import canonical_message, reject_message
from schemas.records import Person, RawEnvelope
from schemas.rejects import Reject
from schemas.topics import CANONICAL_BATCHES, REJECTS, canonical_topic, sink_topics
from streams.normalise import fingerprint
from tests.support.identities import resident_id
from tests.unit.warehouse.batches import canonical
from warehouse.decode import decode_message
from warehouse.quality import Screening
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.sink import Collector
from warehouse.writer import UnwritableBatch, WarehouseWriter, connect

TOPIC_IDS = dict.fromkeys(sink_topics(), "topic-1")
BATCHES_0 = TopicPartition(CANONICAL_BATCHES, 0)
BATCHES_1 = TopicPartition(CANONICAL_BATCHES, 1)
_uids = itertools.count()


@dataclass(frozen=True)
class Record:
    """A polled Kafka record, as much of it as the sink reads."""

    offset: int
    value: bytes


class ScriptedConsumer:
    """Kafka's poll as the sink sees it: each scripted answer is handed over once, then nothing more arrives.

    It returns its whole answer whatever ``max_records`` asks, so the caps are shown to hold by the
    sink's own batching, not by the broker. Answers not handed over yet are the broker's backlog:
    the one partition it reports reads as behind its high watermark until the last answer is out.
    """

    def __init__(self, *answers: Mapping[TopicPartition, Sequence[Record]]) -> None:
        self.answers = deque(answers)
        self.asked: list[int] = []

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[TopicPartition, Sequence[Record]]:
        self.asked.append(max_records)
        return self.answers.popleft() if self.answers else {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        raise AssertionError("the scripted answers stand for one run of polls; nothing seeks in them")

    def assignment(self) -> set[TopicPartition]:
        return {BATCHES_0}

    def position(self, partition: TopicPartition) -> int | None:
        return len(self.asked)

    def highwater(self, partition: TopicPartition) -> int | None:
        return len(self.asked) + len(self.answers)


class SkippingBroker:
    """Partitions whose last offsets the broker does not hand over (as it skips transaction markers).

    The consumer's position then stands at the high watermark while the messages polled end
    earlier; ``position`` answers where each stands, and counts how often it is asked.
    """

    def __init__(self, polled: Mapping[TopicPartition, Sequence[Record]], positions: dict[TopicPartition, int]) -> None:
        self.answers = deque([polled])
        self.positions = positions
        self.highwaters = dict(positions)
        self.asked_position: list[TopicPartition] = []

    def poll(self, timeout_ms: int, max_records: int) -> Mapping[TopicPartition, Sequence[Record]]:
        return self.answers.popleft() if self.answers else {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        assert offset == 0

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def position(self, partition: TopicPartition) -> int | None:
        self.asked_position.append(partition)
        return self.positions[partition]

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters[partition]


def people(run: str, count: int) -> bytes:
    """A canonical.batches message of ``count`` new residents of one run."""
    rows = [(f"{run}-{next(_uids)}", {"id_number": resident_id(), "name": f"居民{number}"}) for number in range(count)]
    return encode_batch(canonical(run, rows))


def refused(record_id: str) -> bytes:
    """A rejects message, as the worker publishes one."""
    reject = Reject.build("validate", "missing_name", "name: missing", {"id": record_id}, record_uid=record_id)
    return reject_message(reject)


@pytest.fixture
def warehouse(tmp_path: Path) -> tuple[WarehouseWriter, duckdb.DuckDBPyConnection]:
    resolver = Resolver(ResolutionRules.load())
    connection = connect(tmp_path / "w.duckdb", resolver)
    return WarehouseWriter(connection, resolver), connection


def caps(**values: int) -> Settings:
    return Settings(**{"sink_batch_wait_ms": 20, **values})


def offsets(connection: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], int]:
    rows = connection.execute("SELECT topic, partition, next_offset FROM sink_offsets").fetchall()
    return {(topic, partition): offset for topic, partition, offset in rows}


def count(connection: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def written(collector: Collector, writer: WarehouseWriter, table: str) -> list[tuple[int, dict[tuple[str, int], int]]]:
    """Run the sink's loop until nothing more arrives: per transaction, the rows ``table`` gained, offsets stored."""
    connection = writer.connection
    steps = []
    while (batch := collector.collect(threading.Event())).offsets:
        before = count(connection, table)
        writer.write(batch, TOPIC_IDS)
        steps.append((count(connection, table) - before, offsets(connection)))
    return steps


def test_one_poll_beyond_the_bulk_cap_is_written_in_several_transactions_with_their_own_offsets(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    consumer = ScriptedConsumer(
        {
            BATCHES_0: [Record(0, people("r1", 40)), Record(1, people("r1", 40)), Record(2, people("r1", 40))],
            BATCHES_1: [Record(0, people("r1", 40)), Record(1, people("r1", 40))],
        },
        {BATCHES_0: [Record(3, people("r1", 30))]},
    )
    steps = written(Collector(consumer, caps(sink_bulk_rows=100)), writer, "person_sources")
    assert steps == [
        (80, {(CANONICAL_BATCHES, 0): 2}),
        (80, {(CANONICAL_BATCHES, 0): 3, (CANONICAL_BATCHES, 1): 1}),
        (70, {(CANONICAL_BATCHES, 0): 4, (CANONICAL_BATCHES, 1): 2}),
    ]
    assert connection.execute("SELECT outcome, count(DISTINCT record_uid) FROM intake GROUP BY 1").fetchall() == [
        ("new", 230)
    ]


def test_a_message_bigger_than_the_bulk_cap_is_written_alone(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, _ = warehouse
    consumer = ScriptedConsumer(
        {BATCHES_0: [Record(0, people("r1", 30)), Record(1, people("r1", 150)), Record(2, people("r1", 30))]}
    )
    steps = written(Collector(consumer, caps(sink_bulk_rows=100)), writer, "person_sources")
    assert [rows for rows, _ in steps] == [30, 150, 30]
    assert steps[-1][1] == {(CANONICAL_BATCHES, 0): 3}


def test_the_record_cap_holds_even_when_a_poll_returns_more_than_asked(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, _ = warehouse
    consumer = ScriptedConsumer({TopicPartition(REJECTS, 0): [Record(n, refused(f"bad-{n}")) for n in range(5)]})
    steps = written(Collector(consumer, caps(sink_batch_records=2)), writer, "rejects")
    assert steps == [(2, {(REJECTS, 0): 2}), (2, {(REJECTS, 0): 4}), (1, {(REJECTS, 0): 5})]
    assert consumer.asked[0] == 2


def test_what_one_poll_brings_is_written_at_once_when_nothing_more_is_waiting(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    consumer = ScriptedConsumer({TopicPartition(REJECTS, 0): [Record(0, refused("lone"))]})
    collector = Collector(consumer, caps(sink_batch_wait_ms=3_600_000))
    batch = collector.collect(threading.Event())
    assert len(consumer.asked) == 1
    writer.write(batch, TOPIC_IDS)
    assert count(connection, "rejects") == 1


def test_a_linger_keeps_filling_the_batch_though_nothing_more_is_waiting(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, _ = warehouse
    consumer = ScriptedConsumer({TopicPartition(REJECTS, 0): [Record(0, refused("lingering"))]})
    batch = Collector(consumer, caps(sink_batch_wait_ms=50, sink_batch_linger_ms=50)).collect(threading.Event())
    assert len(consumer.asked) > 1
    writer.write(batch, TOPIC_IDS)
    assert offsets(writer.connection) == {(REJECTS, 0): 1}


def test_a_bulk_batch_waits_out_the_batch_wait_for_more_rows(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, _ = warehouse
    consumer = ScriptedConsumer({BATCHES_0: [Record(0, people("lone-bulk", 5))]})
    batch = Collector(consumer, caps(sink_batch_wait_ms=50)).collect(threading.Event())
    assert len(consumer.asked) > 1
    writer.write(batch, TOPIC_IDS)
    assert offsets(writer.connection) == {(CANONICAL_BATCHES, 0): 1}


def test_polls_go_on_filling_the_batch_while_the_broker_holds_more(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, _ = warehouse
    consumer = ScriptedConsumer(
        *({TopicPartition(REJECTS, 0): [Record(number, refused(f"queued-{number}"))]} for number in range(3))
    )
    batch = Collector(consumer, caps(sink_batch_wait_ms=3_600_000)).collect(threading.Event())
    assert len(consumer.asked) == 3
    writer.write(batch, TOPIC_IDS)
    assert offsets(writer.connection) == {(REJECTS, 0): 3}


def test_the_worker_rejects_and_the_sink_own_ones_are_written_in_one_batch(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    batch = decode_message(REJECTS, 0, 0, refused("bad-1"))
    batch.absorb(decode_message(CANONICAL_BATCHES, 0, 0, b"not a batch"))
    writer.write(batch, TOPIC_IDS)
    unreadable = f"canonical.batches[0]@0#{hashlib.sha256(b'not a batch').hexdigest()[:16]}"
    assert connection.execute("SELECT record_uid, stage FROM rejects ORDER BY 1").fetchall() == [
        ("bad-1", "validate"),
        (unreadable, "sink"),
    ]


def test_unreadable_messages_at_the_same_offset_of_two_partitions_are_both_kept(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    batch = decode_message(CANONICAL_BATCHES, 0, 7, b"not a batch")
    batch.absorb(decode_message(CANONICAL_BATCHES, 1, 7, b"not a batch either"))
    writer.write(batch, TOPIC_IDS)
    assert connection.execute("SELECT count(*) FROM rejects WHERE stage = 'sink'").fetchone() == (2,)
    assert connection.execute("SELECT count(*) FROM intake WHERE outcome = 'rejected'").fetchone() == (2,)


def snapshot(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Every table's rows (offsets included), to compare a warehouse before and after."""
    tables = connection.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1"
    ).fetchall()
    return {name: sorted(map(str, connection.execute(f"SELECT * FROM {name}").fetchall())) for (name,) in tables}


def test_a_write_that_fails_half_way_leaves_neither_rows_nor_offsets(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    writer.write(decode_message(CANONICAL_BATCHES, 0, 0, people("r1", 20)), TOPIC_IDS)
    before = snapshot(connection)
    broken = decode_message(CANONICAL_BATCHES, 0, 1, people("r2", 20))
    # The intake ledger is written after the people: an outcome it cannot hold (NOT NULL) fails the batch there.
    broken.intake.append({"record_uid": "r2-broken", "run_id": "r2", "outcome": None})
    with pytest.raises(UnwritableBatch, match="ConstraintException"):
        writer.write(broken, TOPIC_IDS)
    assert snapshot(connection) == before
    assert offsets(connection) == {(CANONICAL_BATCHES, 0): 1}


def _write_then_stall(path: Path, inside: Event) -> None:
    """Commit one batch, then stop for good inside the next one's transaction, after a table was written.

    The warehouse contract is called inside the transaction, after the per-record rows of the
    batch were written, so a contract that never answers holds the transaction open.
    """

    def stall_on_second_run(kind: str, table: pa.Table) -> Screening:
        if "r2" in table.column("run_id").to_pylist():
            inside.set()
            time.sleep(600)
        return Screening({})

    resolver = Resolver(ResolutionRules.load())
    writer = WarehouseWriter(connect(path, resolver), resolver, stall_on_second_run)
    writer.write(decode_message(CANONICAL_BATCHES, 0, 0, people("r1", 20)), TOPIC_IDS)
    person = Person(id_number=resident_id(), name="王芳")
    envelope = RawEnvelope(
        record_uid="r2-single",
        source="civil-affairs",
        source_record_id=person.key,
        entity="person",
        received_at=datetime.now(UTC),
        content_hash="",
        run_id="r2",
        payload={},
    )
    second = decode_message(
        canonical_topic("person"), 0, 0, canonical_message(envelope, person, fingerprint(person), "new")
    )
    second.absorb(decode_message(CANONICAL_BATCHES, 0, 1, people("r2", 20)))
    writer.write(second, TOPIC_IDS)


def test_a_sink_killed_inside_its_transaction_leaves_only_what_it_committed(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    context = multiprocessing.get_context("spawn")
    inside = context.Event()
    process = context.Process(target=_write_then_stall, args=(path, inside))
    process.start()
    try:
        assert inside.wait(timeout=120), "the writer never reached its second transaction"
    finally:
        process.kill()
        process.join()
    connection = connect(path, Resolver(ResolutionRules.load()))
    assert connection.execute("SELECT DISTINCT run_id FROM intake").fetchall() == [("r1",)]
    assert count(connection, "person_sources") == 20
    assert offsets(connection) == {(CANONICAL_BATCHES, 0): 1}
    connection.close()


def test_the_consumer_is_asked_its_position_only_where_the_polled_offsets_fall_short_of_the_high_watermark() -> None:
    read_whole, skipped_tail = TopicPartition(REJECTS, 0), TopicPartition(REJECTS, 1)
    broker = SkippingBroker(
        {
            read_whole: [Record(offset, refused(f"whole-{offset}")) for offset in range(3)],
            skipped_tail: [Record(offset, refused(f"tail-{offset}")) for offset in range(3)],
        },
        {read_whole: 3, skipped_tail: 5},
    )
    collector = Collector(broker, caps())
    for partition in broker.assignment():
        collector.seek(partition, 0)
    batch = collector.collect(threading.Event())
    assert len(batch.rejects) == 6
    broker.asked_position.clear()
    assert collector.behind() == {}
    assert broker.asked_position == [skipped_tail]


def test_records_past_the_position_are_behind_until_polled() -> None:
    waiting = TopicPartition(REJECTS, 0)
    broker = SkippingBroker({}, {waiting: 2})
    broker.highwaters[waiting] = 7
    collector = Collector(broker, caps())
    collector.seek(waiting, 0)
    assert collector.behind() == {waiting: 5}
