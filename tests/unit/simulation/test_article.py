"""The article's example case rides along with every simulated day."""

from __future__ import annotations

from datetime import datetime, timedelta

from foundation.packaged import MENGHE_GRID
from schemas.grid import Grid
from simulation.article import POINT, REPORT_ID, WORKER, article_example
from simulation.day import simulate_day


def test_the_structure_is_reported_half_an_hour_after_building_started_and_gone_within_two_hours() -> None:
    report, updates = article_example()
    reported = datetime.fromisoformat(report["reported_at"])
    assert "20平方米" in report["description"] and "09:00开始施工" in report["description"]
    assert reported.strftime("%H:%M") == "09:30"
    handled = next(datetime.fromisoformat(u["at"]) for u in updates if u["status"] == "handled")
    assert handled - reported < timedelta(hours=2)
    assert [u["status"] for u in updates] == ["in_handling", "handled", "verified", "closed"]


def test_an_officer_of_the_cells_squad_handles_it_and_the_cells_worker_who_reported_verifies() -> None:
    cell = Grid.load(MENGHE_GRID).locate(*POINT)
    assert cell is not None and cell.squad == "wansui" and WORKER in cell.workers
    _, updates = article_example()
    handlers = {u["actor"] for u in updates if u["status"] in ("in_handling", "handled")}
    verifier = next(u["actor"] for u in updates if u["status"] == "verified")
    assert handlers == {"ZF01"}  # the first officer of 万绥中队
    assert verifier == WORKER and verifier not in handlers  # 巡办分离


def test_every_day_carries_it_once_whatever_its_size() -> None:
    for events in (1, 37):
        day = simulate_day(events, seed=5)
        assert [r["report_id"] for r in day.reports].count(REPORT_ID) == 1
        assert sum(u["event_id"] == REPORT_ID for u in day.updates) == 4
