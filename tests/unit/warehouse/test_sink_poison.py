"""Poison never stops the sink: every message it cannot read or store ends as a reject, and the partition moves on.

The corpus of tests/fixtures/poison goes through the sink's own decoding, batching and isolating
writer onto a real DuckDB file; only Kafka's poll is scripted. Failures of the warehouse itself
(a full disk, a broken connection) are stood in for by a writer that raises them.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from kafka import TopicPartition

from foundation.settings import Settings
from schemas.batches import encode_batch
from schemas.messages import canonical_message, reject_message
from schemas.records import Event, RawEnvelope
from schemas.rejects import Reject
from schemas.topics import CANONICAL_BATCHES, REJECTS, canonical_topic, sink_topics
from streams.normalise import fingerprint
from tests.support.identities import resident_id
from tests.support.poison import CORPUS, WORKER_TOPICS, Poison, corpus, sink_corpus
from tests.unit.warehouse.batches import canonical
from tests.unit.warehouse.test_sink import Record, ScriptedConsumer
from warehouse.contract import BatchContract
from warehouse.decode import decode_message
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.sink import MAX_TRIES, Collector, IsolatingWriter
from warehouse.writer import Batch, WarehouseBroken, WarehouseIOError, WarehouseWriter, connect

TOPIC_IDS = dict.fromkeys(sink_topics(), "topic-1")
_numbers = itertools.count()


@pytest.fixture(scope="module")
def contract() -> BatchContract:
    return BatchContract()


@pytest.fixture
def warehouse(tmp_path: Path, contract: BatchContract) -> Iterator[tuple[WarehouseWriter, duckdb.DuckDBPyConnection]]:
    """The sink's writer as SinkService builds it: the contract screens the bulk lane inside the transaction."""
    resolver = Resolver(ResolutionRules.load())
    connection = connect(tmp_path / "w.duckdb", resolver)
    yield WarehouseWriter(connection, resolver, contract.table_violations), connection
    connection.close()


def rejects_at(connection: duckdb.DuckDBPyConnection, topic: str, partition: int, offset: int) -> list[dict[str, Any]]:
    cursor = connection.execute(
        "SELECT * FROM rejects WHERE topic = ? AND partition = ? AND message_offset = ?", [topic, partition, offset]
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def good_event() -> tuple[str, bytes]:
    """A report as the case agent publishes it to canonical.event, and its record uid."""
    number = next(_numbers)
    event = Event.model_validate(
        {
            "event_id": f"E-GOOD-{number}",
            "category": "0102",
            "department": "sanitation",
            "description": "暴露垃圾",
            "reported_at": "2026-11-26T09:00:00+08:00",
            "reporter_id": "GW001",
            "lat": 31.97,
            "lon": 119.85,
        }
    )
    uid = f"good-event-{number}"
    envelope = RawEnvelope(
        record_uid=uid,
        source="patrol",
        source_record_id=event.event_id,
        entity="event",
        received_at=datetime(2026, 11, 26, 1, tzinfo=UTC),
        content_hash="",
        payload={},
    )
    return uid, canonical_message(envelope, event, fingerprint(event), "new")


def good_people(run: str, count: int) -> bytes:
    rows = [(f"{run}-{number}", {"id_number": resident_id(), "name": f"居民{number}"}) for number in range(count)]
    return encode_batch(canonical(run, rows))


def good_reject(uid: str) -> bytes:
    return reject_message(Reject.build("validate", "missing_name", "name: missing", {"id": uid}, record_uid=uid))


def test_the_corpus_covers_every_topic_a_stage_reads_and_lists_every_file_it_holds() -> None:
    cases = corpus()
    assert {case.topic for case in cases} == {*WORKER_TOPICS, *sink_topics()}
    listed = {(case.topic, case.file) for case in cases}
    on_disk = {(path.parent.name, path.name) for path in CORPUS.glob("*/*")}
    assert listed == on_disk
    assert len(listed) == len(cases), "a file is listed twice"


@pytest.mark.parametrize("poison", sink_corpus(), ids=str)
def test_each_poison_message_alone_ends_as_rejects_at_its_place_and_the_partition_moves_on(
    poison: Poison, warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection], contract: BatchContract
) -> None:
    writer, connection = warehouse
    IsolatingWriter(writer, TOPIC_IDS, contract).write(
        decode_message(poison.topic, 2, 41, poison.value), threading.Event()
    )

    rejects = rejects_at(connection, poison.topic, 2, 41)
    assert len(rejects) == poison.rows
    for reject in rejects:
        assert (reject["stage"], reject["reason_code"]) == (poison.stage, poison.reason_code)
        assert reject["error"], "the reject names the error"
        assert poison.topic in reject["reason"]
        assert (reject["payload"] is not None) == poison.payload_kept
        assert reject["payload_bytes"] is not None and reject["payload_sha256"] is not None
    uids = [reject["record_uid"] for reject in rejects]
    ledger = connection.execute(
        "SELECT record_uid, outcome, reason_code FROM intake WHERE record_uid IN (SELECT unnest(?))", [uids]
    ).fetchall()
    assert sorted(ledger) == sorted((uid, "rejected", poison.reason_code) for uid in uids)
    assert connection.execute("SELECT next_offset FROM sink_offsets WHERE topic = ?", [poison.topic]).fetchall() == [
        (42,)
    ]


