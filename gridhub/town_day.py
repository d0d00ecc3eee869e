"""One simulated working day of Menghe town, for ``gridhub demo`` and the integration tests.

No record-level open data of Chinese grid cases exists (reference/domain-standards.md §8),
so the pipeline is exercised with a synthetic day driven by the category table, the
146 grid workers and their two daily patrols, the case flow of §5 and the identity
standards of §6. Every feed carries the faults the real feeds carry (phone retries,
unknown categories, broken JSON, duplicated and mistyped register rows) so that
dedup, validation and the reject path are tested on every run.

The generator is a pure function of ``(events, seed)``: one seeded :class:`random.Random`
is consumed in a fixed order and no set or hash order ever reaches the output, so a test
can assert exact counts and a failing demo can be replayed byte for byte. The only I/O
is :func:`write_exports`, which lays the two register exports out as files.

The counts in :attr:`TownDay.expected` are recomputed from the generated rows (with the
national check-character rules), not copied from the plan, so they stay right whatever
the mix of faults turns out to be.
"""

from __future__ import annotations

import copy
import csv
import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from schemas.identity import InvalidCode, normalise_resident_id, normalise_uscc, resident_id_check_char, uscc_check_char
from streams.lifecycle import distance_m

Row = dict[str, Any]

DAY = date(2026, 11, 25)
"""The simulated day; report and application ids carry it."""
CST = timezone(timedelta(hours=8))
"""China Standard Time: every feed in the town reports with a ``+08:00`` offset."""

GRID_WORKERS = 146
"""128 basic-grid workers plus 18 for dedicated grids (schools, hospitals, parks)."""
REPORT_BOX = (31.95, 32.03, 119.82, 119.92)
"""(lat_min, lat_max, lon_min, lon_max): the WGS84 box phones report from around Menghe."""

PEOPLE_HEADERS: dict[str, str] = {
    "姓名": "name",
    "公民身份号码": "id_number",
    "性别": "gender",
    "出生日期": "birth_date",
    "联系电话": "phone",
    "住址": "address",
}
"""Household-register export header → :class:`schemas.records.Person` field."""
ORGANISATION_HEADERS: dict[str, str] = {
    "单位名称": "name",
    "统一社会信用代码": "uscc",
    "法定代表人": "legal_representative",
    "注册地址": "registered_address",
    "联系电话": "phone",
}
"""Enterprise-register export header → :class:`schemas.records.Organisation` field."""


@dataclass(frozen=True)
class _CategorySpec:
    """A category of ``schemas/data/categories.yaml`` plus how often and how it is reported.

    Kept as code rather than read from the YAML so that the generator does no I/O; a unit
    test checks every entry against the YAML so the two cannot drift apart unnoticed.
    """

    code: str
    name: str
    department: str
    weight: int
    descriptions: tuple[str, ...]


