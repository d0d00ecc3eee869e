"""The enforcement bureau's side of the simulated day: its case files, and the article's example case.

A grid case of an enforcement category is handled by an officer of the squad of its area, and
the bureau's case system (执法办案系统) keeps an enforcement case for it: filed when the officer
takes the work order on, investigated, the party told, decided and executed before the officer
reports the grid case handled, closed once the grid worker has verified it. The system exports its
case files with the stage times as columns; the demo ingests that export like any department's, so
the hub checks each file against the bureau's flow, powers and roster. A few files carry the faults
a clerk makes (a power the bureau does not hold, a decision with no notice before it, a stage dated
before the one it follows, an officer not on the roster) and must end in the rejects, not the
warehouse.

The article's example (:mod:`simulation.article`) is one of the day's enforcement grid cases, so it
gets its case file here like the others.

Like :mod:`simulation.day` this is a pure function of the day and a seed.
"""

from __future__ import annotations

import csv
import random
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.enforcement import Bureau
from schemas.grid import Grid
from schemas.identity import InvalidCode, normalise_resident_id, normalise_uscc
from simulation.day import TownDay

Row = dict[str, Any]

HEADERS: dict[str, str] = {
    "案件编号": "case_no",
    "网格案件编号": "grid_case_id",
    "执法事项编码": "power_code",
    "当事人": "party_name",
    "当事人身份证号": "party_id_number",
    "当事人统一社会信用代码": "party_uscc",
    "承办人编号": "officer_id",
    "立案时间": "filed_at",
    "调查取证时间": "investigated_at",
    "告知时间": "notified_at",
    "决定时间": "decided_at",
    "执行时间": "executed_at",
    "结案时间": "closed_at",
    "处理决定": "decision",
    "罚款金额": "fine_yuan",
}
"""The bureau's export header → :class:`schemas.records.EnforcementCase` field (the standard headers)."""

POWERS_BY_CATEGORY: dict[str, tuple[str, str]] = {
    "0101": ("ZF-CG-005", "责令立即停止建设，限期拆除"),
    "0201": ("ZF-CG-008", "责令清除，罚款"),
    "0203": ("ZF-CG-009", "责令限期拆除广告设施"),
    "0504": ("ZF-CG-011", "责令改正，警告"),
}
"""Which of the bureau's powers a grid case of each enforcement category uses, and what is decided."""
DEFAULT_POWER = ("ZF-CG-007", "责令改正")
SOURCE = "enforcement-bureau"
"""The source name the bureau's case system publishes its export under."""
_OFFICER = re.compile(r"^ZF\d{2}$")
FAULTS = ("unknown_power", "stage_skipped", "stage_out_of_order", "unknown_officer")


def _spread(start: datetime, end: datetime, count: int) -> list[datetime]:
    """``count`` moments from ``start`` to just before ``end``, evenly spaced."""
    step = (end - start) / max(count, 1)
    return [(start + step * index).replace(microsecond=0) for index in range(count)]


def _parties(day: TownDay) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Residents and enterprises of the day's registers with valid codes: (name, code)."""
    people, organisations = [], []
    for row in day.people:
        try:
            people.append((row["姓名"], normalise_resident_id(row["公民身份号码"])))
        except (InvalidCode, KeyError, TypeError):
            continue
    for row in day.organisations:
        try:
            organisations.append((row["单位名称"], normalise_uscc(row["统一社会信用代码"])))
        except (InvalidCode, KeyError, TypeError):
            continue
    return people, organisations


