"""One simulated working day of Menghe town, for ``gridhub demo`` and the integration tests.

No record-level open data of Chinese grid cases exists (reference/domain-standards.md §8),
so the pipeline is exercised with a synthetic day driven by the routing table's categories,
the 146 grid workers and their two daily patrols, the case flow of §5 and the identity
standards of §6. Every feed carries the faults the real feeds carry (phone retries,
unknown categories, broken JSON, duplicated and mistyped register rows) so that
dedup, validation and the reject path are tested on every run.

The generator is a pure function of ``(events, seed)`` and the routing table: one seeded
:class:`random.Random` is consumed in a fixed order and no set or hash order ever reaches the
output, so a test can assert exact counts and a failing demo can be replayed byte for byte.
Its only I/O is reading the routing table and the approval catalogue (its windows), and
:func:`write_exports`, which lays the two register exports out as files.

The counts in :attr:`TownDay.expected` are recomputed from the generated rows (with the
national check-character rules and the routing table), not copied from the plan, so they stay
right whatever the mix of faults turns out to be.
"""

from __future__ import annotations

import copy
import csv
import functools
import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from foundation import packaged
from schemas import TOWN_TIMEZONE
from schemas.approvals import ApprovalCatalogue, load_catalogue
from schemas.identity import InvalidCode, normalise_resident_id, normalise_uscc, uscc_check_char
from simulation.article import article_example
from simulation.people import (
    CHECK_CHARACTERS,
    enterprise_register,
    household_register,
    organisation_code,
    resident_id,
    valid_resident_ids,
    weighted,
    wrong_check,
)
from simulation.scale import DEMO_EVENTS
from simulation.senders import case_workers, own_cell_point
from simulation.town import (
    DAY,
    GRID_WORKERS,
    LANDMARKS,
    PEOPLE_HEADERS,
    REPORT_BOX,
    UNKNOWN_CATEGORY_CODES,
    VILLAGES,
    ReportedCategory,
    reported_categories,
)
from streams.nearby import distance_m
from streams.routing import RoutingRules, load_rules

Row = dict[str, Any]

# Applications: (item code, item name, who applies: person, org or either).
APPROVAL_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("320411-XK-001", "个体工商户设立登记", "person"),
    ("320411-XK-002", "食品经营许可", "either"),
    ("320411-XK-003", "乡村建设规划许可证核发", "person"),
    ("320411-XK-004", "建筑工程施工许可证核发", "org"),
    ("320411-XK-005", "城市建筑垃圾处置核准", "org"),
    ("320411-XK-006", "设置大型户外广告审批", "org"),
    ("320411-XK-007", "临时占用城市道路审批", "either"),
    ("320411-XK-008", "农村村民宅基地审批", "person"),
    ("320411-GG-001", "城乡居民基本养老保险参保登记", "person"),
    ("320411-GF-001", "最低生活保障申请", "person"),
)
# Status paths an application takes during one day (each entry is one appended row).
_APPLICATION_PATHS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("submitted",), 30),
    (("submitted", "accepted"), 30),
    (("submitted", "accepted", "in_review"), 20),
    (("submitted", "accepted", "approved"), 12),
    (("submitted", "approved"), 5),
    (("submitted", "accepted", "refused"), 3),
)


# Lifecycle: who posts each status, and what a department desk writes.
_COMMAND_DESK = "command-centre"
_HANDLED_NOTES = {
    "enforcement": "已责令当事人整改到位",
    "sanitation": "已清运完毕",
    "environment": "已制止并完成整改",
    "land": "已立案调查并责令停止",
    "police": "已到场处置",
    "market": "已劝离并登记",
    "water": "已抢修完成",
    "construction": "已约谈施工单位并整改",
    "emergency": "已完成应急处置",
}
_RETURN_NOTES = ("现场情况与上报不符，申请退回", "位置不明确，请补充后重新派遣", "需其他部门协同，退回指挥中心")
# Final status of a chain and its weight; returned chains always get past a second dispatch.
_CHAIN_ENDS = (("closed", 65), ("verified", 5), ("handled", 10), ("in_handling", 8), ("dispatched", 7), ("accepted", 5))
_MAIN_CHAIN = ("accepted", "dispatched", "in_handling", "handled", "verified", "closed")
_HANDLED_NOTE = "已处置完毕"
"""What a desk writes when :data:`_HANDLED_NOTES` has no note of its department's own."""
_GAP_SECONDS = {
    "accepted": (120, 1200),
    "dispatched": (180, 1800),
    "returned": (600, 3600),
    "in_handling": (600, 3600),
    "handled": (1200, 10800),
    "verified": (600, 3600),
    "closed": (300, 1800),
}
"""Seconds before each status, from the step before it: a day's cases move within hours."""