# Weights reflect a rural town in late November: rubbish, parking, shop-front trading and
# the burning of straw and leaves dominate; pipe bursts and mass incidents are rare.
CATEGORIES: tuple[_CategorySpec, ...] = (
    _CategorySpec(
        "0101",
        "私搭乱建",
        "enforcement",
        5,
        ("{place}有人未经审批搭建彩钢棚", "{place}民房旁新建违章简易房", "{place}店铺门前私自加盖雨棚"),
    ),
    _CategorySpec(
        "0102",
        "暴露垃圾",
        "sanitation",
        16,
        ("{place}路边堆放生活垃圾未清运", "{place}垃圾桶满溢，周边散落垃圾", "{place}绿化带内有暴露垃圾"),
    ),
    _CategorySpec(
        "0103",
        "积存垃圾渣土",
        "sanitation",
        6,
        ("{place}空地堆积建筑渣土", "{place}河坡积存垃圾多日未清理"),
    ),
    _CategorySpec("0104", "道路不洁", "sanitation", 8, ("{place}路面泥土洒落严重", "{place}道路油污未清扫")),
    _CategorySpec("0105", "水域不洁", "water", 4, ("{place}河面漂浮垃圾和水草", "{place}池塘水面有大量漂浮物")),
    _CategorySpec("0114", "焚烧垃圾树叶", "environment", 6, ("{place}田头有人焚烧秸秆", "{place}村民露天焚烧垃圾树叶")),
    _CategorySpec("0115", "油烟污染", "environment", 2, ("{place}烧烤摊油烟直排", "{place}饭店油烟净化器未开启")),
    _CategorySpec("0201", "非法小广告", "enforcement", 7, ("{place}电线杆上张贴小广告", "{place}墙面喷涂办证小广告")),
    _CategorySpec(
        "0203", "违规户外广告", "enforcement", 3, ("{place}店招破损存在坠落隐患", "{place}擅自设置落地广告牌")
    ),
    _CategorySpec(
        "0301", "施工扰民", "construction", 3, ("{place}工地施工噪音扰民", "{place}装修施工噪音大，居民反映")
    ),
    _CategorySpec(
        "0303", "工地扬尘", "environment", 4, ("{place}工地裸土未覆盖，扬尘明显", "{place}渣土车未密闭运输，沿路扬尘")
    ),
    _CategorySpec("0306", "无证掘路", "land", 2, ("{place}有人擅自开挖路面铺设管道",)),
    _CategorySpec("0401", "路面塌陷", "emergency", 1, ("{place}路面出现塌陷坑，存在安全隐患",)),
    _CategorySpec("0402", "自来水管破裂", "water", 2, ("{place}自来水管破裂，路面积水",)),
    _CategorySpec("0403", "燃气管道破裂", "emergency", 1, ("{place}闻到燃气味，疑似管道泄漏",)),
    _CategorySpec("0404", "下水道堵塞或破损", "water", 4, ("{place}下水道堵塞，污水外溢", "{place}窨井盖破损")),
    _CategorySpec("0409", "群体性事件", "police", 1, ("{place}多名村民聚集，情绪激动",)),
    _CategorySpec("0501", "无照经营游商", "market", 5, ("{place}流动摊贩占道售卖水果", "{place}无照经营早点摊")),
    _CategorySpec(
        "0504", "店外经营", "enforcement", 7, ("{place}汽配店跨门经营，配件堆放人行道", "{place}商户占道摆放商品")
    ),
    _CategorySpec("0509", "机动车乱停放", "police", 8, ("{place}车辆乱停占用消防通道", "{place}货车违停堵塞路口")),
    _CategorySpec("0601", "违法占用耕地", "land", 2, ("{place}有人在耕地上堆放建材、硬化地面",)),
    _CategorySpec("0602", "河道违法排污", "environment", 2, ("{place}排口向河道排放不明污水",)),
)
_KNOWN_CATEGORY_WORDS: dict[str, str] = {
    **{spec.code: spec.code for spec in CATEGORIES},
    **{spec.name: spec.code for spec in CATEGORIES},
}
UNKNOWN_CATEGORY_CODES: tuple[str, ...] = ("9999", "0999", "9901")
"""Codes no routing table knows: a phone with an outdated category list sends them."""

# Village name → an illustrative centre inside REPORT_BOX (not surveyed coordinates).
VILLAGES: dict[str, tuple[float, float]] = {
    "万绥村": (32.018, 119.842),
    "小河村": (32.021, 119.903),
    "孟城村": (31.994, 119.874),
    "南兴村": (31.962, 119.866),
    "东兵村": (31.985, 119.906),
    "通江村": (32.008, 119.885),
    "石桥湾村": (31.971, 119.834),
    "富民村": (31.977, 119.897),
    "新庄村": (31.999, 119.848),
}
_LANDMARKS = ("村口", "桥头", "菜场旁", "主路边", "河边", "公交站台旁", "小学门口", "厂区旁", "文化广场")

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

# Identity material. Xinbei (320411) dominates; others moved in from elsewhere in Jiangsu.
_DIVISIONS = (("320411", 80), ("320402", 5), ("320412", 5), ("320481", 4), ("321181", 6))
_SURNAMES = "王张陈周吴徐孙朱蒋钱沈许恽巢史庄汤杨刘黄顾邵"
_MALE_CHARS = "建国伟军强明华平志勇俊杰斌涛兵荣林"
_FEMALE_CHARS = "芳英红梅丽霞燕萍娟琴玉兰秀敏婷静娜"
_MOBILE_PREFIXES = ("130", "133", "135", "136", "138", "139", "150", "151", "152", "158", "177", "180", "187", "189")
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_RESIDENT_CHECKS = "0123456789X"
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_BRAND_CHARS = "恒泰鑫达华翔永盛金诚宏远万通瑞丰天马新龙"
_INDUSTRIES = ("汽车配件", "摩托车配件", "机械制造", "灯具", "塑业", "五金", "精密铸造", "电器", "物流", "建材")
_SHOPS = ("汽配经营部", "五金店", "小吃店", "便利店", "理发店", "农资店", "饭店")
_COOPERATIVES = ("葡萄种植", "水稻种植", "蔬菜种植", "水产养殖", "苗木种植")

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


