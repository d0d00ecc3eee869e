"""The sink forgets journal entries once every record they carry has its intake row (real DuckDB, real SQLite)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from foundation.journal import Journal, journal_files
from foundation.settings import Settings
from warehouse import journal_keeper
from warehouse.journal_keeper import CLOCK_MARGIN, PAUSE_PER_PASS_SECOND, landed_entries, pause_after, prune
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.writer import connect


def _warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    return connect(path, Resolver(ResolutionRules.load(Settings().resolution_rules)))


def _land(connection: duckdb.DuckDBPyConnection, *uids: str) -> None:
    now = datetime.now(UTC)
    for uid in uids:
        connection.execute("INSERT INTO intake (record_uid, outcome, written_at) VALUES (?, 'new', ?)", [uid, now])


def _patrol_journal(folder: Path, reports: int) -> Journal:
    """A gateway's journal holding one entry of one record (``u0``, ``u1``, ...) per report."""
    journal = Journal.of_door(folder, "patrol")
    for number in range(reports):
        journal.append("raw.patrol", b"{}", [f"u{number}"])
    journal.make_durable()
    return journal


def test_an_entry_is_landed_only_when_all_its_records_are(tmp_path: Path) -> None:
    connection = _warehouse(tmp_path / "w.duckdb")
    _land(connection, "a", "b", "c")
    entries = [(1, "a"), (2, "a\nb\nc"), (3, "a\nmissing"), (4, "missing")]
    assert landed_entries(connection, entries) == [1, 2]
    assert landed_entries(connection, []) == []


def test_prune_forgets_landed_entries_and_keeps_the_rest(tmp_path: Path) -> None:
    connection = _warehouse(tmp_path / "w.duckdb")
    folder = tmp_path / "journal"
    journal = _patrol_journal(folder, 450)
    _land(connection, *(f"u{number}" for number in range(450) if number != 7))
    assert prune(connection, folder) == 449
    assert [entry.uids for entry in journal.all_entries()] == [("u7",)]
    assert journal_files(folder) == [journal.path], "a journal whose process runs stays"
    journal.close()


def test_an_entry_whose_first_record_landed_but_not_the_rest_is_kept_until_they_have(tmp_path: Path) -> None:
    connection = _warehouse(tmp_path / "w.duckdb")
    folder = tmp_path / "journal"
    journal = Journal.of_door(folder, "ingest")
    journal.append("raw.batches", b"rows", ["first", "second", "third"])
    journal.append("raw.batches", b"rows", ["other", "first"])
    journal.make_durable()
    _land(connection, "first", "third")
    assert prune(connection, folder) == 0
    _land(connection, "second")
    assert prune(connection, folder) == 1
    assert [entry.uids for entry in journal.all_entries()] == [("other", "first")]
    _land(connection, "other")
    assert prune(connection, folder) == 1
    assert journal.count() == 0
    journal.close()


def test_an_empty_journal_of_a_finished_process_is_removed(tmp_path: Path) -> None:
    connection = _warehouse(tmp_path / "w.duckdb")
    folder = tmp_path / "journal"
    script = (
        "import sys\nfrom pathlib import Path\nfrom foundation.journal import Journal\n"
        "journal = Journal.of_door(Path(sys.argv[1]), 'ingest')\n"
        "journal.append('raw.batches', b'rows', ['x', 'y'], partition=1); journal.make_durable(); journal.close()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(folder)], check=True, cwd=Path.cwd())
    assert prune(connection, folder) == 0
    assert len(journal_files(folder)) == 1, "kept while its records have not landed"
    _land(connection, "x", "y")
    assert prune(connection, folder) == 1
    assert journal_files(folder) == []
    assert not any(folder.iterdir()), "its -wal and -shm files go with it"


def test_a_journal_busy_with_a_long_transaction_is_skipped_not_waited_for(tmp_path: Path) -> None:
    connection = _warehouse(tmp_path / "w.duckdb")
    folder = tmp_path / "journal"
    journal = Journal.of_door(folder, "ingest")
    journal.append("raw.batches", b"rows", ["z"])
    journal.make_durable()
    journal.append("raw.batches", b"more rows", ["z2"])
    _land(connection, "z")
    assert prune(connection, folder) == 0, "the writer holds the file: skipped this pass"
    journal.make_durable()
    assert prune(connection, folder) == 1
    journal.close()
    shutil.rmtree(folder)


def test_the_keeper_pauses_the_interval_after_a_quick_pass_and_longer_after_a_slow_one() -> None:
    assert pause_after(0.01, 1.0) == 1.0
    assert pause_after(0.5, 1.0) == 0.5 * PAUSE_PER_PASS_SECOND
    share = 0.5 / (0.5 + pause_after(0.5, 1.0))
    assert share <= 0.1


def test_a_pass_searches_the_ledger_only_from_shortly_before_the_entries_were_appended(tmp_path: Path) -> None:
    connection = _warehouse(tmp_path / "w.duckdb")
    folder = tmp_path / "journal"
    journal = Journal.of_door(folder, "patrol")
    journal.append("raw.patrol", b"{}", ["recent"])
    journal.append("raw.patrol", b"{}", ["long-before"])
    journal.make_durable()
    _land(connection, "recent")
    written = datetime.now(UTC) - CLOCK_MARGIN - timedelta(minutes=5)
    connection.execute(
        "INSERT INTO intake (record_uid, outcome, written_at) VALUES ('long-before', 'new', ?)", [written]
    )

    assert prune(connection, folder) == 1
    assert [entry.uids for entry in journal.all_entries()] == [("long-before",)]
    assert landed_entries(connection, [(2, "long-before")]) == [2], "unnarrowed, the whole ledger is searched"
    journal.close()


def test_a_pass_checks_the_entries_held_as_it_began_not_those_appended_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = _warehouse(tmp_path / "w.duckdb")
    folder = tmp_path / "journal"
    door = _patrol_journal(folder, 3)
    _land(connection, *(f"u{number}" for number in range(100)))
    searches: list[int] = []
    search = journal_keeper._started_entries

    def search_while_the_door_appends(
        cursor: duckdb.DuckDBPyConnection, firsts: list[tuple[int, str]], since: datetime
    ) -> list[int]:
        searches.append(len(firsts))
        if len(searches) < 50:  # a door appending as fast as the keeper checks
            door.append("raw.patrol", b"{}", [f"u{len(searches) + 2}"])
            door.make_durable()
        return search(cursor, firsts, since)

    monkeypatch.setattr(journal_keeper, "_started_entries", search_while_the_door_appends)

    assert prune(connection, folder) == 3
    assert searches == [3]
    assert door.count() == 1, "the entry appended during the pass waits for the next one"
    door.close()
