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

    wait_until(lambda: log_bytes(hub) == 0, timeout_s=30, what="an empty write-ahead log after the sink's next pause")
    assert hub.sql(f"SELECT count(*) FROM events WHERE event_id = '{event_id}'") == [[1]]
