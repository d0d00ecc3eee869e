"""The other departments' registers of the simulated day: reproducible and honest about what they expect."""

from __future__ import annotations

from collections import Counter

import pytest

from schemas.address import normalise_address
from schemas.identity import InvalidCode, normalise_resident_id
from schemas.records import Person, Place
from simulation.day import simulate_day
from simulation.registers import town_registers

SEED = 20261125


def household(day) -> dict[str, str]:
    """Valid resident ID → name, from the day's household register."""
    valid = {}
    for row in day.people:
        try:
            valid[normalise_resident_id(row["公民身份号码"])] = row["姓名"]
        except InvalidCode:
            continue
    return {id_number: name for id_number, name in valid.items() if name}


@pytest.fixture(scope="module")
def day_and_registers():
    day = simulate_day(200, SEED)
    return day, town_registers(day, SEED)


def test_same_seed_same_registers(day_and_registers) -> None:
    day, registers = day_and_registers
    again = town_registers(day, SEED)
    assert (again.security, again.community, again.houses, again.tax) == (
        registers.security,
        registers.community,
        registers.houses,
        registers.tax,
    )


def test_police_copies_are_valid_people_of_the_household_register(day_and_registers) -> None:
    day, registers = day_and_registers
    residents = household(day)
    for row in registers.security:
        person = Person(id_number=row["公民身份号码"], name=row["姓名"], phone=row["联系电话"], address=row["住址"])
        assert person.id_number in residents


def test_community_rows_have_no_id_and_enough_to_match(day_and_registers) -> None:
    _, registers = day_and_registers
    for row in registers.community:
        person = Person(name=row["姓名"], birth_date=row["出生日期"] or None, phone=row["联系电话"],
                        address=row["住址"] or None)  # fmt: skip
        assert person.match_key is None
    unsure = sum(1 for row in registers.community if not row["出生日期"])
    assert unsure == registers.expected["people_in_review"] > 0
    assert len(registers.community) - unsure == registers.expected["people_merged_by_similarity"] > 0


def test_houses_have_distinct_addresses_and_locations(day_and_registers) -> None:
    _, registers = day_and_registers
    places = [Place(place_id=row["房屋编号"], address=row["地址"], lat=row["纬度"], lon=row["经度"])
              for row in registers.houses]  # fmt: skip
    assert max(Counter(normalise_address(place.address) for place in places).values()) == 1
    assert len(places) == registers.expected["places"]


def test_taxpayers_name_a_resident_as_legal_representative(day_and_registers) -> None:
    day, registers = day_and_registers
    residents = household(day)
    assert registers.tax
    for row in registers.tax:
        assert residents[row["法定代表人身份证号"]] == row["法定代表人"]