def test_a_poison_message_carrying_its_record_uid_is_refused_under_it_and_a_bare_one_under_its_place(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    isolating = IsolatingWriter(writer, TOPIC_IDS)
    for offset, name in enumerate(("extra-column.json", "bad-timestamp.json", "no-meta.json")):
        value = (CORPUS / "canonical.event" / name).read_bytes()
        isolating.write(decode_message("canonical.event", 0, offset, value), threading.Event())
    assert connection.execute("SELECT record_uid FROM rejects ORDER BY message_offset").fetchall() == [
        ("poison-event-extra-column",),
        ("poison-event-bad-timestamp",),
        (f"canonical.event[0]@2#{rejects_at(connection, 'canonical.event', 0, 2)[0]['payload_sha256'][:16]}",),
    ]
    bad_time = rejects_at(connection, "canonical.event", 0, 1)[0]
    assert bad_time["error"].startswith("ConversionException: ")  # the cause, not DuckDB's "transaction is aborted"
    assert "yesterday-ish" in bad_time["reason"]


def test_a_poll_mixing_the_whole_corpus_with_good_records_stores_the_good_and_rejects_the_rest(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection], contract: BatchContract
) -> None:
    """Poison and good messages share transactions: the failing ones are found by halves, the rest commit."""
    writer, connection = warehouse
    answer: dict[TopicPartition, list[Record]] = {}
    places: list[tuple[Poison, TopicPartition, int]] = []

    def add(partition: TopicPartition, value: bytes) -> int:
        messages = answer.setdefault(partition, [])
        messages.append(Record(len(messages), value))
        return len(messages) - 1

    good_events = []
    for number, poison in enumerate(sink_corpus()):
        partition = TopicPartition(poison.topic, number % 2)
        places.append((poison, partition, add(partition, poison.value)))
        uid, event = good_event()
        good_events.append(uid)
        add(TopicPartition(canonical_topic("event"), number % 2), event)
    add(TopicPartition(CANONICAL_BATCHES, 0), good_people("good-run", 20))
    add(TopicPartition(REJECTS, 1), good_reject("good-reject"))

    collector = Collector(ScriptedConsumer(answer), Settings(sink_batch_wait_ms=20))
    isolating = IsolatingWriter(writer, TOPIC_IDS, contract)
    while (batch := collector.collect(threading.Event())).offsets:
        isolating.write(batch, threading.Event())

    for poison, partition, offset in places:
        found = [(row["stage"], row["reason_code"]) for row in rejects_at(connection, *partition, offset)]
        assert found == [(poison.stage, poison.reason_code)] * poison.rows, poison
    stored = connection.execute("SELECT record_uid FROM events WHERE record_uid LIKE 'good-event-%'").fetchall()
    assert sorted(uid for (uid,) in stored) == sorted(good_events)
    assert connection.execute(
        "SELECT outcome, count(*) FROM intake WHERE run_id = 'good-run' GROUP BY 1"
    ).fetchall() == [("new", 20)]
    assert connection.execute("SELECT count(*) FROM person_sources WHERE record_uid LIKE 'good-run-%'").fetchone() == (
        20,
    )
    assert connection.execute("SELECT stage FROM rejects WHERE record_uid = 'good-reject'").fetchall() == [
        ("validate",)
    ]
    stored_offsets = dict(
        ((topic, partition), offset)
        for topic, partition, offset in connection.execute(
            "SELECT topic, partition, next_offset FROM sink_offsets"
        ).fetchall()
    )
    assert stored_offsets == {(tp.topic, tp.partition): len(messages) for tp, messages in answer.items()}


