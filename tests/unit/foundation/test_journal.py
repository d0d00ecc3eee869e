"""The doors' journal on a real SQLite file: durable only when made so, shared by processes, pruned by id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from foundation.journal import Journal, journal_files, pending_records


def test_entries_are_visible_only_once_made_durable(tmp_path: Path) -> None:
    writer = Journal.of_door(tmp_path, "patrol")
    reader = Journal(writer.path)
    writer.append("raw.patrol", b"one", ["u1"], key=b"k")
    assert reader.count() == 0
    writer.make_durable()
    assert reader.count() == 1
    [entry] = reader.entries()
    assert (entry.topic, entry.key, entry.value, entry.uids, entry.partition) == (
        "raw.patrol",
        b"k",
        b"one",
        ("u1",),
        None,
    )
    writer.close()
    reader.close()


def test_closing_without_making_durable_keeps_nothing(tmp_path: Path) -> None:
    journal = Journal.of_door(tmp_path, "ingest")
    journal.append("raw.batches", b"rows", ["a", "b"], partition=2)
    journal.close()
    assert pending_records(tmp_path) == 0


def test_a_killed_writer_loses_only_what_it_never_made_durable(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from foundation.journal import Journal\n"
        "journal = Journal.of_door(Path(sys.argv[1]), 'patrol')\n"
        "journal.append('raw.patrol', b'kept', ['u1']); journal.make_durable()\n"
        "journal.append('raw.patrol', b'never promised', ['u2'])\n"
        "os.kill(os.getpid(), 9)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False, cwd=Path.cwd())
    assert result.returncode == -9
    [path] = journal_files(tmp_path)
    journal = Journal(path)
    assert [entry.value for entry in journal.all_entries()] == [b"kept"]
    assert journal.owner is not None and journal.owner != os.getpid()
    journal.close()


def test_entries_page_in_id_order_and_are_forgotten_by_id(tmp_path: Path) -> None:
    journal = Journal.of_door(tmp_path, "approvals")
    for number in range(7):
        journal.append("raw.approvals", str(number).encode(), [f"u{number}"])
    journal.make_durable()
    assert [entry.value for entry in journal.all_entries(chunk=3)] == [str(n).encode() for n in range(7)]
    first, second = (entry.id for entry in journal.entries(limit=2))
    journal.forget([first, second])
    assert [uid for _, uid in journal.first_uids()] == [f"u{n}" for n in range(2, 7)]
    assert journal.uids([first, second]) == []
    assert journal.owner == os.getpid()
    journal.close()


def test_an_entry_gives_its_first_uid_alone_and_all_its_uids_when_asked_by_id(tmp_path: Path) -> None:
    journal = Journal.of_door(tmp_path, "ingest")
    journal.append("raw.batches", b"rows", ["a1", "a2", "a3"])
    journal.append("raw.batches", b"row", ["b1"])
    journal.make_durable()
    (first, one), (second, alone) = journal.first_uids()
    assert (one, alone) == ("a1", "b1")
    assert journal.first_uids(after=first) == [(second, "b1")]
    assert journal.uids([second, first]) == [(first, "a1\na2\na3"), (second, "b1")]
    assert journal.uids([]) == []
    journal.close()


def test_a_journal_that_cannot_be_read_counts_as_pending_not_as_drained(tmp_path: Path) -> None:
    (tmp_path / "patrol-1.journal").write_bytes(b"not a database at all" * 100)
    assert pending_records(tmp_path) == 1
