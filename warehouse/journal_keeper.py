"""The sink's side of the doors' journal: forget what has landed, remove what is finished.

Only the sink knows when a record has landed (its intake row is committed), so the sink
prunes the doors' journals (:mod:`foundation.journal`) from a thread of its own: each pass
checks every entry of every journal against the intake ledger, a page at a time, deletes those
whose every record is there, and removes a journal file that is empty and whose process is gone.
A journal whose process holds a long transaction (an ingest run still sending) is skipped
until the next pass rather than waited for.

Checking every uid of a department export still landing joined a million record uids with the
intake ledger every second: a third of the sink's CPU during a bulk load, taken from the very
writes it waited for. So a pass first looks up each entry's first uid, and reads and checks all
the uids only of the entries whose first record has landed. And passes are paced: the pause
after one is at least ``GRIDHUB_JOURNAL_CHECK_SECONDS`` and at least
:data:`PAUSE_PER_PASS_SECOND` times as long as the pass took. Nothing is lost by an entry
forgotten later: it is only resent if the hub restarts, and the resend lands as a duplicate.

A record's intake row is written after its door appended it to the journal (a door journals a
message before it sends it, and gives each record a new uid), so a pass searches only the
ledger rows written since the earliest entry it checks was appended, less
:data:`CLOCK_MARGIN` for a door whose clock runs ahead of the sink's. The ledger is appended
in the order it is written, so DuckDB skips the older row groups by their written_at range.
Searching the whole ledger instead cost more with every record ever taken: on the benchmark's
hub (3,000,000 ledger rows), the passes that forgot a re-sync's entries took a third of the
sink's sampled stacks during the next incident load at 20 reports/s (one session).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from foundation.errors import ConfigurationError
from foundation.journal import Journal, journal_files
from foundation.logs import get_logger
from foundation.runfiles import pid_alive

log = get_logger(__name__)
_PAGE = 200
"""Entries checked at once: a page of bulk entries carries a million record uids."""
_FIRST_UIDS_PAGE = 10_000
"""Entries whose first uid is looked up at once."""
PAUSE_PER_PASS_SECOND = 9.0
"""Seconds of pause per second a pass took: the keeper uses at most a tenth of the time it runs."""
CLOCK_MARGIN = timedelta(hours=1)
"""How long before an entry's append its records' ledger rows are still looked for (a door's clock running ahead)."""
WHOLE_LEDGER = datetime(1970, 1, 1, tzinfo=UTC)
"""Where a search starts that is not narrowed by when the entries were appended."""
_LANDED = """
SELECT entry FROM (
    SELECT entry, unnest(string_split(uids, chr(10))) AS uid FROM journal_uids
) AS carried
LEFT JOIN (SELECT record_uid FROM intake WHERE written_at >= $since) AS landed ON landed.record_uid = carried.uid
GROUP BY entry
HAVING count(*) = count(landed.record_uid)
"""


def landed_entries(
    cursor: duckdb.DuckDBPyConnection, entries: list[tuple[int, str]], since: datetime = WHOLE_LEDGER
) -> list[int]:
    """Ids of the entries whose every record uid has its intake row, among the rows written from ``since`` on."""
    if not entries:
        return []
    table = pa.table({"entry": [entry for entry, _ in entries], "uids": [uids for _, uids in entries]})
    cursor.register("journal_uids", table)
    try:
        return sorted(row[0] for row in cursor.execute(_LANDED, {"since": since}).fetchall())
    finally:
        cursor.unregister("journal_uids")


def _started_entries(cursor: duckdb.DuckDBPyConnection, firsts: list[tuple[int, str]], since: datetime) -> list[int]:
    """Ids of the entries whose first record uid has its intake row, among the rows written from ``since`` on."""
    table = pa.table({"entry": [entry for entry, _ in firsts], "uid": [uid for _, uid in firsts]})
    cursor.register("journal_firsts", table)
    try:
        rows = cursor.execute(
            "SELECT entry FROM journal_firsts SEMI JOIN (SELECT record_uid FROM intake WHERE written_at >= $since) "
            "AS landed ON landed.record_uid = uid",
            {"since": since},
        ).fetchall()
    finally:
        cursor.unregister("journal_firsts")
    return sorted(row[0] for row in rows)


def _landed_in(cursor: duckdb.DuckDBPyConnection, journal: Journal) -> list[int]:
    """Ids of the entries of ``journal`` whose every record has landed, among those it held as the pass began.

    A door keeps appending while a pass runs. Paging on to its newest entries kept a pass
    chasing a journal that grew as fast as it was checked: at 20 reports/s on the benchmark's
    hub, one pass made 130 searches of 2-4 entries each (100-200 ms each against 3,000,000
    ledger rows) and lasted the whole 16 s load, and the pause after a pass came only after it.
    """
    landed: list[int] = []
    after, newest = 0, journal.newest_id()
    while firsts := journal.first_uids(after, _FIRST_UIDS_PAGE, up_to=newest):
        appended = journal.appended_from(firsts[0][0], firsts[-1][0])
        since = WHOLE_LEDGER if appended is None else datetime.fromtimestamp(appended, UTC) - CLOCK_MARGIN
        started = _started_entries(cursor, firsts, since)
        for start in range(0, len(started), _PAGE):
            landed += landed_entries(cursor, journal.uids(started[start : start + _PAGE]), since)
        after = firsts[-1][0]
    return landed


def prune(cursor: duckdb.DuckDBPyConnection, folder: Path) -> int:
    """One pass over every journal in ``folder``; return how many entries it forgot."""
    forgotten = 0
    for path in journal_files(folder):
        try:
            journal = Journal(path, busy_timeout_s=0.2)
        except sqlite3.OperationalError:
            continue
        except ConfigurationError as exc:
            log.warning("journal unreadable; left as it is", journal=str(path), error=str(exc))
            continue
        try:
            landed = _landed_in(cursor, journal)
            journal.forget(landed)
            forgotten += len(landed)
            finished = journal.count() == 0 and journal.owner is not None and not pid_alive(journal.owner)
        except sqlite3.OperationalError:
            continue
        finally:
            journal.close()
        if finished:
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
    return forgotten


def pause_after(pass_s: float, interval_s: float) -> float:
    """How long the keeper waits after a pass that took ``pass_s``: ``interval_s``, or longer after a slow pass."""
    return max(interval_s, PAUSE_PER_PASS_SECOND * pass_s)


class JournalKeeper:
    """A daemon thread that prunes the journals, paced by :func:`pause_after`, until stopped."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, folder: Path, interval_s: float) -> None:
        self._cursor = connection.cursor()
        self._folder = folder
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="journal-keeper", daemon=True)

    def start(self) -> None:
        """Begin pruning in the background."""
        self._thread.start()

    def _run(self) -> None:
        pause_s = self._interval_s
        while not self._stop.wait(pause_s):
            started = time.monotonic()
            try:
                prune(self._cursor, self._folder)
            except duckdb.Error as exc:
                log.warning("journal check failed; trying again", error=str(exc))
            pause_s = pause_after(time.monotonic() - started, self._interval_s)

    def stop(self) -> None:
        """Finish the pass in hand, one last pass, and release the cursor."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with contextlib.suppress(duckdb.Error, sqlite3.Error):
            prune(self._cursor, self._folder)
        self._cursor.close()
