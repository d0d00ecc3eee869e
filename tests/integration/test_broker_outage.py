"""A broker outage while a watched file is being published leaves the file to be retried, never failed.

The watched folder runs against a real Kafka-protocol broker reached through a proxy the test
cuts and heals; the test waits for what the watcher reports (its outcomes) and for what the
broker holds, never for time to pass.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.exports.watch import Outcome, WatchedFolder
from connectors.publisher import RawPublisher
from foundation.settings import Settings
from gridhub.broker import ensure_topics
from schemas.batches import decode_batch
from schemas.topics import RAW_BATCHES
from tests.support.files import write_register
from tests.support.hub import topic_messages
from tests.support.outage import CuttableProxy, broker_behind_proxy

OUTCOME_WAIT_S = 120


class Watching:
    """A watched folder running in the background, and what it has reported so far."""

    def __init__(self, folder: WatchedFolder) -> None:
        self.folder = folder
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        folder.on_outcome = self.outcomes.put
        self.stop = threading.Event()
        self.thread = threading.Thread(target=folder.run, args=(self.stop,), daemon=True)

    def next_outcome(self, wanted: Callable[[Outcome], bool], what: str) -> Outcome:
        """The first reported outcome that is ``wanted``; the ones before it are passed over."""
        while True:
            try:
                outcome = self.outcomes.get(timeout=OUTCOME_WAIT_S)
            except queue.Empty:
                raise AssertionError(f"the watcher reported no {what} within {OUTCOME_WAIT_S}s") from None
            if wanted(outcome):
                return outcome


@pytest.fixture
def outage_broker(tmp_path: Path) -> Iterator[CuttableProxy]:
    with broker_behind_proxy(tmp_path / "broker.log") as proxy:
        yield proxy


@pytest.fixture
def watching(tmp_path: Path, outage_broker: CuttableProxy) -> Iterator[Watching]:
    settings = Settings(data_dir=tmp_path / "hub", kafka_bootstrap=outage_broker.address, publish_timeout_s=3)
    ensure_topics(settings, outage_broker.address)
    publisher = RawPublisher(outage_broker.address, "test-watch", settings.bulk_batch_rows, settings.publish_timeout_s)
    folder = WatchedFolder(
        publisher, tmp_path / "inbox", settings.export_mappings, settle_seconds=0.3, retry_wait_s=0.5
    )
    running = Watching(folder)
    folder.prepare()
    running.thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        running.thread.join(timeout=60)
        folder.close()
        assert not running.thread.is_alive(), "the watcher stops when told to"


def rows_published(bootstrap: str, run_id: str) -> set[str]:
    """Source record ids of every row of the run on ``raw.batches`` now (a resent row counts once)."""
    found: set[str] = set()
    for message in topic_messages(bootstrap, RAW_BATCHES):
        batch = decode_batch(message.value)
        if batch.run_id == run_id:
            found |= set(batch.rows.column("source_record_id").to_pylist())
    return found


def drop(folder: WatchedFolder, name: str, rows: int) -> list[str]:
    """A household register dropped into the civil-affairs folder the way a sync job does it (rename)."""
    staged = folder.root / "civil-affairs" / "person" / f"{name}.part"
    ids = write_register(staged, rows)
    staged.rename(staged.with_name(name))
    return ids


def test_a_file_published_during_a_broker_outage_is_kept_and_published_when_the_broker_answers(
    watching: Watching, outage_broker: CuttableProxy
) -> None:
    folder = watching.folder
    before = drop(folder, "monday.csv", 40)
    first = watching.next_outcome(lambda outcome: outcome.relative.name == "monday.csv", "outcome for monday.csv")
    assert first.status == "done" and first.report is not None
    assert rows_published(outage_broker.address, first.report.run_id) == set(before)

    outage_broker.cut()
    during = drop(folder, "tuesday.csv", 40)
    retrying = watching.next_outcome(
        lambda outcome: outcome.relative.name == "tuesday.csv", "outcome for tuesday.csv during the outage"
    )
    claimed = folder.root / ".processing" / "civil-affairs" / "person" / "tuesday.csv"
    assert retrying.status == "retrying", retrying
    assert retrying.location == claimed and claimed.exists()
    assert "Kafka" in (retrying.reason or "")

    outage_broker.heal()
    done = watching.next_outcome(
        lambda outcome: outcome.relative.name == "tuesday.csv" and outcome.status != "retrying",
        "outcome for tuesday.csv after the outage",
    )
    assert done.status == "done", done
    assert done.report is not None and done.report.records == len(during)
    assert done.location == folder.root / ".done" / "civil-affairs" / "person" / "tuesday.csv"
    assert not claimed.exists()
    assert not (folder.root / ".failed").exists(), "a broker outage never fails a good file"
    assert rows_published(outage_broker.address, done.report.run_id) == set(during)