class Failing(WarehouseWriter):
    """The real writer, but a batch ``fails`` picks first meets ``error`` (``times`` times)."""

    def __init__(
        self, writer: WarehouseWriter, fails: Callable[[Batch], bool], error: Exception, times: int = 1_000
    ) -> None:
        super().__init__(writer.connection, writer.resolver)
        self.fails = fails
        self.error = error
        self.times = times
        self.tries = 0

    def write(self, batch: Batch, topic_ids: dict[str, str]) -> None:
        if self.fails(batch) and self.tries < self.times:
            self.tries += 1
            raise self.error
        super().write(batch, topic_ids)


def holds_marked(batch: Batch) -> bool:
    """Whether the batch holds the marked message's rows (not the sink's reject of it)."""
    return any(row["record_uid"] == "marked" and row["stage"] == "validate" for row in batch.rejects)


def mixed_batch() -> Batch:
    """Four good events and, between them, the marked message (a worker's reject), as one polled batch."""
    batch = Batch()
    for offset in range(4):
        batch.absorb(decode_message(canonical_topic("event"), 0, offset, good_event()[1]))
        if offset == 1:
            batch.absorb(decode_message(REJECTS, 0, 0, good_reject("marked")))
    return batch


def test_a_message_failing_alone_for_an_unknown_reason_is_tried_three_times_then_kept_as_a_reject(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    failing = Failing(writer, holds_marked, RuntimeError("a bug no one has seen"))
    IsolatingWriter(failing, TOPIC_IDS).write(mixed_batch(), threading.Event())
    assert failing.tries == 1 + 1 + MAX_TRIES  # the whole batch, the half holding it, then alone
    assert connection.execute("SELECT count(*) FROM events WHERE record_uid LIKE 'good-event-%'").fetchone() == (4,)
    (reject,) = rejects_at(connection, REJECTS, 0, 0)
    assert (reject["stage"], reject["reason_code"], reject["error"]) == (
        "sink",
        "unwritable_at_sink",
        "RuntimeError: a bug no one has seen",
    )
    assert reject["record_uid"] == "marked"


def test_a_warehouse_that_cannot_be_written_now_is_waited_for_and_nothing_becomes_a_reject(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    full = Failing(writer, holds_marked, WarehouseIOError("No space left on device"), times=1)
    IsolatingWriter(full, TOPIC_IDS).write(mixed_batch(), threading.Event())
    assert full.tries == 1
    assert connection.execute("SELECT record_uid, stage FROM rejects").fetchall() == [("marked", "validate")]
    assert connection.execute("SELECT count(*) FROM events").fetchone() == (4,)


def test_a_stop_while_the_warehouse_cannot_be_written_leaves_the_batch_unread_for_the_next_start(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    stop = threading.Event()
    stop.set()
    with pytest.raises(WarehouseIOError):
        IsolatingWriter(Failing(writer, holds_marked, WarehouseIOError("disk full")), TOPIC_IDS).write(
            mixed_batch(), stop
        )
    assert connection.execute("SELECT count(*) FROM sink_offsets").fetchone() == (0,)


def test_a_broken_warehouse_stops_the_sink_instead_of_rejecting_what_it_holds(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    broken = Failing(writer, holds_marked, WarehouseBroken("database has been invalidated"))
    with pytest.raises(WarehouseBroken):
        IsolatingWriter(broken, TOPIC_IDS).write(mixed_batch(), threading.Event())
    assert connection.execute("SELECT count(*) FROM rejects").fetchone() == (0,)


def test_when_even_the_reject_cannot_be_stored_the_warehouse_is_at_fault_and_the_sink_stops(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    everything_fails = Failing(writer, lambda batch: True, RuntimeError("cannot write"))
    with pytest.raises(WarehouseBroken, match="cannot store even the reject"):
        IsolatingWriter(everything_fails, TOPIC_IDS).write(
            decode_message(canonical_topic("event"), 0, 0, good_event()[1]), threading.Event()
        )
    assert connection.execute("SELECT count(*) FROM rejects").fetchone() == (0,)
