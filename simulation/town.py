"""The simulated town's fixed material: its map, its people's names, what its grid workers report.

Everything here is illustrative, not surveyed: village centres, name characters and report
wordings were chosen to look like Menghe (the seed article), so that the hub meets realistic
text and coordinates. The category codes, names and departments are not repeated here: they come
from the routing table the hub itself uses (``schemas/data/categories.yaml``); this module adds only
how often and in which words each category is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from streams.routing import RoutingRules

DAY = date(2026, 11, 25)
"""The simulated day; report and application ids carry it."""

GRID_WORKERS = 146
"""128 basic-grid workers plus 18 for dedicated grids (schools, hospitals, parks)."""


@dataclass(frozen=True)
class Box:
    """A WGS84 latitude/longitude rectangle."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


TOWN_BOX = Box(31.95, 32.03, 119.82, 119.925)
"""The synthetic grid's extent around Menghe: 16 × 8 basic cells of about 620 m by 1,110 m."""
REPORT_BOX = Box(TOWN_BOX.lat_min, TOWN_BOX.lat_max, TOWN_BOX.lon_min, 119.92)
"""Where phones report from: the town's box with its eastern edge 0.005° (about 470 m) inside the grid's."""

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
"""Village name → an illustrative centre (lat, lon) inside :data:`REPORT_BOX` (not surveyed coordinates)."""
LANDMARKS = ("村口", "桥头", "菜场旁", "主路边", "河边", "公交站台旁", "小学门口", "厂区旁", "文化广场")
"""Where in a village a problem is seen, for report descriptions."""

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

SURNAMES = "王张陈周吴徐孙朱蒋钱沈许恽巢史庄汤杨刘黄顾邵"
MALE_GIVEN_CHARS = "建国伟军强明华平志勇俊杰斌涛兵荣林"
FEMALE_GIVEN_CHARS = "芳英红梅丽霞燕萍娟琴玉兰秀敏婷静娜"
"""Characters of the town's common surnames and given names."""
MOBILE_PREFIXES = ("130", "133", "135", "136", "138", "139", "150", "151", "152", "158", "177", "180", "187", "189")
"""Prefixes of mainland mobile numbers; a number is a prefix and 8 more digits."""

# Weights reflect a rural town in late November: rubbish, parking, shop-front trading and
# the burning of straw and leaves dominate; pipe bursts and mass incidents are rare.
REPORTING: dict[str, tuple[int, tuple[str, ...]]] = {
    "0101": (
        5,
        ("{place}有人未经审批搭建彩钢棚", "{place}民房旁新建违章简易房", "{place}店铺门前私自加盖雨棚"),
    ),  # 私搭乱建
    "0102": (
        16,
        ("{place}路边堆放生活垃圾未清运", "{place}垃圾桶满溢，周边散落垃圾", "{place}绿化带内有暴露垃圾"),
    ),  # 暴露垃圾
    "0103": (6, ("{place}空地堆积建筑渣土", "{place}河坡积存垃圾多日未清理")),  # 积存垃圾渣土
    "0104": (8, ("{place}路面泥土洒落严重", "{place}道路油污未清扫")),  # 道路不洁
    "0105": (4, ("{place}河面漂浮垃圾和水草", "{place}池塘水面有大量漂浮物")),  # 水域不洁
    "0114": (6, ("{place}田头有人焚烧秸秆", "{place}村民露天焚烧垃圾树叶")),  # 焚烧垃圾树叶
    "0115": (2, ("{place}烧烤摊油烟直排", "{place}饭店油烟净化器未开启")),  # 油烟污染
    "0201": (7, ("{place}电线杆上张贴小广告", "{place}墙面喷涂办证小广告")),  # 非法小广告
    "0203": (3, ("{place}店招破损存在坠落隐患", "{place}擅自设置落地广告牌")),  # 违规户外广告
    "0301": (3, ("{place}工地施工噪音扰民", "{place}装修施工噪音大，居民反映")),  # 施工扰民
    "0303": (4, ("{place}工地裸土未覆盖，扬尘明显", "{place}渣土车未密闭运输，沿路扬尘")),  # 工地扬尘
    "0306": (2, ("{place}有人擅自开挖路面铺设管道",)),  # 无证掘路
    "0401": (1, ("{place}路面出现塌陷坑，存在安全隐患",)),  # 路面塌陷
    "0402": (2, ("{place}自来水管破裂，路面积水",)),  # 自来水管破裂
    "0403": (1, ("{place}闻到燃气味，疑似管道泄漏",)),  # 燃气管道破裂
    "0404": (4, ("{place}下水道堵塞，污水外溢", "{place}窨井盖破损")),  # 下水道堵塞或破损
    "0409": (1, ("{place}多名村民聚集，情绪激动",)),  # 群体性事件
    "0501": (5, ("{place}流动摊贩占道售卖水果", "{place}无照经营早点摊")),  # 无照经营游商
    "0504": (7, ("{place}汽配店跨门经营，配件堆放人行道", "{place}商户占道摆放商品")),  # 店外经营
    "0509": (8, ("{place}车辆乱停占用消防通道", "{place}货车违停堵塞路口")),  # 机动车乱停放
    "0601": (2, ("{place}有人在耕地上堆放建材、硬化地面",)),  # 违法占用耕地
    "0602": (2, ("{place}排口向河道排放不明污水",)),  # 河道违法排污
}
"""Category code → (how often it is reported, relative weight; the wordings of its reports)."""
UNKNOWN_CATEGORY_CODES: tuple[str, ...] = ("9999", "0999", "9901")
"""Codes no routing table knows: a phone with an outdated category list sends them."""


@dataclass(frozen=True)
class ReportedCategory:
    """A category of the routing table and how the town's grid workers report it."""

    code: str
    name: str
    department: str
    weight: int
    descriptions: tuple[str, ...]


def reported_categories(rules: RoutingRules) -> tuple[ReportedCategory, ...]:
    """The reported categories in :data:`REPORTING` order, named and routed as ``rules`` say.

    A code the routing table lacks is an error: the simulated day would send reports the hub must
    refuse, and its expected counts would be wrong.
    """
    missing = [code for code in REPORTING if code not in rules.categories]
    if missing:
        raise ValueError(f"the routing table lacks the simulated categories {', '.join(missing)}")
    return tuple(
        ReportedCategory(code, rules.categories[code].name, rules.categories[code].department, weight, descriptions)
        for code, (weight, descriptions) in REPORTING.items()
    )
