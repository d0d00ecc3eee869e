"""The sink moves DuckDB's write-ahead log into the warehouse file while nothing is arriving.

DuckDB checkpoints on its own inside the commit that takes the log past its
``checkpoint_threshold`` (16 MiB), and that commit waits for the checkpoint. On the
benchmark's hub (a 500 MB warehouse after a million-row load and two re-syncs), such a
commit held one incident transaction for 1.0 s at 20 reports/s, and the cases behind it
with it: the load's warehouse p99 went from about 0.5 s to 1.2 s. At 20 reports/s the log
passes the threshold every two minutes or so, so whether a 15 s measurement met its goal came
down to whether a checkpoint fell inside it.

A hub is rarely busy without a pause. So when a whole batch wait passes with nothing to
write, the sink checkpoints itself if the log holds at least
``GRIDHUB_SINK_IDLE_CHECKPOINT_KIB``. The work is the same; it is done while no report
waits for it, and the next busy spell starts with an empty log. A hub that never pauses
still checkpoints as before, inside a commit.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from foundation.logs import get_logger

log = get_logger(__name__)


class IdleCheckpoint:
    """Checkpoints one warehouse connection on request, when its log has grown enough to be worth it."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, min_kib: int) -> None:
        self._connection = connection
        self._min_bytes = min_kib * 1024
        row = connection.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        self._log = Path(f"{row[0]}.wal") if row and row[0] else None
        """DuckDB's log sits beside the file, named after it; an in-memory warehouse has none."""

    def log_bytes(self) -> int:
        """How many bytes the write-ahead log holds now (0 when there is none)."""
        if self._log is None:
            return 0
        try:
            return self._log.stat().st_size
        except FileNotFoundError:
            return 0

    def run(self) -> bool:
        """Checkpoint if turned on and the log holds at least the minimum; return whether it did.

        A checkpoint DuckDB refuses (its documentation allows it to while another transaction is
        active; 2.0 checkpoints beside open transactions) or the disk fails is left for the next
        pause, or for DuckDB's own.
        """
        size = self.log_bytes()
        if self._min_bytes == 0 or size < self._min_bytes:
            return False
        try:
            self._connection.execute("CHECKPOINT")
        except (duckdb.TransactionException, duckdb.IOException) as exc:
            log.warning("idle checkpoint put off; DuckDB checkpoints on its own later", error=str(exc))
            return False
        log.debug("write-ahead log moved into the warehouse file while idle", log_bytes=size)
        return True