def simulate_day(events: int = 200, seed: int = 20261125) -> TownDay:
    """Generate one day of Menghe town with ``events`` distinct valid incident reports.

    The same ``(events, seed)`` always yields the same day, so the demo and the tests are
    reproducible; different seeds give different days with the same shape.
    """
    if events < 1:
        raise ValueError(f"a town day needs at least one event, got {events}")
    rng = random.Random(seed)  # noqa: S311 -- simulation, not cryptography; seeded for replay
    people = _people(rng, max(50, events))
    organisations = _organisations(rng, max(20, events // 5), people)
    reports, valid_reports = _reports(rng, events)
    updates = _updates(rng, valid_reports)
    seconds = _corroborations(rng, valid_reports, {update["event_id"] for update in updates})
    reports = [*reports, *seconds]
    applications = _applications(rng, max(1, events // 2), people, organisations)
    malformed = _malformed(rng)
    expected = _tally(reports, malformed, updates, applications, people, organisations)
    tracks = _tracks(random.Random(seed + 1))  # noqa: S311 -- own stream, so the rest of the day is unchanged
    expected["patrol_points"] = sum(len(body["points"]) for body in tracks)
    expected["workers_compliant"] = _compliant_workers(tracks)
    return TownDay(
        reports=reports,
        malformed_reports=malformed,
        updates=updates,
        applications=applications,
        people=people,
        organisations=organisations,
        expected=expected,
        tracks=tracks,
        corroborating=[body["report_id"] for body in seconds],
    )


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


def _at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time of the simulated day in China Standard Time."""
    return datetime.combine(DAY, time(hour, minute, second), tzinfo=CST)


def _iso(moment: datetime) -> str:
    """ISO-8601 with seconds and the ``+08:00`` offset, as the town's systems write it."""
    return moment.isoformat(timespec="seconds")


def _steps(start: datetime, gaps: list[int], end: datetime) -> list[datetime]:
    """Times after ``start`` separated by ``gaps`` seconds, squeezed so the last is not after ``end``.

    Squeezing (rather than letting a late chain spill into tomorrow) keeps the day one
    day, and every step stays strictly later than the one before.
    """
    room = int((end - start).total_seconds())
    total = sum(gaps)
    if total > room:
        gaps = [max(1, gap * room // total) for gap in gaps]
    moments: list[datetime] = []
    moment = start
    for gap in gaps:
        moment += timedelta(seconds=gap)
        moments.append(moment)
    return moments


# --- identity material ---------------------------------------------------------------------


def _weighted(rng: random.Random, table: tuple[tuple[Any, int], ...]) -> Any:
    """Pick one value of a (value, weight) table."""
    values = [value for value, _ in table]
    weights = [weight for _, weight in table]
    return rng.choices(values, weights=weights)[0]


def _name(rng: random.Random, male: bool) -> str:
    """A Chinese name whose given name fits the gender, as a register would hold it."""
    chars = _MALE_CHARS if male else _FEMALE_CHARS
    given = "".join(rng.choice(chars) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(_SURNAMES) + given


def _mobile(rng: random.Random) -> str:
    """An 11-digit mainland mobile number."""
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _address(rng: random.Random, village: str | None = None) -> str:
    """A rural address in Menghe: village, production group and house number."""
    village = village or rng.choice(list(VILLAGES))
    return f"江苏省常州市新北区孟河镇{village}{rng.randint(1, 18)}组{rng.randint(1, 120)}号"


def _resident_id(rng: random.Random, born: date, male: bool, force_x: bool, taken: dict[str, None]) -> str:
    """A valid GB 11643 ID not yet used: division, birth date, sequence (odd = male), check char.

    ``force_x`` draws sequences until the check character is X, so the lower-case ``x``
    fault can be planted on an ID where it is legitimate.
    """
    division = _weighted(rng, _DIVISIONS)
    while True:
        sequence = rng.randrange(1000)
        if sequence % 2 != int(male):
            sequence ^= 1
        first17 = f"{division}{born:%Y%m%d}{sequence:03d}"
        code = first17 + resident_id_check_char(first17)
        if code not in taken and (not force_x or code.endswith("X")):
            taken[code] = None
            return code


def _wrong_check(code: str, alphabet: str, rng: random.Random) -> str:
    """The same code with a different, therefore wrong, check character: a typo at the desk."""
    return code[:17] + rng.choice([char for char in alphabet if char != code[17]])


def _org_code(rng: random.Random) -> str:
    """A 9-character GB 11714 organisation code with its own check character.

    Older enterprises carry the 8-digit pre-2015 codes; newer ones the ``MA`` series.
    The check lets the warehouse link pre-2015 records that only know this code.
    """
    if rng.random() < 0.6:
        body = "MA" + "".join(rng.choice(_USCC_ALPHABET) for _ in range(6))
    else:
        body = f"{rng.randrange(10**8):08d}"
    total = sum(
        (int(char) if char.isdigit() else ord(char) - 55) * weight
        for char, weight in zip(body, _ORG_CODE_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


# --- registers -----------------------------------------------------------------------------


def _people(rng: random.Random, rows: int) -> list[dict[str, str]]:
    """The household register: distinct residents plus duplicated, lower-case-x and invalid rows."""
    duplicates = max(1, round(rows * 0.05))
    lower_x = max(1, round(rows * 0.02))
    wrong_check = max(1, round(rows * 0.02))
    valid = rows - duplicates - wrong_check - 1  # the 1 is the row without a name
    taken: dict[str, None] = {}
    register: list[dict[str, str]] = []
    for index in range(valid + wrong_check + 1):
        male = rng.random() < 0.5
        born = date(1935, 1, 1) + timedelta(days=rng.randrange((date(2015, 12, 31) - date(1935, 1, 1)).days))
        id_number = _resident_id(rng, born, male, force_x=index < lower_x, taken=taken)
        if index < lower_x:
            id_number = id_number[:17] + "x"
        elif valid <= index < valid + wrong_check:
            id_number = _wrong_check(id_number, _RESIDENT_CHECKS, rng)
        register.append(
            {
                "姓名": "" if index == valid + wrong_check else _name(rng, male),
                "公民身份号码": id_number,
                "性别": "男" if male else "女",
                "出生日期": born.isoformat(),
                "联系电话": _mobile(rng),
                "住址": _address(rng),
            }
        )
    register += [dict(rng.choice(register[:valid])) for _ in range(duplicates)]
    rng.shuffle(register)
    return register


def _valid_people_ids(people: list[dict[str, str]]) -> list[str]:
    """Normalised IDs of the register's valid residents, in register order, once each."""
    found: dict[str, None] = {}
    for row in people:
        if row["姓名"]:
            try:
                found[normalise_resident_id(row["公民身份号码"])] = None
            except InvalidCode:
                continue
    return list(found)


def _organisation_name(rng: random.Random, category: str) -> str:
    """A name that fits the USCC category: company (1), individual business (2), cooperative (3)."""
    brand = "".join(rng.sample(_BRAND_CHARS, 2))
    if category == "1":
        return f"常州市{brand}{rng.choice(_INDUSTRIES)}有限公司"
    if category == "2":
        return f"新北区孟河{brand}{rng.choice(_SHOPS)}"
    return f"常州市新北区孟河镇{rng.choice(list(VILLAGES))[:-1]}{brand}{rng.choice(_COOPERATIVES)}专业合作社"


def _organisations(rng: random.Random, rows: int, people: list[dict[str, str]]) -> list[dict[str, str]]:
    """The enterprise register: distinct organisations plus duplicated rows and one mistyped code.

    Half the legal representatives are residents of the household register, so the
    warehouse has people to link organisations to.
    """
    duplicates = max(1, round(rows * 0.05))
    valid = rows - duplicates - 1
    residents = [row["姓名"] for row in people if row["姓名"]]
    taken: dict[str, None] = {}
    names: dict[str, None] = {}
    register: list[dict[str, str]] = []
    for index in range(valid + 1):
        category = _weighted(rng, (("1", 6), ("2", 3), ("3", 1)))
        while True:
            first17 = f"9{category}320411{_org_code(rng)}"
            uscc = first17 + uscc_check_char(first17)
            if uscc not in taken:
                taken[uscc] = None
                break
        if index == valid:
            uscc = _wrong_check(uscc, _USCC_ALPHABET, rng)
        name = _organisation_name(rng, category)
        for _ in range(20):  # names are unique in a register; give up quietly on huge days
            if name not in names:
                break
            name = _organisation_name(rng, category)
        names[name] = None
        phone = f"0519-8{rng.randrange(10**7):07d}" if rng.random() < 0.5 else _mobile(rng)
        register.append(
            {
                "单位名称": name,
                "统一社会信用代码": uscc,
                "法定代表人": rng.choice(residents) if rng.random() < 0.5 else _name(rng, rng.random() < 0.7),
                "注册地址": f"江苏省常州市新北区孟河镇{rng.choice(list(VILLAGES))}{rng.randint(1, 300)}号",
                "联系电话": phone,
            }
        )
    register += [dict(rng.choice(register[:valid])) for _ in range(duplicates)]
    rng.shuffle(register)
    return register


# --- patrol reports and their lifecycle ----------------------------------------------------


def _photo(rng: random.Random) -> str:
    """A fake content hash standing in for an uploaded photo."""
    return f"sha256:{rng.getrandbits(256):064x}"


def _point(rng: random.Random, village: str) -> tuple[float, float]:
    """A WGS84 point near the village centre, kept inside the Menghe box."""
    lat_min, lat_max, lon_min, lon_max = REPORT_BOX
    lat, lon = VILLAGES[village]
    lat = min(max(lat + rng.uniform(-0.008, 0.008), lat_min), lat_max)
    lon = min(max(lon + rng.uniform(-0.008, 0.008), lon_min), lon_max)
    return round(lat, 6), round(lon, 6)


def _reports(rng: random.Random, events: int) -> tuple[list[Row], list[tuple[Row, _CategorySpec]]]:
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
            _at(8) + timedelta(seconds=rng.randrange(150 * 60)),
            _at(13, 30) + timedelta(seconds=rng.randrange(210 * 60)),
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
    weights = [spec.weight for spec in CATEGORIES]
    distinct: list[Row] = []
    valid: list[tuple[Row, _CategorySpec]] = []
    for number, (reported_at, worker, village, is_unknown) in enumerate(drafts, start=1):
        place = village + rng.choice(_LANDMARKS)
        lat, lon = _point(rng, village)
        spec: _CategorySpec | None = None
        if is_unknown:
            category = rng.choice(UNKNOWN_CATEGORY_CODES)
            description = f"{place}发现其他问题，请核实"
        else:
            spec = rng.choices(CATEGORIES, weights=weights)[0]
            category = spec.name if rng.random() < 0.1 else spec.code
            description = rng.choice(spec.descriptions).format(place=place)
            while _looks_like_a_second_report(valid, spec, lat, lon, reported_at):
                lat, lon = _point(rng, village)
        body: Row = {
            "report_id": f"R{DAY:%Y%m%d}-{number:06d}",
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


SEPARATION_M = 100
SEPARATION = timedelta(hours=3)


def _looks_like_a_second_report(
    valid: list[tuple[Row, _CategorySpec]], spec: _CategorySpec, lat: float, lon: float, at: datetime
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


def _chain(rng: random.Random, returned: bool) -> list[str]:
    """The statuses one event goes through today, following the case flow of §5."""
    end = _weighted(rng, _CHAIN_ENDS)
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


_GAP_SECONDS = {
    "accepted": (120, 1200),
    "dispatched": (180, 1800),
    "returned": (600, 3600),
    "in_handling": (600, 3600),
    "handled": (1200, 10800),
    "verified": (600, 3600),
    "closed": (300, 1800),
}


def _corroborations(rng: random.Random, valid: list[tuple[Row, _CategorySpec]], updated: set[str]) -> list[Row]:
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
                "report_id": f"{report['report_id']}-2",
                "reporter_id": f"GW{rng.randint(1, GRID_WORKERS):03d}",
                "lat": round(min(max(report["lat"] + rng.uniform(-0.0001, 0.0001), 31.95), 32.03), 6),
                "lon": round(min(max(report["lon"] + rng.uniform(-0.0001, 0.0001), 119.82), 119.92), 6),
                "reported_at": _iso(min(later, _at(17, 59, 59))),
                "photos": [_photo(rng)],
            }
        )
    return seconds


TRACK_STEP = timedelta(minutes=2)
PATROL_MINUTES = 60
SHORT_PATROL_MINUTES = 34
COMPLIANT_PATROL_MINUTES = 50


def _tracks(rng: random.Random) -> list[Row]:
    """Every worker's patrols: usually two hours-long walks; some skip one or cut them short."""
    bodies: list[Row] = []
    villages = list(VILLAGES)
    for number in range(1, GRID_WORKERS + 1):
        worker = f"GW{number:03d}"
        lat, lon = _point(rng, rng.choice(villages))
        starts = [_at(8) + timedelta(minutes=rng.randrange(150)), _at(13, 30) + timedelta(minutes=rng.randrange(210))]
        habit = rng.random()
        if habit < 0.1:
            starts = starts[:1]
        minutes = SHORT_PATROL_MINUTES if 0.1 <= habit < 0.15 else PATROL_MINUTES
        for start in starts:
            points = []
            for step in range(minutes // 2 + 1):
                lat = min(max(lat + rng.uniform(-0.0003, 0.0003), REPORT_BOX[0]), REPORT_BOX[1])
                lon = min(max(lon + rng.uniform(-0.0003, 0.0003), REPORT_BOX[2]), REPORT_BOX[3])
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


def _automatic_steps(chain: list[str]) -> set[int]:
    """The first accept and dispatch: the command centre's automation takes them, nobody posts them."""
    return {chain.index(status) for status in ("accepted", "dispatched") if status in chain}


def _updates(rng: random.Random, valid: list[tuple[Row, _CategorySpec]]) -> list[Row]:
    """Lifecycle updates for about 60% of the valid events, in the order they are posted.

    The command centre's automation accepts and dispatches a fresh report, so those first
    steps are never posted; the command centre closes and re-dispatches; the department desk works the
    case and attaches a photo when handled; the reporting worker verifies on site with
    a photo. A few cases are returned by the desk and dispatched again, and a few fail the
    on-site check and are reworked.
    """
    chosen = sorted(rng.sample(range(len(valid)), round(len(valid) * 0.6)))
    returned = set(rng.sample(chosen, max(1, round(len(chosen) * 0.08)) if len(chosen) >= 5 else 0))
    reworked = set(rng.sample(chosen, max(1, round(len(chosen) * 0.06)) if len(chosen) >= 5 else 0))
    end_of_day = _at(23, 59, 59)
    posts: list[tuple[datetime, int, int, Row]] = []
    for index in chosen:
        report, spec = valid[index]
        chain = _chain(rng, index in returned)
        if index in reworked:
            chain = _with_rework(chain)
        gaps = [rng.randint(*_GAP_SECONDS[status]) for status in chain]
        timeline = _steps(datetime.fromisoformat(report["reported_at"]), gaps, end_of_day)
        automatic = _automatic_steps(chain)
        statuses = [status for step, status in enumerate(chain) if step not in automatic]
        moments = [moment for step, moment in enumerate(timeline) if step not in automatic]
        desk = f"desk-{spec.department}"
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
                    "in_handling": desk,
                    "handled": desk,
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
                update["note"] = _HANDLED_NOTES[spec.department]
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
    rng: random.Random, count: int, people: list[dict[str, str]], organisations: list[dict[str, str]]
) -> list[Row]:
    """The approval table: one row per change of ``count`` applications, plus 1-2 mistyped IDs.

    Most applicants are in the registers (so the warehouse can link them); some are not,
    as people from outside the town also apply. The mistyped rows are single-row
    applications whose applicant ID fails its check character.
    """
    residents = _valid_people_ids(people)
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
    close = _at(18)
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
                id_number = _resident_id(rng, born, male, force_x=False, taken=taken)
            else:
                id_number = rng.choice(residents)
            if is_invalid:
                id_number = _wrong_check(id_number, _RESIDENT_CHECKS, rng)
        elif rng.random() < 0.8:
            uscc = rng.choice(enterprises)
        else:
            first17 = f"91320411{_org_code(rng)}"
            uscc = first17 + uscc_check_char(first17)
        path = ("submitted",) if is_invalid else _weighted(rng, _APPLICATION_PATHS)
        submitted = _at(8, 30) + timedelta(seconds=rng.randrange(8 * 3600))
        gaps = [rng.randint(300, 3600) if status == "accepted" else rng.randint(1800, 10800) for status in path[1:]]
        changes = [submitted, *_steps(submitted, gaps, close)]
        for step, (status, moment) in enumerate(zip(path, changes, strict=True)):
            row: Row = {
                "application_id": f"A{DAY:%Y%m%d}{number:05d}",
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
    reports: list[Row],
    malformed: list[bytes],
    updates: list[Row],
    applications: list[Row],
    people: list[dict[str, str]],
    organisations: list[dict[str, str]],
) -> dict[str, int]:
    """Count what a correct pipeline must end with, from the generated rows themselves."""
    distinct = {body["report_id"]: body for body in reports}
    unknown = sum(1 for body in distinct.values() if body["category"] not in _KNOWN_CATEGORY_WORDS)

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