def case_files(day: TownDay, grid: Grid, bureau: Bureau, seed: int) -> list[Row]:
    """The bureau's export of the day: one file per enforcement grid case an officer took on, then faulty ones."""
    rng = random.Random(seed + 13)  # noqa: S311 -- simulation, seeded for replay
    people, organisations = _parties(day)
    by_event: dict[str, list[Row]] = {}
    for update in day.updates:
        by_event.setdefault(update["event_id"], []).append(update)
    officers_of: dict[str, list[str]] = {}
    for officer in bureau.file.officers:
        officers_of.setdefault(officer.unit, []).append(officer.id)
    files: list[Row] = []
    seen: set[str] = set()
    for report in day.reports:
        code = str(report.get("category", ""))
        updates = by_event.get(report["report_id"], [])
        started = [u for u in updates if u["status"] == "in_handling"]
        if code not in POWERS_BY_CATEGORY or not started or report["report_id"] in seen:
            continue
        seen.add(report["report_id"])
        cell = grid.locate(report["lat"], report["lon"])
        if cell is None:
            continue
        actor = next((u["actor"] for u in started if _OFFICER.match(str(u["actor"]))), None)
        officer = actor or rng.choice(officers_of[cell.squad])
        files.append(_case_file(len(files) + 1, report, updates, officer, code, rng, people, organisations))
    return [*files, *_faulty(files, rng)]


def _case_file(
    number: int,
    report: Row,
    updates: list[Row],
    officer: str,
    category: str,
    rng: random.Random,
    people: list[tuple[str, str]],
    organisations: list[tuple[str, str]],
) -> Row:
    power, decision = POWERS_BY_CATEGORY.get(category, DEFAULT_POWER)
    started = datetime.fromisoformat(next(u["at"] for u in updates if u["status"] == "in_handling"))
    handled = next((datetime.fromisoformat(u["at"]) for u in updates if u["status"] == "handled"), None)
    verified = next((datetime.fromisoformat(u["at"]) for u in updates if u["status"] == "verified"), None)
    stages = ["立案时间", "调查取证时间", "告知时间", "决定时间"]
    moments = _spread(started, handled or started + timedelta(hours=2), len(stages))
    row: Row = {header: "" for header in HEADERS}
    shop = category == "0504" and organisations
    parties = organisations if shop else people
    name, code = rng.choice(parties)
    while not name:  # a register row without a name is refused: no golden record to link the party to
        name, code = rng.choice(parties)
    row.update(
        {
            "案件编号": f"ZF{started:%Y%m%d}-{number:04d}",
            "网格案件编号": report["report_id"],
            "执法事项编码": power,
            "当事人": name,
            "当事人统一社会信用代码" if shop else "当事人身份证号": code,
            "承办人编号": officer,
        }
    )
    reached = stages if handled else stages[: rng.randint(1, len(stages))]
    for header, moment in zip(reached, moments, strict=False):
        row[header] = moment.isoformat()
    if handled:
        row["处理决定"] = decision
        row["执行时间"] = handled.isoformat()
        if "罚款" in decision:
            row["罚款金额"] = str(rng.choice((200, 500, 1000)))
    if handled and verified:
        row["结案时间"] = (verified + timedelta(minutes=5)).isoformat()
    return row


def _faulty(files: list[Row], rng: random.Random) -> list[Row]:
    """One file for each fault a clerk makes, copied from a good one so only the fault is wrong."""
    if not files:
        return []
    faulty = []
    for index, fault in enumerate(FAULTS, start=1):
        row = dict(rng.choice(files))
        row["案件编号"] = f"{row['案件编号']}-E{index}"
        row["网格案件编号"] = ""
        filed = datetime.fromisoformat(row["立案时间"])
        if fault == "unknown_power":
            row["执法事项编码"] = "ZF-XX-999"
        elif fault == "unknown_officer":
            row["承办人编号"] = "ZF99"
        else:
            row.update({"调查取证时间": (filed + timedelta(minutes=10)).isoformat(), "执行时间": "", "结案时间": ""})
            row["告知时间"] = "" if fault == "stage_skipped" else (filed - timedelta(minutes=5)).isoformat()
            row["决定时间"] = (filed + timedelta(minutes=30)).isoformat()
        faulty.append(row)
    return faulty


def write_case_files(rows: list[Row], folder: Path) -> Path:
    """Write the bureau's export as UTF-8 CSV with its Chinese headers; return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "enforcement-cases.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(HEADERS))
        writer.writeheader()
        writer.writerows(rows)
    return path
