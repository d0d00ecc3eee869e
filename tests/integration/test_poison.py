"""Poison never stops a stage: the whole corpus, published to a running hub, ends as rejects and nothing restarts.

Every message of tests/fixtures/poison goes to the topic it poisons, where the worker or the
sink reads it; then one good record takes each lane (a report over HTTP, a register through
``gridhub ingest``). Once the hub has processed everything, each poison message must be in the
``rejects`` table at its topic, partition and offset, with the stage and reason its case names,
the good records must have landed, and every service must still be the process it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer

from tests.support.files import write_register
from tests.support.hub import Hub, report, unique, wait_until
from tests.support.poison import Poison, corpus

ERROR_KEPT = {"undecodable_at_sink", "unwritable_at_sink", "internal_error", "bad_batch", "bad_command"}
"""Reasons whose rejects name the exception that refused the message (the others refuse by a rule)."""


@dataclass(frozen=True)
class Published:
    poison: Poison
    partition: int
    offset: int


def publish_corpus(bootstrap: str) -> list[Published]:
    """Every corpus message on its topic, acknowledged by the broker, with where it landed."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", client_id="poison-test")
    try:
        sent = [
            (poison, producer.send(poison.topic, key=poison.file.encode(), value=poison.value)) for poison in corpus()
        ]
        placed = [(poison, future.get(timeout=60)) for poison, future in sent]
    finally:
        producer.close()
    return [Published(poison, metadata.partition, metadata.offset) for poison, metadata in placed]


def test_the_whole_poison_corpus_ends_as_rejects_while_good_records_land_and_nothing_restarts(
    hub: Hub, tmp_path: Path
) -> None:
    before = {name: process.pid for name, process in hub.stack.processes.items()}
    published = publish_corpus(hub.stack.bootstrap)

    event_id = unique("R-after-poison")
    status, _ = hub.post(
        "/v1/reports",
        report(
            event_id,
            category="0102",
            description="毒消息之后的正常上报",
            reported_at="2026-11-26T09:30:00+08:00",
            reporter_id="GW017",
        ),
    )
    assert status == 202
    source = unique("after-poison")
    write_register(tmp_path / "register.csv", 30)
    ingested = hub.ingest(tmp_path / "register.csv", source, "person", "--wait")
    assert ingested.returncode == 0, ingested.stderr

    wait_until(lambda: hub.scalar(f"SELECT count(*) FROM events WHERE event_id = '{event_id}'"), what="the report")
    hub.settled()

    missing = []
    for item in published:
        poison = item.poison
        rows = hub.sql(
            "SELECT stage, reason_code, reason, error FROM rejects "
            f"WHERE topic = '{poison.topic}' AND partition = {item.partition} AND message_offset = {item.offset}"
        )
        found = [(stage, code) for stage, code, _, _ in rows]
        if found != [(poison.stage, poison.reason_code)] * poison.rows:
            missing.append(
                f"{poison} at [{item.partition}]@{item.offset}: expected {poison.rows} x "
                f"{poison.stage}/{poison.reason_code}, found {found}"
            )
            continue
        assert all(reason for _, _, reason, _ in rows), poison
        if poison.reason_code in ERROR_KEPT:
            assert all(error for _, _, _, error in rows), f"{poison} keeps no error"
    assert missing == []

    assert hub.outcomes(source=source) == {"new": 30}
    after = {name: process.pid for name, process in hub.stack.processes.items()}
    assert after == before, "a service was restarted"
    assert all(process.poll() is None for process in hub.stack.processes.values()), "a service died"