@dataclass(frozen=True)
class Lifecycle:
    """How far and how fast the cases of a day move: the one demo day's, or a day of a simulated year.

    The demo day works on a share of its cases and squeezes every chain into the day, so one day
    holds every status; a day of a year works every case to its close and lets a chain run on into
    the following days (the year decides which steps happen before it ends).
    """

    share: float
    """Share of the day's valid reports that get updates."""
    ends: tuple[tuple[str, int], ...]
    """Final status of a chain and its weight."""
    gaps: dict[str, tuple[int, int]]
    """Seconds before each status (lowest, highest)."""
    within_day: bool
    """Whether every chain is squeezed into the day of its report."""


ONE_DAY = Lifecycle(share=0.6, ends=_CHAIN_ENDS, gaps=_GAP_SECONDS, within_day=True)
"""The demo day's lifecycle: 60% of the cases move, and only within the day."""
A_YEAR_DAY = Lifecycle(
    share=1.0,
    ends=(("closed", 1),),
    gaps={**_GAP_SECONDS, "handled": (1800, 16 * 3600), "verified": (600, 6 * 3600)},
    within_day=False,
)
"""A day of a simulated year: every case is worked to its close, handling takes from half an hour to
16 hours and the on-site check up to 6, so an afternoon's case is often closed the next day."""


class Registers(NamedTuple):
    """The household and enterprise register exports (Chinese headers): the town's base data on people."""

    people: list[dict[str, str]]
    organisations: list[dict[str, str]]


@dataclass(frozen=True)
class TownDay:
    """Everything the town's systems produce in one day, plus what a correct pipeline ends with."""

    reports: list[Row]
    """HTTP JSON bodies for ``POST /v1/reports``, in send order (retries included)."""
    malformed_reports: list[bytes]
    """Bodies that are not JSON objects: the gateway must refuse them, not crash."""
    updates: list[Row]
    """HTTP JSON bodies for ``POST /v1/updates``, in send order; each comes after its report."""
    applications: list[Row]
    """Rows of the approval system's table, one per change, in change order."""
    people: list[dict[str, str]]
    """Rows of the civil-affairs household register export (Chinese headers)."""
    organisations: list[dict[str, str]]
    """Rows of the market-supervision enterprise register export (Chinese headers)."""
    expected: dict[str, int]
    """Counts a correct pipeline must end with, recomputed from the lists above."""
    tracks: list[Row] = field(default_factory=list)
    """HTTP JSON bodies for ``POST /v1/tracks``: one per patrol, a point every two minutes."""
    corroborating: list[str] = field(default_factory=list)
    """Report ids of second reports of an open case's problem by another worker: one case, two reports."""
    day: date = DAY
    """The date simulated."""


