"""The benchmark's person export is what its counts say: the benchmark asserts the warehouse against them.

Every row is recounted independently: IDs through the GB 11643 rules and the canonical
Person model, duplicates as exact row copies, and the changed variant against the base.
"""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from pydantic import ValidationError

from bench.data import CHANGED_PHONE_PREFIX, person_export, person_table
from schemas.identity import InvalidCode, normalise_resident_id
from schemas.records import Person
from simulation.town import PEOPLE_HEADERS

HEADERS = tuple(PEOPLE_HEADERS)
"""The household register's headers, in the order the benchmark's export has them."""

RECORDS = 4000
SEED = 11


def rows_of(records: int = RECORDS, seed: int = SEED, changed: bool = False) -> list[tuple[str, ...]]:
    table, _ = person_table(records, seed, changed)
    columns = [table.column(name).to_pylist() for name in HEADERS]
    return list(zip(*columns, strict=True))


def is_valid(id_number: str) -> bool:
    try:
        normalise_resident_id(id_number)
    except InvalidCode:
        return False
    return True


def test_counts_are_the_issue_shares() -> None:
    _, counts = person_table(RECORDS, SEED)
    assert counts.records == RECORDS
    assert counts.duplicates == RECORDS * 5 // 100
    assert counts.invalid == RECORDS // 100
    assert counts.distinct_valid == RECORDS - counts.duplicates - counts.invalid
    assert counts.changed == 0


def test_ids_are_valid_except_the_invalid_share_whose_check_character_is_wrong() -> None:
    rows = rows_of()
    _, counts = person_table(RECORDS, SEED)
    invalid = [row for row in rows if not is_valid(row[1])]
    assert len(invalid) == counts.invalid
    for row in invalid:
        with pytest.raises(InvalidCode, match="check character"):
            normalise_resident_id(row[1])
    assert len({row[1] for row in rows if is_valid(row[1])}) == counts.distinct_valid


def test_duplicates_are_exact_copies_of_valid_rows_and_the_only_repeats() -> None:
    rows = rows_of()
    _, counts = person_table(RECORDS, SEED)
    repeats = Counter(rows)
    assert sum(count - 1 for count in repeats.values()) == counts.duplicates
    assert max(repeats.values()) == 2
    assert all(is_valid(row[1]) for row, count in repeats.items() if count > 1)
    by_id = Counter(row[1] for row in rows)
    assert sum(count - 1 for count in by_id.values()) == counts.duplicates  # no two people share an ID


def test_every_valid_row_is_a_person_the_hub_accepts() -> None:
    for row in set(rows_of(records=500)):
        payload = {PEOPLE_HEADERS[header]: value for header, value in zip(HEADERS, row, strict=True)}
        if not is_valid(payload["id_number"]):
            with pytest.raises(ValidationError):
                Person.model_validate(payload)
            continue
        person = Person.model_validate(payload)  # gender and birth date agree with the ID
        assert person.id_number == row[1]


def test_changed_variant_differs_in_the_phone_of_exactly_the_changed_people() -> None:
    base, changed = rows_of(), rows_of(changed=True)
    _, counts = person_table(RECORDS, SEED, changed=True)
    assert counts.changed == RECORDS // 100
    differing = {new[1] for old, new in zip(base, changed, strict=True) if old != new}
    assert len(differing) == counts.changed
    for old, new in zip(base, changed, strict=True):
        assert old[:4] + old[5:] == new[:4] + new[5:]
        if old != new:
            assert is_valid(new[1])
            assert new[4].startswith(CHANGED_PHONE_PREFIX) and len(new[4]) == 11
    assert all(not row[4].startswith(CHANGED_PHONE_PREFIX) for row in base)


def test_same_seed_same_rows_and_the_file_is_reused(tmp_path) -> None:
    assert rows_of() == rows_of()
    first = person_export(tmp_path, 300, SEED)
    written = first.path.stat().st_mtime_ns
    again = person_export(tmp_path, 300, SEED)
    assert again == first
    assert again.path.stat().st_mtime_ns == written
    with first.path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert tuple(next(reader)) == HEADERS
        assert [tuple(row) for row in reader] == rows_of(records=300)
