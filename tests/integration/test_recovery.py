"""Crashes and restarts lose nothing and duplicate nothing.

These tests kill real service processes with SIGKILL (no chance to clean up)
in the middle of a flow, restart them, and check the warehouse accounts for
every record exactly once.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from connectors.exports import ExportFile, ExportPublisher
from connectors.publisher import RawPublisher
from gridhub.supervisor import Stack
from schemas.batches import decode_batch
from schemas.topics import CANONICAL_BATCHES
from tests.support.files import write_register
from tests.support.hub import Hub, hub_settings, wait_until
from warehouse.reader import query


def publish(stack: Stack, path: Path, source: str, run_id: str | None = None) -> str:
    """Publish a register as ``gridhub ingest`` does (bulk lane, the hub's batch size); returns its run id."""
    run_id = run_id or uuid.uuid4().hex
    publisher = RawPublisher(stack.bootstrap, "test", stack.settings.bulk_batch_rows)
    try:
        ExportPublisher(publisher, source).publish(ExportFile(path, "person"), run_id)
    finally:
        publisher.close()
    return run_id


def run_outcomes(hub: Hub, run_id: str) -> dict[str, int]:
    return dict(hub.sql(f"SELECT outcome, count(*) FROM intake WHERE run_id = '{run_id}' GROUP BY 1"))


class CanonicalRows:
    """Counts a run's rows the worker puts on ``canonical.batches`` from now on: what waits for the sink."""

    def __init__(self, bootstrap: str, run_id: str) -> None:
        self.run_id = run_id
        self.rows = 0
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        partitions = [
            TopicPartition(CANONICAL_BATCHES, number)
            for number in sorted(self.consumer.partitions_for_topic(CANONICAL_BATCHES) or ())
        ]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        for partition in partitions:
            self.consumer.position(partition)  # seek_to_end is lazy: fix the start before anything new is sent

    def count(self) -> int:
        for messages in self.consumer.poll(timeout_ms=200).values():
            for message in messages:
                batch = decode_batch(message.value)
                if batch.run_id == self.run_id:
                    self.rows += len(batch)
        return self.rows

    def close(self) -> None:
        self.consumer.close()


def test_sink_killed_with_a_run_half_read_resumes_without_loss_or_duplicates(hub: Hub, tmp_path: Path) -> None:
    """The test, not the timing, picks the crash: the sink holds the first part of a run, the rest waits unread.

    Once the warehouse shows exactly the first part, the idle sink is frozen (SIGSTOP) so it reads
    nothing more; the rest of the register goes out under the same run, and when the worker has put
    all of it on the sink's topic the frozen sink is killed (SIGKILL) and started again. A kill
    inside a transaction is covered by tests/unit/warehouse/test_sink.py.
    """
    first = write_register(tmp_path / "first.csv", 2000)
    rest = write_register(tmp_path / "rest.csv", 4000)
    run_id = publish(hub.stack, tmp_path / "first.csv", "sink-crash")
    wait_until(lambda: run_outcomes(hub, run_id) == {"new": len(first)}, what="the first part in the warehouse")

    sink = hub.stack.processes["sink"]
    sink.send_signal(signal.SIGSTOP)
    waiting = CanonicalRows(hub.stack.bootstrap, run_id)
    try:
        publish(hub.stack, tmp_path / "rest.csv", "sink-crash", run_id)
        wait_until(lambda: waiting.count() == len(rest), what="the rest of the run waiting for the sink")
    finally:
        waiting.close()
        sink.send_signal(signal.SIGKILL)
        sink.wait()
        hub.stack.restart("sink")

    total = len(first) + len(rest)
    wait_until(lambda: sum(run_outcomes(hub, run_id).values()) == total, timeout_s=120, what="the whole run")
    assert run_outcomes(hub, run_id) == {"new": total}
    assert hub.scalar("SELECT count(*) FROM person_sources WHERE source = 'sink-crash'") == total
    assert hub.scalar(f"SELECT count(DISTINCT record_uid) FROM intake WHERE run_id = '{run_id}'") == total


def test_worker_killed_and_restarted_still_remembers_what_it_saw(hub: Hub, tmp_path: Path) -> None:
    write_register(tmp_path / "register.csv", 300)
    first = publish(hub.stack, tmp_path / "register.csv", "worker-crash")
    wait_until(lambda: run_outcomes(hub, first) == {"new": 300}, what="first load")

    hub.stack.processes["worker"].send_signal(signal.SIGKILL)
    hub.stack.processes["worker"].wait()
    hub.stack.restart("worker")
    second = publish(hub.stack, tmp_path / "register.csv", "worker-crash")

    wait_until(lambda: sum(run_outcomes(hub, second).values()) == 300, timeout_s=120, what="second load")
    assert run_outcomes(hub, second) == {"duplicate": 300}


def test_restarted_embedded_broker_is_detected_and_nothing_new_is_skipped(tmp_path: Path) -> None:
    """The embedded broker forgets its topics; stale offsets must not skip the new topics' records."""
    settings = hub_settings(tmp_path / "hub")
    with Stack(settings) as first:
        write_register(tmp_path / "day1.csv", 50)
        day1 = publish(first, tmp_path / "day1.csv", "incarnation")
        wait_until(lambda: _count(first.settings, day1) == 50, what="day 1")
    with Stack(settings) as second:
        write_register(tmp_path / "day2.csv", 20)
        day2 = publish(second, tmp_path / "day2.csv", "incarnation")
        wait_until(lambda: _count(second.settings, day2) == 20, what="day 2 despite stale offsets")
        kept = query(second.settings, "SELECT count(*) FROM person_sources WHERE source = 'incarnation'")
        assert kept["rows"] == [[70]]
    log = (settings.data_dir / "logs" / "sink.log").read_text()
    assert "topic was recreated" in log


def _count(settings: object, run_id: str) -> int:
    return int(query(settings, f"SELECT count(*) FROM intake WHERE run_id = '{run_id}'")["rows"][0][0])  # type: ignore[arg-type]