def simulate_day(
    events: int = DEMO_EVENTS,
    seed: int = 20261125,
    rules: RoutingRules | None = None,
    *,
    day: date = DAY,
    lifecycle: Lifecycle = ONE_DAY,
    registers: Registers | None = None,
    applications: int | None = None,
    tracks: bool = True,
) -> TownDay:
    """Generate one day of Menghe town with ``events`` distinct valid incident reports.

    The same arguments always yield the same day, so the demo and the tests are reproducible;
    different seeds give different days with the same shape. ``rules`` is the routing table the hub
    runs with (default: the packaged one); it names the reported categories.

    A day of a simulated year (:mod:`simulation.year`) passes its ``day``, the year's
    ``lifecycle``, the town's ``registers`` (base data, sent once a year, so the day makes none of
    its own), its number of ``applications`` (default: one per two events) and whether the day has
    patrol ``tracks``. The article's example is part of the day it happened on, :data:`DAY`.
    """
    if events < 1:
        raise ValueError(f"a town day needs at least one event, got {events}")
    rng = random.Random(seed)  # noqa: S311 -- simulation, not cryptography; seeded for replay
    rules = rules or load_rules(packaged.CATEGORIES)
    people, organisations = registers or base_registers(rng, events)
    reports, valid_reports = _reports(rng, events, reported_categories(rules), day)
    updates = lifecycle_updates(rng, valid_reports, lifecycle)
    untouched = {update["event_id"] for update in updates} if lifecycle.within_day else set()
    seconds = _corroborations(rng, valid_reports, untouched)
    example, example_updates = article_example() if day == DAY else (None, [])
    reports = [*reports, *seconds, *([example] if example else [])]
    updates = sorted([*updates, *example_updates], key=lambda update: datetime.fromisoformat(update["at"]))
    count = max(1, events // 2) if applications is None else applications
    application_rows = _applications(rng, count, people, organisations, day)
    application_rows = _seated(random.Random(seed + 2), application_rows)  # noqa: S311 -- own stream, as for tracks
    malformed = _malformed(rng)
    expected = _tally(rules, reports, malformed, updates, application_rows, people, organisations)
    patrols = _tracks(random.Random(seed + 1), day) if tracks else []  # noqa: S311 -- own stream, rest unchanged
    expected["patrol_points"] = sum(len(body["points"]) for body in patrols)
    expected["workers_compliant"] = _compliant_workers(patrols)
    return TownDay(
        reports=reports,
        malformed_reports=malformed,
        updates=updates,
        applications=application_rows,
        people=people,
        organisations=organisations,
        expected=expected,
        tracks=patrols,
        corroborating=[body["report_id"] for body in seconds],
        day=day,
    )


def base_registers(rng: random.Random, events: int) -> Registers:
    """The household and enterprise registers of a town that reports ``events`` problems on a demo day."""
    people = household_register(rng, max(50, events))
    return Registers(people, enterprise_register(rng, max(20, events // 5), people))


def combine(days: list[TownDay], rules: RoutingRules) -> TownDay:
    """Several days (of one town, with the same registers) as one: all they send, and what it must all produce.

    The counts are recomputed from the rows, as for a day, so they are exact for the whole run.
    """
    if not days:
        raise ValueError("there are no days to combine")
    last = days[-1]
    day = TownDay(
        reports=[body for each in days for body in each.reports],
        malformed_reports=[body for each in days for body in each.malformed_reports],
        updates=[update for each in days for update in each.updates],
        applications=[row for each in days for row in each.applications],
        people=last.people,
        organisations=last.organisations,
        expected={},
        tracks=[body for each in days for body in each.tracks],
        corroborating=[report_id for each in days for report_id in each.corroborating],
        day=last.day,
    )
    day.expected.update(
        _tally(rules, day.reports, day.malformed_reports, day.updates, day.applications, day.people, day.organisations)
    )
    day.expected["patrol_points"] = sum(each.expected["patrol_points"] for each in days)
    day.expected["workers_compliant"] = sum(each.expected["workers_compliant"] for each in days)
    return day


def write_exports(day: TownDay, folder: Path) -> tuple[Path, Path]:
    """Write people as UTF-8 CSV (people.csv) and organisations as JSON Lines (organisations.jsonl); return both paths.

    The two formats are the ones the departments actually deliver, so the export
    connector is exercised on both. Plain UTF-8 without a BOM; blank cells stay blank.
    """
    folder.mkdir(parents=True, exist_ok=True)
    people_path = folder / "people.csv"
    with people_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(PEOPLE_HEADERS))
        writer.writeheader()
        writer.writerows(day.people)
    organisations_path = folder / "organisations.jsonl"
    with organisations_path.open("w", encoding="utf-8") as handle:
        for row in day.organisations:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return people_path, organisations_path


# --- time ----------------------------------------------------------------------------------


def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time of the simulated day in China Standard Time."""
    return datetime.combine(day, time(hour, minute, second), tzinfo=TOWN_TIMEZONE)


def _iso(moment: datetime) -> str:
    """ISO-8601 with seconds and the ``+08:00`` offset, as the town's systems write it."""
    return moment.isoformat(timespec="seconds")


def _steps(start: datetime, gaps: list[int], end: datetime | None) -> list[datetime]:
    """Times after ``start`` separated by ``gaps`` seconds, squeezed so the last is not after ``end`` (if any).

    Squeezing (rather than letting a late chain spill into tomorrow) keeps the day one
    day, and every step stays strictly later than the one before.
    """
    room = int((end - start).total_seconds()) if end is not None else None
    total = sum(gaps)
    if room is not None and total > room:
        gaps = [max(1, gap * room // total) for gap in gaps]
    moments: list[datetime] = []
    moment = start
    for gap in gaps:
        moment += timedelta(seconds=gap)
        moments.append(moment)
    return moments


# --- patrol reports and their lifecycle ----------------------------------------------------


def _photo(rng: random.Random) -> str:
    """A fake content hash standing in for an uploaded photo."""
    return f"sha256:{rng.getrandbits(256):064x}"


def _point(rng: random.Random, village: str) -> tuple[float, float]:
    """A WGS84 point near the village centre, kept inside the Menghe box."""
    lat, lon = VILLAGES[village]
    lat = min(max(lat + rng.uniform(-0.008, 0.008), REPORT_BOX.lat_min), REPORT_BOX.lat_max)
    lon = min(max(lon + rng.uniform(-0.008, 0.008), REPORT_BOX.lon_min), REPORT_BOX.lon_max)
    return round(lat, 6), round(lon, 6)


def _reports(
    rng: random.Random, events: int, categories: tuple[ReportedCategory, ...], day: date
) -> tuple[list[Row], list[tuple[Row, ReportedCategory]]]:
    """Reports in send order, and the distinct valid ones with their category.

    Each worker patrols twice (an hour in the morning, an hour in the afternoon), so
    reports cluster in those windows. Retries are exact copies sent a little later,
    as a phone does when it missed the 202.
    """
    villages = list(VILLAGES)
    patrols = [
        (
            f"GW{number:03d}",
            rng.choice(villages),
            _at(day, 8) + timedelta(seconds=rng.randrange(150 * 60)),
            _at(day, 13, 30) + timedelta(seconds=rng.randrange(210 * 60)),
        )
        for number in range(1, GRID_WORKERS + 1)
    ]
    unknown = max(1, round(events * 0.02))
    total = events + unknown
    unknown_slots = set(rng.sample(range(total), unknown))
    drafts: list[tuple[datetime, str, str, bool]] = []
    for slot in range(total):
        worker, village, morning, afternoon = rng.choice(patrols)
        start = morning if rng.random() < 0.5 else afternoon
        drafts.append((start + timedelta(seconds=rng.randrange(3600)), worker, village, slot in unknown_slots))
    drafts.sort(key=lambda draft: (draft[0], draft[1]))
    weights = [spec.weight for spec in categories]
    distinct: list[Row] = []
    valid: list[tuple[Row, ReportedCategory]] = []
    for number, (reported_at, worker, village, is_unknown) in enumerate(drafts, start=1):
        place = village + rng.choice(LANDMARKS)
        lat, lon = _point(rng, village)
        spec: ReportedCategory | None = None
        if is_unknown:
            category = rng.choice(UNKNOWN_CATEGORY_CODES)
            description = f"{place}发现其他问题，请核实"
        else:
            spec = rng.choices(categories, weights=weights)[0]
            category = spec.name if rng.random() < 0.1 else spec.code
            description = rng.choice(spec.descriptions).format(place=place)
            while _looks_like_a_second_report(valid, spec, lat, lon, reported_at):
                lat, lon = _point(rng, village)
        body: Row = {
            "report_id": f"R{day:%Y%m%d}-{number:06d}",
            "category": category,
            "description": description,
            "lat": lat,
            "lon": lon,
            "reported_at": _iso(reported_at),
            "reporter_id": worker,
            "photos": [_photo(rng) for _ in range(rng.randint(1, 3))],
        }
        distinct.append(body)
        if spec is not None:
            valid.append((body, spec))
    retries = max(1, round(events * 0.05))
    sends: list[tuple[datetime, int, Row]] = [
        (datetime.fromisoformat(body["reported_at"]), 0, body) for body in distinct
    ]
    for body, _spec in rng.sample(valid, retries):
        resent = datetime.fromisoformat(body["reported_at"]) + timedelta(seconds=rng.randint(30, 1800))
        sends.append((resent, 1, copy.deepcopy(body)))
    sends.sort(key=lambda send: (send[0], send[1], send[2]["report_id"]))
    return [body for _, _, body in sends], valid


SECOND_REPORT_SUFFIX = "-2"
"""A second report of a problem has the first one's id and this suffix."""
SEPARATION_M = 100
SEPARATION = timedelta(hours=3)


def _looks_like_a_second_report(
    valid: list[tuple[Row, ReportedCategory]], spec: ReportedCategory, lat: float, lon: float, at: datetime
) -> bool:
    """Whether a fresh problem would land so close to an earlier one that the hub must merge them.

    Distinct problems are kept at least 100 m or 3 hours apart (beyond the default 50 m and 2 h),
    so the only merges in the day are the deliberate second reports.
    """
    return any(
        other.code == spec.code
        and abs(datetime.fromisoformat(body["reported_at"]) - at) <= SEPARATION
        and distance_m(lat, lon, body["lat"], body["lon"]) < SEPARATION_M
        for body, other in valid
    )


def _chain(rng: random.Random, returned: bool, ends: tuple[tuple[str, int], ...]) -> list[str]:
    """The statuses one event goes through, following the case flow of §5."""
    end = weighted(rng, ends)
    if returned and end == "accepted":
        end = "dispatched"
    statuses = list(_MAIN_CHAIN[: _MAIN_CHAIN.index(end) + 1])
    if returned:
        second_dispatch = statuses.index("dispatched") + 1
        statuses[second_dispatch:second_dispatch] = ["returned", "dispatched"]
    return statuses


def _with_rework(statuses: list[str]) -> list[str]:
    """A failed on-site check (返工): handled, returned by the worker, taken up again, handled again."""
    if "verified" not in statuses:
        return statuses
    handled = statuses.index("handled") + 1
    return [*statuses[:handled], "returned", "in_handling", "handled", *statuses[handled:]]


def _corroborations(rng: random.Random, valid: list[tuple[Row, ReportedCategory]], updated: set[str]) -> list[Row]:
    """Second reports of still-open problems by another worker, about 10 m away and minutes later.

    Only cases nobody updates today are chosen, so each stays open and the second report must join it.
    """
    candidates = [report for report, _ in valid if report["report_id"] not in updated]
    chosen = rng.sample(candidates, min(len(candidates), max(1, round(len(valid) * 0.04))))
    seconds = []
    for report in chosen:
        later = datetime.fromisoformat(report["reported_at"]) + timedelta(minutes=rng.randint(5, 40))
        seconds.append(
            {
                **report,
                "report_id": f"{report['report_id']}{SECOND_REPORT_SUFFIX}",
                "reporter_id": f"GW{rng.randint(1, GRID_WORKERS):03d}",
                "lat": round(
                    min(max(report["lat"] + rng.uniform(-0.0001, 0.0001), REPORT_BOX.lat_min), REPORT_BOX.lat_max), 6
                ),
                "lon": round(
                    min(max(report["lon"] + rng.uniform(-0.0001, 0.0001), REPORT_BOX.lon_min), REPORT_BOX.lon_max), 6
                ),
                "reported_at": _iso(min(later, _at(later.date(), 17, 59, 59))),
                "photos": [_photo(rng)],
            }
        )
    return seconds


TRACK_STEP = timedelta(minutes=2)
PATROL_MINUTES = 60
SHORT_PATROL_MINUTES = 34
COMPLIANT_PATROL_MINUTES = 50


def _tracks(rng: random.Random, day: date) -> list[Row]:
    """Every worker's patrols through their own cell: usually two hour-long walks; some skip one or cut them short."""
    bodies: list[Row] = []
    for number in range(1, GRID_WORKERS + 1):
        worker = f"GW{number:03d}"
        lat, lon = own_cell_point(worker)
        starts = [
            _at(day, 8) + timedelta(minutes=rng.randrange(150)),
            _at(day, 13, 30) + timedelta(minutes=rng.randrange(210)),
        ]
        habit = rng.random()
        if habit < 0.1:
            starts = starts[:1]
        minutes = SHORT_PATROL_MINUTES if 0.1 <= habit < 0.15 else PATROL_MINUTES
        for start in starts:
            points = []
            for step in range(minutes // 2 + 1):
                lat = min(max(lat + rng.uniform(-0.0003, 0.0003), REPORT_BOX.lat_min), REPORT_BOX.lat_max)
                lon = min(max(lon + rng.uniform(-0.0003, 0.0003), REPORT_BOX.lon_min), REPORT_BOX.lon_max)
                points.append({"at": _iso(start + step * TRACK_STEP), "lat": round(lat, 6), "lon": round(lon, 6)})
            bodies.append({"worker_id": worker, "points": points})
    return bodies


def _compliant_workers(tracks: list[Row]) -> int:
    """Workers with two patrols of at least 50 minutes (the town's rule: twice a day, about an hour)."""
    patrols: dict[str, int] = {}
    for body in tracks:
        first, last = (datetime.fromisoformat(body["points"][i]["at"]) for i in (0, -1))
        if last - first >= timedelta(minutes=COMPLIANT_PATROL_MINUTES):
            patrols[body["worker_id"]] = patrols.get(body["worker_id"], 0) + 1
    return sum(1 for count in patrols.values() if count >= 2)


def _automatic_steps(chain: list[str], held: bool) -> set[int]:
    """The first accept (unless the case is held for verification on site) and dispatch: automation takes them."""
    automatic = ("dispatched",) if held else ("accepted", "dispatched")
    return {chain.index(status) for status in automatic if status in chain}


def lifecycle_updates(
    rng: random.Random,
    valid: list[tuple[Row, ReportedCategory]],
    lifecycle: Lifecycle = ONE_DAY,
    held: frozenset[str] = frozenset(),
) -> list[Row]:
    """Lifecycle updates for ``lifecycle.share`` of the valid events, in the order they are posted.

    ``valid`` are report-like rows (report_id, reported_at, lat, lon, reporter_id) with their
    category; a department feed's incidents pass as such rows too, the worker who checks on site
    as reporter. The cases of the reports in ``held`` wait for that worker to accept them (a
    hotline complaint, verified on site); the others are accepted by automation.

    The command centre's automation accepts and dispatches a fresh report, so those first
    steps are never posted; the command centre closes and re-dispatches; the department desk works the
    case and attaches a photo when handled (an enforcement case: its squad's desk, naming the officer it
    assigned as the actor, see :func:`simulation.senders.case_workers`); the reporting worker verifies on site with
    a photo. A few cases are returned by the desk and dispatched again, and a few fail the
    on-site check and are reworked.
    """
    chosen = sorted(rng.sample(range(len(valid)), round(len(valid) * lifecycle.share)))
    returned = set(rng.sample(chosen, max(1, round(len(chosen) * 0.08)) if len(chosen) >= 5 else 0))
    reworked = set(rng.sample(chosen, max(1, round(len(chosen) * 0.06)) if len(chosen) >= 5 else 0))
    posts: list[tuple[datetime, int, int, Row]] = []
    for index in chosen:
        report, spec = valid[index]
        chain = _chain(rng, index in returned, lifecycle.ends)
        if index in reworked:
            chain = _with_rework(chain)
        gaps = [rng.randint(*lifecycle.gaps[status]) for status in chain]
        reported_at = datetime.fromisoformat(report["reported_at"])
        end = _at(reported_at.date(), 23, 59, 59) if lifecycle.within_day else None
        timeline = _steps(reported_at, gaps, end)
        is_held = report["report_id"] in held
        automatic = _automatic_steps(chain, is_held)
        statuses = [status for step, status in enumerate(chain) if step not in automatic]
        moments = [moment for step, moment in enumerate(timeline) if step not in automatic]
        desk, handler = case_workers(spec.department, report["lat"], report["lon"], index)
        previous = None
        for step, (status, moment) in enumerate(zip(statuses, moments, strict=True), start=1):
            rework = status == "returned" and previous == "handled"
            previous = status
            update: Row = {
                "update_id": f"{report['report_id']}-U{step:02d}",
                "event_id": report["report_id"],
                "status": status,
                "at": _iso(moment),
                "actor": {
                    "accepted": report["reporter_id"] if is_held else _COMMAND_DESK,
                    "in_handling": handler,
                    "handled": handler,
                    "returned": desk,
                    "verified": report["reporter_id"],
                }.get(status, _COMMAND_DESK),
            }
            if rework:
                update["actor"] = report["reporter_id"]
                update["note"] = "现场核查未处置到位，返工"
            elif status == "returned":
                update["note"] = rng.choice(_RETURN_NOTES)
            elif status == "handled":
                update["note"] = _HANDLED_NOTES.get(spec.department, _HANDLED_NOTE)
                update["photo_ref"] = _photo(rng)
            elif status == "verified":
                update["note"] = "现场核查已处置到位"
                update["photo_ref"] = _photo(rng)
            posts.append((moment, index, step, update))
    posts.sort(key=lambda post: post[:3])
    return [update for _, _, _, update in posts]


def _malformed(rng: random.Random) -> list[bytes]:
    """Bodies a buggy phone app or a cut connection produce: the gateway must answer 400."""
    bodies = [
        b'{"report_id": "R-broken", "category": ',
        b"[1, 2, 3]",
        b'{"report_id": "R-trailing-comma", "category": "0102",}',
    ]
    return bodies[: rng.randint(2, 3)]


# --- approvals -----------------------------------------------------------------------------


def _applications(
    rng: random.Random, count: int, people: list[dict[str, str]], organisations: list[dict[str, str]], day: date
) -> list[Row]:
    """The approval table: one row per change of ``count`` applications, plus 1-2 mistyped IDs.

    Most applicants are in the registers (so the warehouse can link them); some are not,
    as people from outside the town also apply. The mistyped rows are single-row
    applications whose applicant ID fails its check character.
    """
    residents = valid_resident_ids(people)
    enterprises: list[str] = []
    for row in organisations:
        try:
            enterprises.append(normalise_uscc(row["统一社会信用代码"]))
        except InvalidCode:
            continue
    enterprises = list(dict.fromkeys(enterprises))
    taken = dict.fromkeys(residents)
    person_items = [item for item in APPROVAL_ITEMS if item[2] in ("person", "either")]
    invalid = rng.randint(1, 2)
    close = _at(day, 18)
    rows: list[tuple[datetime, int, Row]] = []
    for number in range(1, count + invalid + 1):
        is_invalid = number > count
        item_code, item_name, applicant = rng.choice(person_items if is_invalid else APPROVAL_ITEMS)
        as_person = is_invalid or applicant == "person" or (applicant == "either" and rng.random() < 0.5)
        id_number: str | None = None
        uscc: str | None = None
        if as_person:
            if is_invalid or rng.random() >= 0.8:
                male = rng.random() < 0.5
                born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
                id_number = resident_id(rng, born, male, force_x=False, taken=taken)
            else:
                id_number = rng.choice(residents)
            if is_invalid:
                id_number = wrong_check(id_number, CHECK_CHARACTERS, rng)
        elif rng.random() < 0.8:
            uscc = rng.choice(enterprises)
        else:
            first17 = f"91320411{organisation_code(rng)}"
            uscc = first17 + uscc_check_char(first17)
        path = ("submitted",) if is_invalid else weighted(rng, _APPLICATION_PATHS)
        submitted = _at(day, 8, 30) + timedelta(seconds=rng.randrange(8 * 3600))
        gaps = [rng.randint(300, 3600) if status == "accepted" else rng.randint(1800, 10800) for status in path[1:]]
        changes = [submitted, *_steps(submitted, gaps, close)]
        for step, (status, moment) in enumerate(zip(path, changes, strict=True)):
            row: Row = {
                "application_id": f"A{day:%Y%m%d}{number:05d}",
                "item_code": item_code,
                "item_name": item_name,
                "applicant_id_number": id_number,
                "applicant_uscc": uscc,
                "status": status,
                "submitted_at": _iso(submitted),
                "updated_at": _iso(moment),
            }
            rows.append((moment, number * 10 + step, row))
    rows.sort(key=lambda entry: entry[:2])
    return [row for _, _, row in rows]


@functools.cache
def _catalogue() -> ApprovalCatalogue:
    """The packaged approval catalogue, read once: a year of days seats its applications at the same windows."""
    return load_catalogue(packaged.APPROVAL_ITEMS)


def _seated(rng: random.Random, applications: list[Row]) -> list[Row]:
    """The approval rows with the channel each application came by and its window, alike on all its changes.

    Fully online items (不见面审批) always come online; others mostly to a window, most often one
    staffed by the item's department (any window takes any item, but applicants queue under
    their department's sign), otherwise any of the centre's windows.
    """
    catalogue = _catalogue()
    windows = list(catalogue.windows.values())
    seats: dict[str, Row] = {}
    for row in applications:
        if row["application_id"] in seats:
            continue
        item = catalogue.items[row["item_code"]]
        if item.fully_online or rng.random() < 0.1:
            seats[row["application_id"]] = {"window_no": None, "channel": "online"}
            continue
        staffed = [window for window in windows if window.department == item.department]
        pool = staffed if staffed and rng.random() < 0.7 else windows
        seats[row["application_id"]] = {"window_no": rng.choice(pool).window_no, "channel": "window"}
    return [{**row, **seats[row["application_id"]]} for row in applications]


# --- expected outcome ----------------------------------------------------------------------


def _valid_code(value: str | None, normalise: Any) -> str | None:
    """The normalised code, or None when the value is absent or fails its check."""
    if not value:
        return None
    try:
        return str(normalise(value))
    except InvalidCode:
        return None


def _tally(
    rules: RoutingRules,
    reports: list[Row],
    malformed: list[bytes],
    updates: list[Row],
    applications: list[Row],
    people: list[dict[str, str]],
    organisations: list[dict[str, str]],
) -> dict[str, int]:
    """Count what a correct pipeline must end with, from the generated rows themselves."""
    distinct = {body["report_id"]: body for body in reports}
    unknown = sum(1 for body in distinct.values() if rules.resolve(body["category"]) is None)

    valid_application_ids: dict[str, None] = {}
    invalid_application_rows = 0
    for row in applications:
        person = _valid_code(row["applicant_id_number"], normalise_resident_id)
        organisation = _valid_code(row["applicant_uscc"], normalise_uscc)
        if person or organisation:
            valid_application_ids[row["application_id"]] = None
        else:
            invalid_application_rows += 1

    person_keys = [_valid_code(row["公民身份号码"], normalise_resident_id) if row["姓名"] else None for row in people]
    valid_people = [key for key in person_keys if key]
    organisation_keys = [
        _valid_code(row["统一社会信用代码"], normalise_uscc) if row["单位名称"] else None for row in organisations
    ]
    valid_organisations = [key for key in organisation_keys if key]

    return {
        "reports_sent": len(reports),
        "reports_malformed": len(malformed),
        "events": len(distinct) - unknown,
        "report_retries": len(reports) - len(distinct),
        "reports_unknown_category": unknown,
        "updates": len(updates),
        "application_rows": len(applications),
        "applications": len(valid_application_ids),
        "applications_at_windows": len(
            valid_application_ids.keys() & {row["application_id"] for row in applications if row["window_no"]}
        ),
        "application_rows_invalid": invalid_application_rows,
        "people_rows": len(people),
        "people": len(set(valid_people)),
        "people_duplicates": len(valid_people) - len(set(valid_people)),
        "people_invalid": len(people) - len(valid_people),
        "organisation_rows": len(organisations),
        "organisations": len(set(valid_organisations)),
        "organisation_duplicates": len(valid_organisations) - len(set(valid_organisations)),
        "organisations_invalid": len(organisations) - len(valid_organisations),
    }
