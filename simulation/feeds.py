"""The department platforms' incident feeds of the simulated day, for the command centre.

The article's command centre "integrates the environment and land-resources platforms and
connects seamlessly to the police information centre"; public complaints come from the 12345
hotline. Each platform exports its incidents as a table with its own Chinese headers, which
the hub reads with that source's mapping (``schemas/data/export_mappings.yaml``) through the
ordinary export doors, so here each feed is a CSV file as its platform would write it:

- ``environment-monitoring`` (生态环境监测平台): a station's reading over its limit, in WGS84;
- ``police`` (公安警情): incidents handed to the grid, located on the police map (GCJ-02);
- ``land-resources`` (自然资源和规划): land-use violations found by the platform's checks;
- ``hotline-12345`` (12345 政务服务热线): public complaints, located on a Baidu map (BD-09),
  whose cases wait for a grid worker to verify them on site.

Every run carries faults a correct hub must refuse with a reason (an unknown category, a point
outside the town, a complaint without its call time) and one complaint about a problem a grid
worker has already reported and nobody has touched yet, which must join that open case. Feed
incidents are kept well apart from the day's reports and from each other (as
:func:`simulation.day._looks_like_a_second_report` keeps the day's), so that one complaint is
the only merge the feeds cause and the expected counts are exact.

Everything derives from the day and its own seeded random stream: the day itself is unchanged.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from connectors.exports import ExportEntity
from schemas import TOWN_TIMEZONE
from schemas.grid import CoordinateSystem, from_wgs84
from simulation.day import SECOND_REPORT_SUFFIX, SEPARATION, SEPARATION_M, TownDay
from simulation.town import LANDMARKS, REPORT_BOX, VILLAGES
from streams.nearby import distance_m
from streams.routing import RoutingRules

ENVIRONMENT, POLICE, LAND, HOTLINE = "environment-monitoring", "police", "land-resources", "hotline-12345"
FEED_SOURCES: tuple[str, ...] = (ENVIRONMENT, HOTLINE, LAND, POLICE)
"""The four department feeds, in the order the summary lists them."""

STATIONS: tuple[tuple[str, str, str, str, float, str], ...] = (
    ("KQ01", "孟河镇空气自动监测站", "PM2.5", "μg/m³", 75, "孟城村"),
    ("SZ02", "通江河孟河断面水质自动站", "氨氮", "mg/L", 1.5, "通江村"),
    ("SZ03", "小河港水质自动站", "化学需氧量", "mg/L", 20, "小河村"),
    ("KQ04", "孟河工业园区空气监测站", "二氧化硫", "μg/m³", 150, "富民村"),
    ("SZ05", "万绥河水质自动站", "总磷", "mg/L", 0.3, "万绥村"),
)
"""Monitoring stations: number, name, pollutant, unit, limit, the village it stands in (illustrative)."""
POLICE_INCIDENTS: tuple[tuple[str, str], ...] = (
    ("矛盾纠纷排查", "{place}两户村民因宅基地界址发生争执，民警已到场调解，需网格员跟进化解"),
    ("", "{place}有群众报警称独居老人多日未出门，需网格员上门查看"),
    ("安全生产隐患", "{place}小作坊违规存放液化气钢瓶，需网格员协助排查"),
    ("机动车乱停放", "{place}多辆货车长期停放堵塞消防通道"),
)
"""Police category (a category name, or empty for the feed's default) and the incident's wording."""
LAND_VIOLATIONS = ("未经批准占用耕地建房", "擅自硬化耕地堆放建材", "未批先建厂房")
COMPLAINTS: tuple[tuple[str, str], ...] = (
    ("暴露垃圾", "市民来电反映：{place}垃圾堆放多日无人清运，气味很大"),
    ("施工扰民", "市民来电反映：{place}工地夜间施工噪音扰民"),
    ("油烟污染", "市民来电反映：{place}饭店油烟直排，影响居民生活"),
    ("文明城市创建", "市民来电反映：{place}公益广告牌破损，影响文明城市形象"),
    ("矛盾纠纷排查", "市民来电反映：{place}邻里因排水问题多次争吵，请求调解"),
)
"""Hotline category (as the hotline names it) and the complaint's wording."""
OUTSIDE_TOWN = (31.7812, 119.9736)
"""Changzhou city centre, where a misconfigured station reports from: outside Menghe's grid."""
FEED_HEADERS: dict[str, tuple[str, ...]] = {
    ENVIRONMENT: (
        "报警编号",
        "站点编号",
        "站点名称",
        "监测因子",
        "监测值",
        "单位",
        "标准限值",
        "报警时间",
        "经度",
        "纬度",
    ),
    POLICE: ("警情编号", "警情类别", "简要警情", "接警时间", "发生地点", "经度", "纬度"),
    LAND: (
        "图斑编号",
        "违法类型",
        "坐落位置",
        "违法情形",
        "占地面积",
        "发现时间",
        "宗地代码",
        "中心点经度",
        "中心点纬度",
    ),
    HOTLINE: ("工单编号", "诉求类别", "诉求内容", "来电时间", "地址", "经度", "纬度"),
}
"""Each platform's export headers, as its mapping in export_mappings.yaml expects them."""
COORDINATES: dict[str, CoordinateSystem] = {ENVIRONMENT: "wgs84", POLICE: "gcj02", LAND: "wgs84", HOTLINE: "bd09"}
"""The datum each platform writes its points in (the mapping's default coord_system)."""

Row = dict[str, str]


@dataclass(frozen=True)
class Incident:
    """Where and when a feed incident happened, in the hub's terms: for the lifecycle a year gives it."""

    category: str
    """The routing table's code."""
    lat: float
    lon: float
    """WGS84, before the platform writes it in its own datum."""
    at: datetime


@dataclass
class TownFeeds:
    """The four platforms' exports of the day and what the warehouse must show once they are in."""

    rows: dict[str, list[Row]] = field(default_factory=lambda: {source: [] for source in FEED_SOURCES})
    """Each feed's rows in export order, bad rows included."""
    expected: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per source: ``events`` that land, how many are ``merged`` into an open case, how many cases
    stay ``awaiting_verification`` (hotline complaints nobody has verified yet)."""
    rejected: dict[str, str] = field(default_factory=dict)
    """Incident id of each bad row → the reason code the hub must give."""
    merges: dict[str, str] = field(default_factory=dict)
    """Incident id of a feed row → the report id of the open grid worker's case it must join."""
    incidents: dict[str, Incident] = field(default_factory=dict)
    """Incident id of each good row that opens a case → its category, point and time."""

    @property
    def events(self) -> int:
        """Feed incidents the warehouse must hold as events."""
        return sum(counts["events"] for counts in self.expected.values())

    @property
    def cases(self) -> int:
        """Cases the feeds open: their events, less those that join an open case."""
        return self.events - sum(counts["merged"] for counts in self.expected.values())

    def problems(self, rows: list[list[Any]]) -> list[str]:
        """What the warehouse's :data:`FEEDS_SQL` rows say that differs from :attr:`expected`."""
        found = {
            str(source): {"events": events, "merged": merged, "awaiting_verification": held}
            for source, events, merged, held, *_ in rows
        }
        return [
            f"feed {source}: warehouse has {found.get(source)}, the feed must give {wanted}"
            for source, wanted in self.expected.items()
            if found.get(source) != wanted
        ]


FEEDS_SQL = f"""
    SELECT e.source, count(*) AS events, count(*) FILTER (e.case_id <> e.event_id) AS merged,
           count(*) FILTER (c.status = 'reported') AS awaiting_verification,
           string_agg(DISTINCT e.department, ', ' ORDER BY e.department) AS departments
    FROM events e JOIN cases c ON c.case_id = e.case_id
    WHERE e.source IN ({", ".join(f"'{source}'" for source in FEED_SOURCES)})
    GROUP BY e.source ORDER BY e.source"""
"""Events of each department feed in the warehouse, as :meth:`TownFeeds.problems` reads them."""


def _moment(rng: random.Random, day: date) -> datetime:
    """A time of the working day (08:00-17:30), when the platforms raise most of their incidents."""
    return datetime.combine(day, time(8), tzinfo=TOWN_TIMEZONE) + timedelta(seconds=rng.randrange(570 * 60))


def _written(moment: datetime) -> str:
    """Town time as the platforms write it: ``2026-11-25 09:12:00``, no offset."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class _Placer:
    """Points for feed incidents, each well apart from every earlier incident of its category."""

    def __init__(self, day: TownDay, rules: RoutingRules) -> None:
        self.taken: list[tuple[str, float, float, datetime]] = []
        for body in day.reports:
            category = rules.resolve(str(body["category"]))
            if category is not None:
                at = datetime.fromisoformat(body["reported_at"])
                self.taken.append((category.code, body["lat"], body["lon"], at))
        self.rules = rules
        self.placed: dict[str, Incident] = {}

    def point(
        self, rng: random.Random, incident_id: str, village: str, category: str, at: datetime
    ) -> tuple[float, float]:
        """A WGS84 point near ``village`` at least 100 m (or 3 h) from every incident of ``category`` so far.

        The incident is kept in :attr:`placed` under ``incident_id``.
        """
        code = self.code(category)
        centre_lat, centre_lon = VILLAGES[village]
        while True:
            lat = round(min(max(centre_lat + rng.uniform(-0.006, 0.006), REPORT_BOX.lat_min), REPORT_BOX.lat_max), 6)
            lon = round(min(max(centre_lon + rng.uniform(-0.006, 0.006), REPORT_BOX.lon_min), REPORT_BOX.lon_max), 6)
            if not any(
                other == code
                and abs(when - at) <= SEPARATION
                and distance_m(lat, lon, other_lat, other_lon) < SEPARATION_M
                for other, other_lat, other_lon, when in self.taken
            ):
                self.taken.append((code, lat, lon, at))
                self.placed[incident_id] = Incident(code, lat, lon, at)
                return lat, lon

    def code(self, category: str) -> str:
        """The routing table's code of a category named by code or name (the simulation names only known ones)."""
        resolved = self.rules.resolve(category)
        if resolved is None:
            raise ValueError(f"the routing table lacks the feed category {category!r}")
        return resolved.code


def _located(source: str, lat: float, lon: float) -> tuple[str, str]:
    """(经度, 纬度) as text in the datum the source's platform writes."""
    lat, lon = from_wgs84(lat, lon, COORDINATES[source])
    return f"{lon:.6f}", f"{lat:.6f}"


def _environment(rng: random.Random, placer: _Placer, count: int, day: date) -> list[Row]:
    rows = []
    for number, (station, name, pollutant, unit, limit, village) in enumerate(rng.sample(STATIONS, count), start=1):
        at = _moment(rng, day)
        alarm = f"HJBJ{day:%Y%m%d}{number:03d}"
        lon, lat = _located(ENVIRONMENT, *placer.point(rng, alarm, village, "0603", at))
        value = round(limit * rng.uniform(1.2, 2.5), 2)
        rows.append(
            dict(
                zip(
                    FEED_HEADERS[ENVIRONMENT],
                    (
                        alarm,
                        station,
                        name,
                        pollutant,
                        f"{value:g}",
                        unit,
                        f"{limit:g}",
                        _written(at),
                        lon,
                        lat,
                    ),
                    strict=True,
                )
            )
        )
    return rows


def _police(rng: random.Random, placer: _Placer, count: int, day: date) -> list[Row]:
    rows = []
    for number in range(1, count + 1):
        category, wording = POLICE_INCIDENTS[(number - 1) % len(POLICE_INCIDENTS)]
        village = rng.choice(list(VILLAGES))
        place = village + rng.choice(LANDMARKS)
        at = _moment(rng, day)
        incident = f"J320411{day:%Y%m%d}{number:05d}"
        lon, lat = _located(POLICE, *placer.point(rng, incident, village, category or "0704", at))
        values = (
            incident,
            category,
            wording.format(place=place),
            _written(at),
            place,
            lon,
            lat,
        )
        rows.append(dict(zip(FEED_HEADERS[POLICE], values, strict=True)))
    return rows


def _land(rng: random.Random, placer: _Placer, count: int, day: date, first: int) -> list[Row]:
    """Land-use violations; the platform numbers its 图斑 through the year, so a year's days pass their ``first``."""
    rows = []
    for number in range(first, first + count):
        village = rng.choice(list(VILLAGES))
        at = _moment(rng, day)
        patch = f"TB{day:%Y}320411{number:04d}"
        lat, lon = placer.point(rng, patch, village, "0601", at)
        values = (
            patch,
            "违法占用耕地" if number % 2 else "",
            f"孟河镇{village}第{rng.randint(1, 12)}村民小组",
            rng.choice(LAND_VIOLATIONS),
            str(rng.randrange(60, 900)),
            _written(at),
            "",
            *_located(LAND, lat, lon),
        )
        rows.append(dict(zip(FEED_HEADERS[LAND], values, strict=True)))
    return rows


def _hotline(rng: random.Random, placer: _Placer, count: int, day: date) -> list[Row]:
    rows = []
    for number in range(1, count + 1):
        category, wording = COMPLAINTS[(number - 1) % len(COMPLAINTS)]
        village = rng.choice(list(VILLAGES))
        place = village + rng.choice(LANDMARKS)
        at = _moment(rng, day)
        order = f"GD{day:%Y%m%d}{number:04d}"
        lon, lat = _located(HOTLINE, *placer.point(rng, order, village, category, at))
        values = (order, category, wording.format(place=place), _written(at), place, lon, lat)
        rows.append(dict(zip(FEED_HEADERS[HOTLINE], values, strict=True)))
    return rows


def _second_complaint(rng: random.Random, day: TownDay, rules: RoutingRules, number: int) -> tuple[Row, str] | None:
    """A hotline complaint about a problem a grid worker reported and nobody touched today, with that report's id.

    The complaint comes 10-40 minutes after the report, from about 10 m away: the hub must file it
    in the worker's open case. None when the day has no such case (a very small day).
    """
    touched = {update["event_id"] for update in day.updates}
    touched |= {report_id.removesuffix(SECOND_REPORT_SUFFIX) for report_id in day.corroborating}
    distinct = {body["report_id"]: body for body in day.reports if body["report_id"] not in touched}
    candidates = [
        (body, category)
        for body in distinct.values()
        if not body["report_id"].endswith(SECOND_REPORT_SUFFIX)
        and (category := rules.resolve(str(body["category"]))) is not None
    ]
    if not candidates:
        return None
    report, category = rng.choice(candidates)
    later = datetime.fromisoformat(report["reported_at"]) + timedelta(minutes=rng.randint(10, 40))
    lat = report["lat"] + rng.uniform(-0.0001, 0.0001)
    lon = report["lon"] + rng.uniform(-0.0001, 0.0001)
    values = (
        f"GD{day.day:%Y%m%d}{number:04d}",
        category.name,
        f"市民来电反映：{report['description']}",
        _written(later),
        "",
        *_located(HOTLINE, lat, lon),
    )
    return dict(zip(FEED_HEADERS[HOTLINE], values, strict=True)), report["report_id"]


def feed_sizes(events: int) -> dict[str, int]:
    """Incidents each platform raises on the demo day of ``events`` reports: a few at least, so every feed shows."""
    return {
        ENVIRONMENT: min(len(STATIONS) - 1, max(2, events // 60)),
        POLICE: max(2, events // 50),
        LAND: max(2, events // 100),
        HOTLINE: max(3, events // 40),
    }


def town_feeds(
    day: TownDay,
    seed: int,
    rules: RoutingRules,
    sizes: dict[str, int] | None = None,
    faults: bool = True,
    land_from: int = 1,
) -> TownFeeds:
    """Derive the four platforms' incident exports of the day, with their faults and one second complaint.

    ``sizes`` says how many incidents each platform raises (default :func:`feed_sizes` of the day's
    reports); a day of a simulated year passes its own, leaves the ``faults`` to one day of the
    year, and numbers the land platform's patches on from ``land_from``. The environment feed
    raises at most one alarm per station a day, and a bad row is copied from a good one, so with
    ``faults`` each of those feeds needs an incident.
    """
    rng = random.Random(seed + 3)  # noqa: S311 -- simulation, seeded for replay; its own stream
    events = len({body["report_id"] for body in day.reports})
    sizes = sizes or feed_sizes(events)
    placer = _Placer(day, rules)
    feeds = TownFeeds()
    feeds.rows[ENVIRONMENT] = _environment(rng, placer, sizes[ENVIRONMENT], day.day)
    feeds.rows[POLICE] = _police(rng, placer, sizes[POLICE], day.day)
    feeds.rows[LAND] = _land(rng, placer, sizes[LAND], day.day, land_from)
    feeds.rows[HOTLINE] = _hotline(rng, placer, sizes[HOTLINE], day.day)
    feeds.incidents = dict(placer.placed)
    held = len(feeds.rows[HOTLINE])
    second = _second_complaint(rng, day, rules, held + 1)
    if second is not None:
        feeds.rows[HOTLINE].append(second[0])
        feeds.merges[second[0]["工单编号"]] = second[1]
    feeds.expected = {
        source: {
            "events": len(rows),
            "merged": len(feeds.merges) if source == HOTLINE else 0,
            "awaiting_verification": held if source in rules.verify_on_site else 0,
        }
        for source, rows in feeds.rows.items()
    }
    if faults:
        _add_faults(rng, feeds, day.day)
    return feeds


def _add_faults(rng: random.Random, feeds: TownFeeds, day: date) -> None:
    """One bad row in three feeds, each refused for a reason of its own; the counts above exclude them."""
    station, name, pollutant, unit, limit, _ = STATIONS[-1]
    outside = {
        **feeds.rows[ENVIRONMENT][0],
        "报警编号": f"HJBJ{day:%Y%m%d}999",
        "站点编号": station,
        "站点名称": name,
        "监测因子": pollutant,
        "单位": unit,
        "标准限值": f"{limit:g}",
        "纬度": f"{OUTSIDE_TOWN[0]:.6f}",
        "经度": f"{OUTSIDE_TOWN[1]:.6f}",
    }
    unknown = {**feeds.rows[POLICE][0], "警情编号": f"J320411{day:%Y%m%d}99999", "警情类别": "9998"}
    no_time = {**feeds.rows[HOTLINE][0], "工单编号": f"GD{day:%Y%m%d}9999", "来电时间": ""}
    for source, row, key, code in (
        (ENVIRONMENT, outside, "报警编号", "outside_town"),
        (POLICE, unknown, "警情编号", "unknown_category"),
        (HOTLINE, no_time, "工单编号", "missing_reported_at"),
    ):
        rows = feeds.rows[source]
        rows.insert(rng.randrange(len(rows) + 1), row)
        feeds.rejected[row[key]] = code


def write_feeds(feeds: TownFeeds, folder: Path) -> list[tuple[Path, str, ExportEntity]]:
    """Write each feed with rows as the UTF-8 CSV its platform exports; return (file, source, entity) to ingest them."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[Path, str, ExportEntity]] = []
    for source in (source for source in FEED_SOURCES if feeds.rows[source]):
        path = folder / f"{source}-incidents.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(FEED_HEADERS[source]))
            writer.writeheader()
            writer.writerows(feeds.rows[source])
        written.append((path, source, "event"))
    return written


def combine_feeds(feeds: list[TownFeeds]) -> TownFeeds:
    """Several days' feeds as one: every row, and the sums of what each day's rows must give."""
    whole = TownFeeds()
    for one in feeds:
        for source, rows in one.rows.items():
            whole.rows[source].extend(rows)
        for source, counts in one.expected.items():
            total = whole.expected.setdefault(source, dict.fromkeys(counts, 0))
            for key, count in counts.items():
                total[key] += count
        whole.rejected.update(one.rejected)
        whole.merges.update(one.merges)
        whole.incidents.update(one.incidents)
    return whole
