"""The article's example case, part of every simulated day.

"An illegal structure of about 20 m² was reported half an hour after building started, and
demolished with the enforcement bureau's help within two hours." The day carries that case as the
town's systems would see it: a grid worker's report, the squad officer's steps posted by the squad's
desk, the worker's on-site check and the command centre's closing. Its point lies north-west of every
village the day's other reports cluster around, so no other report is taken for a second report of
it, and the demo can check the whole loop took less than two hours.
"""

from __future__ import annotations

from typing import Any

from simulation.senders import COMMAND_CENTRE, case_workers

Row = dict[str, Any]

REPORT_ID = "R20261125-A00020"
DEPARTMENT = "enforcement"
POINT = (32.028, 119.826)
"""In the north-west cell of 万绥村 (squad 万绥), outside the box the day's other reports fall in."""
WORKER = "GW001"
"""The grid worker of that cell."""
STEPS: tuple[tuple[str, str, str | None], ...] = (
    ("in_handling", "09:40", "执法中队接单，赶赴现场，责令立即停止建设"),
    ("handled", "11:15", "当事人配合，执法队员协助拆除完毕"),
    ("verified", "11:25", "现场核查已拆除到位"),
    ("closed", "11:30", None),
)
"""Status, Asia/Shanghai time on the day, note; dispatch at 09:30 is the command centre's automation."""


def article_example() -> tuple[Row, list[Row]]:
    """The report and the updates of the example, as the gateway takes them, in order."""
    lat, lon = POINT
    _, officer = case_workers(DEPARTMENT, lat, lon, 0)
    report: Row = {
        "report_id": REPORT_ID,
        "category": "0101",
        "description": "村民在自家宅基地旁新搭建彩钢棚约20平方米，09:00开始施工，尚未完工",
        "lat": lat,
        "lon": lon,
        "reported_at": "2026-11-25T09:30:00+08:00",
        "reporter_id": WORKER,
        "photos": ["sha256:" + "a0" * 32],
    }
    actors = {"in_handling": officer, "handled": officer, "verified": WORKER, "closed": COMMAND_CENTRE}
    updates = []
    for number, (status, clock, note) in enumerate(STEPS, start=1):
        update: Row = {
            "update_id": f"{REPORT_ID}-U{number:02d}",
            "event_id": REPORT_ID,
            "status": status,
            "at": f"2026-11-25T{clock}:00+08:00",
            "actor": actors[status],
        }
        if note:
            update["note"] = note
        if status in ("handled", "verified"):
            update["photo_ref"] = f"sha256:{'a1' if status == 'handled' else 'a2'}" + "00" * 31
        updates.append(update)
    return report, updates
