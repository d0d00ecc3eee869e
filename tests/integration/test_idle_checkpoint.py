"""The sink checkpoints the warehouse in a pause, so the next busy spell starts with an empty log."""

from __future__ import annotations

from pathlib import Path

from tests.support import hub as support
from tests.support.hub import Hub, unique, wait_until


def log_bytes(hub: Hub) -> int:
    """What DuckDB's write-ahead log beside the warehouse holds (0 when it has none)."""
    try:
        return Path(f"{hub.settings.warehouse_file}.wal").stat().st_size
    except FileNotFoundError:
        return 0


def file_written_ns(hub: Hub) -> int:
    """When the warehouse file was last written: only a checkpoint writes a report's rows into it."""
    return Path(hub.settings.warehouse_file).stat().st_mtime_ns


def test_a_pause_after_a_report_moves_the_log_into_the_warehouse_file(hub: Hub) -> None:
    event_id = unique("R")
    body = support.report(
        event_id,
        category="0102",
        description="路边暴露垃圾",
        reported_at="2026-11-25T09:15:00+08:00",
        reporter_id="GW017",
    )
    assert hub.post("/v1/reports", body)[0] == 202
    wait_until(lambda: hub.sql(f"SELECT 1 FROM events WHERE event_id = '{event_id}'"), what="the report's event row")

    file_before = file_written_ns(hub)

    def checkpointed() -> bool:
        """The log is empty, or the file was written since: the hub's own background writes may refill the log
        between a checkpoint and this poll, but they never write the file itself."""
        return log_bytes(hub) == 0 or file_written_ns(hub) > file_before

    wait_until(checkpointed, timeout_s=30, what="a checkpoint into the warehouse file in the sink's next pause")
    assert hub.sql(f"SELECT count(*) FROM events WHERE event_id = '{event_id}'") == [[1]]
