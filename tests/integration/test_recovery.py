"""Crashes and restarts lose nothing and duplicate nothing.

These tests kill real service processes with SIGKILL (no chance to clean up)
in the middle of a flow, restart them, and check the warehouse accounts for
every record exactly once.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

from support import Hub, hub_settings, resident_id, wait_until

from connectors.base import RawPublisher
from connectors.exports import ExportConnector, ExportFile
from gridhub.supervisor import Stack
from warehouse.reader import query


def write_register(path: Path, size: int) -> list[str]:
    ids = [resident_id() for _ in range(size)]
    rows = "\n".join(f"居民{number},{code},孟河镇" for number, code in enumerate(ids))
    path.write_text(f"姓名,公民身份号码,住址\n{rows}\n", encoding="utf-8")
    return ids


def publish(bootstrap: str, path: Path, source: str) -> str:
    run_id = uuid.uuid4().hex
    publisher = RawPublisher(bootstrap, client_id="test")
    try:
        ExportConnector(publisher, source).ingest(ExportFile(path, "person"), run_id)
    finally:
        publisher.close()
    return run_id


def run_outcomes(hub: Hub, run_id: str) -> dict[str, int]:
    return dict(hub.sql(f"SELECT outcome, count(*) FROM intake WHERE run_id = '{run_id}' GROUP BY 1"))


def test_sink_killed_mid_batch_resumes_without_loss_or_duplicates(hub: Hub, tmp_path: Path) -> None:
    ids = write_register(tmp_path / "big.csv", 6000)
    run_id = publish(hub.stack.bootstrap, tmp_path / "big.csv", "sink-crash")
    wait_until(lambda: 0 < sum(run_outcomes(hub, run_id).values()) < len(ids), timeout_s=60, what="a partial load")
    hub.stack.processes["sink"].send_signal(signal.SIGKILL)
    hub.stack.processes["sink"].wait()
    hub.stack.restart("sink")

    wait_until(lambda: sum(run_outcomes(hub, run_id).values()) == len(ids), timeout_s=120, what="the full load")
    assert run_outcomes(hub, run_id) == {"new": len(ids)}
    assert hub.scalar("SELECT count(*) FROM person_sources WHERE source = 'sink-crash'") == len(ids)
    assert hub.scalar("SELECT count(DISTINCT record_uid) FROM intake WHERE run_id = '" + run_id + "'") == len(ids)


def test_worker_killed_and_restarted_still_remembers_what_it_saw(hub: Hub, tmp_path: Path) -> None:
    write_register(tmp_path / "register.csv", 300)
    first = publish(hub.stack.bootstrap, tmp_path / "register.csv", "worker-crash")
    wait_until(lambda: run_outcomes(hub, first) == {"new": 300}, what="first load")

    hub.stack.processes["worker"].send_signal(signal.SIGKILL)
    hub.stack.processes["worker"].wait()
    hub.stack.restart("worker")
    second = publish(hub.stack.bootstrap, tmp_path / "register.csv", "worker-crash")

    wait_until(lambda: sum(run_outcomes(hub, second).values()) == 300, timeout_s=120, what="second load")
    assert run_outcomes(hub, second) == {"duplicate": 300}


def test_restarted_embedded_broker_is_detected_and_nothing_new_is_skipped(tmp_path: Path) -> None:
    """The embedded broker forgets its topics; stale offsets must not skip the new topics' records."""
    settings = hub_settings(tmp_path / "hub")
    with Stack(settings) as first:
        write_register(tmp_path / "day1.csv", 50)
        day1 = publish(first.bootstrap, tmp_path / "day1.csv", "incarnation")
        wait_until(lambda: _count(settings, day1) == 50, what="day 1")
    with Stack(settings) as second:
        write_register(tmp_path / "day2.csv", 20)
        day2 = publish(second.bootstrap, tmp_path / "day2.csv", "incarnation")
        wait_until(lambda: _count(settings, day2) == 20, what="day 2 despite stale offsets")
        assert query(settings, "SELECT count(*) FROM person_sources WHERE source = 'incarnation'")["rows"] == [[70]]
    log = (settings.data_dir / "logs" / "sink.log").read_text()
    assert "topic was recreated" in log


def _count(settings: object, run_id: str) -> int:
    return int(query(settings, f"SELECT count(*) FROM intake WHERE run_id = '{run_id}'")["rows"][0][0])  # type: ignore[arg-type]
