"""The doors' journal: what a door acknowledged, kept on disk until the warehouse has it.

The embedded broker keeps its topics in memory, so a record Kafka acknowledged is gone if the
broker dies before the sink has written it. A door (the gateway, an ingest run, the approvals
poller, a watched folder, a REST pull) therefore writes every message it sends into a journal
file and makes the journal durable (one fsync) before it answers 202, prints "published" or
moves a cursor. The sink forgets an entry once every record it carries has its intake row in
the warehouse (:meth:`Journal.forget`); whatever is left when the hub starts, or when the
supervisor restarts a dead broker, is sent again (:meth:`Journal.entries`), and the stream's
dedup and the warehouse's keyed writes absorb what had already landed.

Each door process writes its own SQLite file in WAL mode under ``DATA_DIR/journal`` (``Settings.journal_dir``), named
after the door and its pid (``patrol-4711.journal``), so no two processes ever wait for each
other's transaction; the sink reads, deletes and, once a file is empty and its process gone,
removes the file. SQLite is in the standard library, survives a power cut with
``synchronous=FULL``, and keeps a large uncommitted transaction (a million-row export) on
disk, not in memory.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import ConfigurationError

SUFFIX = ".journal"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    partition INTEGER,
    key BLOB,
    value BLOB NOT NULL,
    uids TEXT NOT NULL,
    appended_at REAL NOT NULL
)
"""
_OWNER = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class Entry:
    """One message as its door sent it, with the record uids that prove it landed."""

    id: int
    topic: str
    partition: int | None
    key: bytes | None
    value: bytes
    uids: tuple[str, ...]


def journal_files(folder: Path) -> list[Path]:
    """The journals in ``folder``, in name order."""
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


class Journal:
    """An append-only store of sent messages; thread-safe, shared by processes through SQLite's locks."""

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except sqlite3.OperationalError:
            raise  # busy or a transient I/O error (a writer rolling back a large transaction): the caller retries
        except sqlite3.DatabaseError as exc:
            raise ConfigurationError(
                f"the journal {path} cannot be opened ({exc}); it is not a gridhub journal or the disk is full: "
                "free space, or move the file aside (its records are then not sent again)"
            ) from exc
        self._open = False

    @classmethod
    def of_door(cls, folder: Path, door: str) -> Journal:
        """This process's journal as the door ``door`` (``patrol``, ``ingest``, ...), in ``folder``."""
        return cls(folder / f"{door}-{os.getpid()}{SUFFIX}")

    @property
    def owner(self) -> int | None:
        """The pid of the process that writes this journal, from its file name."""
        match = _OWNER.search(self.path.name.removesuffix(SUFFIX))
        return int(match.group(1)) if match else None

    def append(
        self, topic: str, value: bytes, uids: Sequence[str], key: bytes | None = None, partition: int | None = None
    ) -> None:
        """Write one message; it is durable only after the next :meth:`make_durable`."""
        with self._lock:
            if not self._open:
                self._db.execute("BEGIN IMMEDIATE")
                self._open = True
            self._db.execute(
                "INSERT INTO entries (topic, partition, key, value, uids, appended_at) VALUES (?, ?, ?, ?, ?, ?)",
                (topic, partition, key, value, "\n".join(uids), time.time()),
            )

    def make_durable(self) -> None:
        """Commit (and fsync) everything appended so far; a door answers only after this returns."""
        with self._lock:
            if self._open:
                self._db.execute("COMMIT")
                self._open = False

    def entries(self, after: int = 0, limit: int = 500) -> list[Entry]:
        """Committed entries with an id above ``after``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, partition, key, value, uids FROM entries WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [Entry(row[0], row[1], row[2], row[3], row[4], tuple(filter(None, row[5].split("\n")))) for row in rows]

    def all_entries(self, chunk: int = 200) -> Iterator[Entry]:
        """Every committed entry, oldest first, read ``chunk`` at a time."""
        last = 0
        while batch := self.entries(last, chunk):
            yield from batch
            last = batch[-1].id

    def newest_id(self) -> int:
        """Id of the newest committed entry (0 for an empty journal)."""
        with self._lock:
            return int(self._db.execute("SELECT coalesce(max(id), 0) FROM entries").fetchone()[0])

    def first_uids(self, after: int = 0, limit: int = 500, up_to: int | None = None) -> list[tuple[int, str]]:
        """(id, first uid) of committed entries after ``after`` (and up to ``up_to``), oldest first.

        An entry whose first record has not landed has not landed.
        """
        with self._lock:
            return self._db.execute(
                "SELECT id, substr(uids, 1, instr(uids || char(10), char(10)) - 1) FROM entries "
                "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                (after, up_to if up_to is not None else 2**63 - 1, limit),
            ).fetchall()

    def appended_from(self, first: int, last: int) -> float | None:
        """When the earliest entry with an id from ``first`` to ``last`` was appended (seconds since the epoch)."""
        with self._lock:
            row = self._db.execute("SELECT min(appended_at) FROM entries WHERE id BETWEEN ? AND ?", (first, last))
            return row.fetchone()[0]

    def uids(self, ids: Iterable[int]) -> list[tuple[int, str]]:
        """(id, newline-joined uids) of the entries ``ids`` still held, without their values: what the sink checks."""
        chosen = sorted(ids)
        if not chosen:
            return []
        with self._lock:
            return self._db.execute(
                f"SELECT id, uids FROM entries WHERE id IN ({', '.join('?' * len(chosen))}) ORDER BY id", chosen
            ).fetchall()

    def forget(self, ids: Iterable[int]) -> None:
        """Delete entries whose records have all landed."""
        chosen = [(entry,) for entry in ids]
        if not chosen:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM entries WHERE id = ?", chosen)
            finally:
                self._db.execute("COMMIT")

    def count(self) -> int:
        """Committed entries not yet forgotten."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        """Release the file; appended but not durable entries are rolled back (nobody was promised them)."""
        with self._lock:
            if self._open:
                self._db.execute("ROLLBACK")
                self._open = False
            self._db.close()


def pending_records(folder: Path) -> int:
    """How many entries every journal in ``folder`` still holds: what a drain waits for.

    A journal that cannot be read (its writer is rolling back this moment, or the file is
    damaged, which the sink's log names) counts as one entry, so a drain waits for it rather
    than calling the hub drained.
    """
    total = 0
    for path in journal_files(folder):
        try:
            journal = Journal(path, busy_timeout_s=1.0)
            try:
                total += journal.count()
            finally:
                journal.close()
        except (sqlite3.OperationalError, ConfigurationError):
            total += 1
    return total
