"""The department export the bulk, resync and scale-out scenarios feed: a household register.

A million rows must be ready in seconds and be the same on every run, so the register is
built column-wise with numpy and pyarrow (no per-row Python) from a seed, and written once
as CSV under the data dir, keyed by size, seed and variant; later runs reuse the file.

The register has the standard Chinese headers and what a real one carries: valid GB 11643
resident IDs whose birth date and gender agree with the 性别 and 出生日期 columns, 5% exact
duplicate rows (the same person exported twice) and 1% rows with a mistyped check
character. Its ``changed`` variant is the same file with the phone number of 1% of the
people replaced, which a re-sync must pass as exactly that many updates.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from schemas.identity import RESIDENT_ID_CHECK_CHARS, RESIDENT_ID_WEIGHTS
from simulation.town import FEMALE_GIVEN_CHARS, MALE_GIVEN_CHARS, MOBILE_PREFIXES, SURNAMES, VILLAGES

DUPLICATE_SHARE = 0.05
INVALID_SHARE = 0.01
CHANGED_SHARE = 0.01
CHANGED_PHONE_PREFIX = "199"
"""Changed phones get a prefix the register never uses, so the warehouse can count them."""
_DIVISIONS = np.array([320411, 320402, 320412, 320481, 321181], dtype=np.int64)
_DIVISION_WEIGHTS = np.array([80, 5, 5, 4, 6], dtype=np.float64) / 100
_FIRST_BIRTH = np.datetime64("1935-01-01")
_BIRTH_DAYS = int((np.datetime64("2015-12-31") - _FIRST_BIRTH).astype(int))
_ID_WEIGHTS = np.array(RESIDENT_ID_WEIGHTS, dtype=np.int64)


@dataclass(frozen=True)
class ExportCounts:
    """What a correct hub must make of the export: the counts the benchmark asserts."""

    records: int
    """Rows in the file."""
    distinct_valid: int
    """People with a valid ID: the golden records (and 'new' outcomes) a first load produces."""
    duplicates: int
    """Exact copies of a valid row: 'duplicate' outcomes of a first load."""
    invalid: int
    """Rows whose ID has a wrong check character: rejects, on every load."""
    changed: int = 0
    """People whose phone differs from the base export: 'update' outcomes of a re-sync."""


@dataclass(frozen=True)
class PersonExport:
    """An export file on disk and what it must produce."""

    path: Path
    counts: ExportCounts


def _check_chars(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check character of each 17-digit number (ISO 7064 MOD 11-2), vectorised."""
    digits = (first17[:, None] // (10 ** np.arange(16, -1, -1, dtype=np.int64))) % 10
    return (digits @ _ID_WEIGHTS) % 11


def _unique_identities(rng: np.random.Generator, people: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Division, birth-day offset and sequence of ``people`` distinct residents."""
    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < people:
        wanted = int((people - len(chosen)) * 1.05) + 16
        division = rng.choice(len(_DIVISIONS), size=wanted, p=_DIVISION_WEIGHTS)
        day = rng.integers(0, _BIRTH_DAYS + 1, size=wanted)
        sequence = rng.integers(0, 1000, size=wanted)
        drawn = (division * (_BIRTH_DAYS + 1) + day) * 1000 + sequence
        merged = np.concatenate([chosen, drawn])
        _, first = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first)]
    chosen = chosen[:people]
    sequence = chosen % 1000
    day = (chosen // 1000) % (_BIRTH_DAYS + 1)
    division = chosen // 1000 // (_BIRTH_DAYS + 1)
    return division, day, sequence


def _digits(values: np.ndarray, width: int) -> pa.Array:
    """Zero-padded decimal text of non-negative integers."""
    return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width=width, padding="0")


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _take(choices: str | tuple[str, ...] | list[str], indices: np.ndarray) -> pa.Array:
    """Text of ``choices`` at each index: Arrow gathers from the small list, no Python string per row."""
    return pa.array(list(choices), pa.string()).take(pa.array(indices))


def _pick(rng: np.random.Generator, choices: str | tuple[str, ...], size: int) -> pa.Array:
    return _take(choices, rng.integers(0, len(choices), size=size))


def _people(rng: np.random.Generator, people: int, invalid: int) -> pa.Table:
    """One row per resident; the last ``invalid`` rows carry a wrong check character."""
    division, day, sequence = _unique_identities(rng, people)
    born = _FIRST_BIRTH + day.astype("timedelta64[D]")
    year = born.astype("datetime64[Y]").astype(int) + 1970
    month = born.astype("datetime64[M]").astype(int) % 12 + 1
    day_of_month = (born - born.astype("datetime64[M]")).astype(int) + 1
    first17 = _DIVISIONS[division] * 10**11 + (year * 10000 + month * 100 + day_of_month) * 1000 + sequence
    check = _check_chars(first17)
    check[people - invalid :] = (check[people - invalid :] + rng.integers(1, 11, size=invalid)) % 11
    male = (sequence % 2).astype(np.int64)
    # Given-name characters: male ones first, then female ones, then "" for a one-character given name.
    given = MALE_GIVEN_CHARS + FEMALE_GIVEN_CHARS
    offset = np.where(male == 1, 0, len(MALE_GIVEN_CHARS))
    width = np.where(male == 1, len(MALE_GIVEN_CHARS), len(FEMALE_GIVEN_CHARS))
    first = offset + (rng.random(people) * width).astype(np.int64)
    second = np.where(rng.random(people) < 2 / 3, offset + (rng.random(people) * width).astype(np.int64), len(given))
    return pa.table(
        {
            "姓名": _join(_pick(rng, SURNAMES, people), _take(given, first), _take([*given, ""], second)),
            "公民身份号码": _join(_digits(first17, 17), _take(RESIDENT_ID_CHECK_CHARS, check)),
            "性别": _take(("女", "男"), male),
            "出生日期": pc.cast(pa.array(born.astype("datetime64[D]")), pa.string()),
            "联系电话": _join(_pick(rng, MOBILE_PREFIXES, people), _digits(rng.integers(0, 10**8, people), 8)),
            "住址": _join(
                "江苏省常州市新北区孟河镇",
                _pick(rng, tuple(VILLAGES), people),
                _digits(rng.integers(1, 19, people), 1),
                "组",
                _digits(rng.integers(1, 121, people), 1),
                "号",
            ),
        }
    )


def person_table(records: int, seed: int, changed: bool = False) -> tuple[pa.Table, ExportCounts]:
    """The register as an Arrow table in file order, and its counts.

    The base and the changed variant share everything but the changed phones, row order
    included, so a re-sync of the changed file differs from the first load in those rows only.
    """
    duplicates = round(records * DUPLICATE_SHARE)
    invalid = round(records * INVALID_SHARE)
    distinct = records - duplicates - invalid
    if distinct < 1 or duplicates > distinct:
        raise ValueError(f"an export needs at least 2 records, not {records}")
    rng = np.random.default_rng(seed)
    table = _people(rng, distinct + invalid, invalid)
    copies = rng.choice(distinct, size=duplicates, replace=False)
    order = rng.permutation(np.concatenate([np.arange(distinct + invalid), copies]))
    changed_count = 0
    if changed:
        changed_count = max(1, round(records * CHANGED_SHARE))
        change = np.random.default_rng(seed + 1)
        who = change.choice(distinct, size=changed_count, replace=False)
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[who] = True
        fresh = _join(CHANGED_PHONE_PREFIX, _digits(change.integers(0, 10**8, table.num_rows), 8))
        phones = pc.if_else(pa.array(mask), fresh, table.column("联系电话"))
        table = table.set_column(table.schema.get_field_index("联系电话"), "联系电话", phones)
    counts = ExportCounts(records, distinct, duplicates, invalid, changed_count)
    return table.take(pa.array(order)), counts


def person_export(folder: Path, records: int, seed: int, changed: bool = False) -> PersonExport:
    """The register file for this size, seed and variant, written once and then reused."""
    name = f"person-{records}-{seed}-{'changed' if changed else 'base'}"
    path, sidecar = folder / f"{name}.csv", folder / f"{name}.json"
    if path.is_file() and sidecar.is_file():
        return PersonExport(path, ExportCounts(**json.loads(sidecar.read_text())))
    folder.mkdir(parents=True, exist_ok=True)
    table, counts = person_table(records, seed, changed)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    pacsv.write_csv(table, partial, pacsv.WriteOptions(quoting_style="none"))
    partial.replace(path)
    sidecar.write_text(json.dumps(asdict(counts)))
    return PersonExport(path, counts)
