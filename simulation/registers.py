"""Other departments' copies of the simulated town's residents, for entity resolution.

The household register of :mod:`simulation.day` is one department's view. Here the
police hold part of the same people with their own spelling (names padded, short
addresses, some newer phones), a community office keeps a list without resident IDs,
the housing office registers the houses they live in, and the tax bureau knows the
legal representatives of enterprises by resident ID. A correct hub folds all of it
into one golden record per resident, links residents to houses and organisations to
their legal representatives, and leaves the community rows it cannot be sure of for review.

Everything derives from the day and its own seeded random stream, so the day itself is
unchanged and the counts a correct pipeline must end with can be computed exactly.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from connectors.exports import ExportEntity
from schemas.address import normalise_address
from schemas.identity import InvalidCode, normalise_resident_id, normalise_uscc
from simulation.day import TownDay
from simulation.town import VILLAGES

SECURITY_SHARE = 0.4
COMMUNITY_SHARE = 0.1
UNSURE_SHARE = 0.03
HOUSING_SHARE = 0.3


@dataclass(frozen=True)
class Resident:
    """A valid resident of the household register, once."""

    id_number: str
    name: str
    birth_date: str
    phone: str
    address: str


@dataclass
class TownRegisters:
    """The extra exports and what the warehouse must show once they are resolved."""

    security: list[dict[str, str]] = field(default_factory=list)
    """Police population register (public-security): same IDs, their own spelling."""
    community: list[dict[str, str]] = field(default_factory=list)
    """Community office list (community): no resident IDs."""
    houses: list[dict[str, str]] = field(default_factory=list)
    """Housing register (housing): houses with their address and location."""
    tax: list[dict[str, str]] = field(default_factory=list)
    """Tax bureau's taxpayer list (tax): organisations with their legal representative's resident ID."""
    expected: dict[str, int] = field(default_factory=dict)


def _residents(day: TownDay) -> list[Resident]:
    found: dict[str, Resident] = {}
    for row in day.people:
        if not row["姓名"]:
            continue
        try:
            id_number = normalise_resident_id(row["公民身份号码"])
        except InvalidCode:
            continue
        found.setdefault(id_number, Resident(id_number, row["姓名"], row["出生日期"], row["联系电话"], row["住址"]))
    return list(found.values())


def _padded(name: str) -> str:
    """Registers pad two-character names to the width of three: 王芳 → 王 芳."""
    return f"{name[0]} {name[1]}" if len(name) == 2 else name


def _short(address: str) -> str:
    """The police write addresses from the town down."""
    return address.removeprefix("江苏省常州市新北区")


def _taxpayers(day: TownDay, residents: list[Resident]) -> list[dict[str, str]]:
    """Organisations whose legal representative's name belongs to exactly one resident, with that resident's ID."""
    by_name: dict[str, list[str]] = {}
    for resident in residents:
        by_name.setdefault(resident.name, []).append(resident.id_number)
    taxpayers: dict[str, dict[str, str]] = {}
    for row in day.organisations:
        ids = by_name.get(row["法定代表人"], [])
        try:
            uscc = normalise_uscc(row["统一社会信用代码"])
        except InvalidCode:
            continue
        if len(ids) == 1 and row["单位名称"]:
            taxpayers[uscc] = {
                "统一社会信用代码": uscc,
                "单位名称": row["单位名称"],
                "法定代表人": row["法定代表人"],
                "法定代表人身份证号": ids[0],
            }
    return list(taxpayers.values())


def town_registers(day: TownDay, seed: int) -> TownRegisters:
    """Derive the other departments' registers from the day's household register."""
    rng = random.Random(seed + 2)  # noqa: S311 -- simulation, seeded for replay
    residents = _residents(day)
    registers = TownRegisters(tax=_taxpayers(day, residents))
    for resident in rng.sample(residents, round(len(residents) * SECURITY_SHARE)):
        phone = f"13{rng.randrange(10**9):09d}" if rng.random() < 0.3 else resident.phone
        registers.security.append(
            {
                "姓名": _padded(resident.name),
                "公民身份号码": resident.id_number,
                "联系电话": phone,
                "住址": _short(resident.address),
            }
        )
    namesakes = Counter((resident.name, resident.birth_date) for resident in residents)
    distinct = [resident for resident in residents if namesakes[resident.name, resident.birth_date] == 1]
    listed = rng.sample(distinct, round(len(residents) * (COMMUNITY_SHARE + UNSURE_SHARE)))
    unsure = listed[: round(len(residents) * UNSURE_SHARE)]
    for resident in listed:
        sure = resident not in unsure
        registers.community.append(
            {
                "姓名": resident.name,
                "出生日期": resident.birth_date if sure else "",
                "联系电话": resident.phone,
                "住址": "" if sure else resident.address,
            }
        )
    housed = rng.sample(residents, round(len(residents) * HOUSING_SHARE))
    addresses = sorted({resident.address for resident in housed})
    for number, address in enumerate(addresses, start=1):
        village = next((name for name in VILLAGES if name in address), next(iter(VILLAGES)))
        lat, lon = VILLAGES[village]
        registers.houses.append(
            {
                "房屋编号": f"FW{number:06d}",
                "地址": address,
                "纬度": f"{lat + rng.uniform(-0.002, 0.002):.6f}",
                "经度": f"{lon + rng.uniform(-0.002, 0.002):.6f}",
            }
        )
    housed_addresses = {normalise_address(address) for address in addresses}
    living = sum(1 for resident in residents if normalise_address(resident.address) in housed_addresses)
    living += sum(1 for resident in unsure if normalise_address(resident.address) in housed_addresses)
    registers.expected = {
        "people": len(residents) + len(unsure),
        "people_merged_by_similarity": len(listed) - len(unsure),
        "people_in_review": len(unsure),
        "places": len(addresses),
        "lives_at": living,
        "represents": len(registers.tax),
    }
    return registers


def write_registers(registers: TownRegisters, folder: Path) -> list[tuple[Path, str, ExportEntity]]:
    """Write each register as a UTF-8 CSV export; return (file, source, entity) in the order to ingest them."""
    folder.mkdir(parents=True, exist_ok=True)
    exports: tuple[tuple[str, str, ExportEntity, list[dict[str, str]]], ...] = (
        ("public-security-people.csv", "public-security", "person", registers.security),
        ("community-people.csv", "community", "person", registers.community),
        ("housing-houses.csv", "housing", "place", registers.houses),
        ("tax-taxpayers.csv", "tax", "organisation", registers.tax),
    )
    written: list[tuple[Path, str, ExportEntity]] = []
    for name, source, entity, rows in exports:
        path = folder / name
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["姓名"])
            writer.writeheader()
            writer.writerows(rows)
        written.append((path, source, entity))
    return written
