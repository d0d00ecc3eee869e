"""The town's residents and enterprises as their registers hold them, faults included.

Identities follow the national standards (GB 11643 resident IDs, GB 32100 credit codes with
GB 11714 organisation codes inside), drawn from one seeded random stream in a fixed order, so a
register is a pure function of its seed. Faults are planted on purpose: duplicated rows, a
lower-case ``x``, mistyped check characters, a row without a name.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from schemas.identity import (
    USCC_ALPHABET,
    InvalidCode,
    normalise_resident_id,
    organisation_code_check_char,
    resident_id_check_char,
    uscc_check_char,
)
from simulation.town import FEMALE_GIVEN_CHARS, MALE_GIVEN_CHARS, MOBILE_PREFIXES, SURNAMES, VILLAGES

DIVISIONS = (("320411", 80), ("320402", 5), ("320412", 5), ("320481", 4), ("321181", 6))
"""Where residents were registered: Xinbei (320411) dominates; others moved in from elsewhere in Jiangsu."""
CHECK_CHARACTERS = "0123456789X"
"""Every character a resident ID can end with, for planting a mistyped one."""
_BRAND_CHARS = "恒泰鑫达华翔永盛金诚宏远万通瑞丰天马新龙"
_INDUSTRIES = ("汽车配件", "摩托车配件", "机械制造", "灯具", "塑业", "五金", "精密铸造", "电器", "物流", "建材")
_SHOPS = ("汽配经营部", "五金店", "小吃店", "便利店", "理发店", "农资店", "饭店")
_COOPERATIVES = ("葡萄种植", "水稻种植", "蔬菜种植", "水产养殖", "苗木种植")


def weighted(rng: random.Random, table: tuple[tuple[Any, int], ...]) -> Any:
    """Pick one value of a (value, weight) table."""
    values = [value for value, _ in table]
    weights = [weight for _, weight in table]
    return rng.choices(values, weights=weights)[0]


def person_name(rng: random.Random, male: bool) -> str:
    """A Chinese name whose given name fits the gender, as a register would hold it."""
    chars = MALE_GIVEN_CHARS if male else FEMALE_GIVEN_CHARS
    given = "".join(rng.choice(chars) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def mobile(rng: random.Random) -> str:
    """An 11-digit mainland mobile number."""
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def address(rng: random.Random, village: str | None = None) -> str:
    """A rural address in Menghe: village, production group and house number."""
    village = village or rng.choice(list(VILLAGES))
    return f"江苏省常州市新北区孟河镇{village}{rng.randint(1, 18)}组{rng.randint(1, 120)}号"


def resident_id(rng: random.Random, born: date, male: bool, force_x: bool, taken: dict[str, None]) -> str:
    """A valid GB 11643 ID not yet used: division, birth date, sequence (odd = male), check char.

    ``force_x`` draws sequences until the check character is X, so the lower-case ``x``
    fault can be planted on an ID where it is legitimate.
    """
    division = weighted(rng, DIVISIONS)
    while True:
        sequence = rng.randrange(1000)
        if sequence % 2 != int(male):
            sequence ^= 1
        first17 = f"{division}{born:%Y%m%d}{sequence:03d}"
        code = first17 + resident_id_check_char(first17)
        if code not in taken and (not force_x or code.endswith("X")):
            taken[code] = None
            return code


def wrong_check(code: str, alphabet: str, rng: random.Random) -> str:
    """The same code with a different, therefore wrong, check character: a typo at the desk."""
    return code[:17] + rng.choice([char for char in alphabet if char != code[17]])


def organisation_code(rng: random.Random) -> str:
    """A 9-character GB 11714 organisation code with its own check character (characters 9-17 of a USCC).

    Older enterprises carry the 8-digit pre-2015 codes; newer ones the ``MA`` series.
    """
    if rng.random() < 0.6:
        body = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6))
    else:
        body = f"{rng.randrange(10**8):08d}"
    return body + organisation_code_check_char(body)


def household_register(rng: random.Random, rows: int) -> list[dict[str, str]]:
    """The household register: distinct residents plus duplicated, lower-case-x and invalid rows."""
    duplicates = max(1, round(rows * 0.05))
    lower_x = max(1, round(rows * 0.02))
    mistyped = max(1, round(rows * 0.02))
    valid = rows - duplicates - mistyped - 1  # the 1 is the row without a name
    taken: dict[str, None] = {}
    register: list[dict[str, str]] = []
    for index in range(valid + mistyped + 1):
        male = rng.random() < 0.5
        born = date(1935, 1, 1) + timedelta(days=rng.randrange((date(2015, 12, 31) - date(1935, 1, 1)).days))
        id_number = resident_id(rng, born, male, force_x=index < lower_x, taken=taken)
        if index < lower_x:
            id_number = id_number[:17] + "x"
        elif valid <= index < valid + mistyped:
            id_number = wrong_check(id_number, CHECK_CHARACTERS, rng)
        register.append(
            {
                "姓名": "" if index == valid + mistyped else person_name(rng, male),
                "公民身份号码": id_number,
                "性别": "男" if male else "女",
                "出生日期": born.isoformat(),
                "联系电话": mobile(rng),
                "住址": address(rng),
            }
        )
    register += [dict(rng.choice(register[:valid])) for _ in range(duplicates)]
    rng.shuffle(register)
    return register


def valid_resident_ids(people: list[dict[str, str]]) -> list[str]:
    """Normalised IDs of the register's valid residents, in register order, once each."""
    found: dict[str, None] = {}
    for row in people:
        if row["姓名"]:
            try:
                found[normalise_resident_id(row["公民身份号码"])] = None
            except InvalidCode:
                continue
    return list(found)


def organisation_name(rng: random.Random, category: str) -> str:
    """A name that fits the USCC category: company (1), individual business (2), cooperative (3)."""
    brand = "".join(rng.sample(_BRAND_CHARS, 2))
    if category == "1":
        return f"常州市{brand}{rng.choice(_INDUSTRIES)}有限公司"
    if category == "2":
        return f"新北区孟河{brand}{rng.choice(_SHOPS)}"
    return f"常州市新北区孟河镇{rng.choice(list(VILLAGES))[:-1]}{brand}{rng.choice(_COOPERATIVES)}专业合作社"


def enterprise_register(rng: random.Random, rows: int, people: list[dict[str, str]]) -> list[dict[str, str]]:
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
        category = weighted(rng, (("1", 6), ("2", 3), ("3", 1)))
        while True:
            first17 = f"9{category}320411{organisation_code(rng)}"
            uscc = first17 + uscc_check_char(first17)
            if uscc not in taken:
                taken[uscc] = None
                break
        if index == valid:
            uscc = wrong_check(uscc, USCC_ALPHABET, rng)
        name = organisation_name(rng, category)
        for _ in range(20):  # names are unique in a register; give up quietly on huge days
            if name not in names:
                break
            name = organisation_name(rng, category)
        names[name] = None
        phone = f"0519-8{rng.randrange(10**7):07d}" if rng.random() < 0.5 else mobile(rng)
        register.append(
            {
                "单位名称": name,
                "统一社会信用代码": uscc,
                "法定代表人": rng.choice(residents) if rng.random() < 0.5 else person_name(rng, rng.random() < 0.7),
                "注册地址": f"江苏省常州市新北区孟河镇{rng.choice(list(VILLAGES))}{rng.randint(1, 300)}号",
                "联系电话": phone,
            }
        )
    register += [dict(rng.choice(register[:valid])) for _ in range(duplicates)]
    rng.shuffle(register)
    return register
