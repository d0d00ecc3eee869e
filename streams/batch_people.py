"""A vectorised fast path for department person exports: the Person model's answer, at Arrow speed.

A population register has a million rows, and ``Person.model_validate`` plus a fingerprint costs
tens of microseconds each. Almost every row of a register is plain: an 18-digit resident ID,
a Han name, a gender word, an ISO birth date, a mobile number. For such rows the model's result
follows from a handful of string and arithmetic rules that pyarrow and numpy apply to whole
columns at once. :func:`normalise_people` accepts a row only when those rules make the model's
output certain, and hands every other row back for the model, which then gives the exact
normalised value or the reject reason a person can act on. Being conservative costs a little
speed; accepting a row the model would treat differently would put a wrong record in the
warehouse, so every rule below errs towards "undecided".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ConfigDict, TypeAdapter
from pydantic_core import to_json

from schemas import TOWN_TIMEZONE
from schemas.address import normalise_address
from schemas.digests import ascii_strings, sha256_hex
from schemas.identity import RESIDENT_ID_CHECK_CHARS, RESIDENT_ID_WEIGHTS, division_codes

INPUT_FIELDS = ("id_number", "name", "gender", "birth_date", "phone", "address", "employer_uscc")
"""Person's input fields, in the order ``model_dump`` writes them; every other column is ignored, as the model does."""

_PADDING = " \t"
"""What the fast path trims: a subset of what both the model's blank test and pydantic's stripping remove,
so a value that is plain after trimming these is plain for the model too; anything else fails a rule below."""
_RESIDENT_ID = r"^[0-9]{17}[0-9Xx]$"
_HAN_NAME = r"^[\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}·]{1,200}$"
"""Han (CJK Unified Ideographs and Extension A) and the middle dot of minority names: NFKC leaves them as they
are and they hold no whitespace, so ``_tidy_name`` returns such a name unchanged, and JSON needs no escapes."""
_MOBILE = r"^1(?:[3-689][0-9]|7[0-8])[0-9]{8}$"
"""A plain mainland mobile number: libphonenumber reads it as it is, so its E.164 form is ``+86`` and it.
Not 179..: 179xx is a carrier's dialling prefix that libphonenumber strips."""
_LANDLINE = r"^0[1-9][0-9]{1,3}-?[0-9]{7,8}$"
"""A landline with its area code (``0519-8888888``): E.164 drops the trunk 0 and the dash."""
_GENDER_WORDS = pa.array(["男", "女", "male", "female", "m", "f"])
_GENDER_CODES = pa.array(["M", "F", "M", "F", "M", "F"])
"""``Person._gender_words``: matched after ASCII lower-casing, which on these words is what ``str.lower`` does."""
_ID_WEIGHTS = np.array(RESIDENT_ID_WEIGHTS, dtype=np.int64)
_ID_CHECK = np.frombuffer(RESIDENT_ID_CHECK_CHARS.encode(), np.uint8)
_DIVISIONS = np.zeros(1_000_000, dtype=bool)
_DIVISIONS[[int(code) for code in division_codes()]] = True
"""Whether each six-digit number is a GB/T 2260 division code (:func:`schemas.identity.division_codes`)."""
_FIRST_BIRTH_YEAR = 1880
_ISO_PARTS = ((6, 10), (10, 12), (12, 14))
"""Where year, month and day sit in a resident ID."""
_STRIPPED = TypeAdapter(str, config=ConfigDict(str_strip_whitespace=True))
"""pydantic's own stripping (Unicode White_Space), which differs from ``str.strip`` (that also strips \\x1c-\\x1f)."""


@dataclass(frozen=True)
class PeopleBatch:
    """The fast path's verdict on an export: rows it settled, and rows only the model can settle."""

    accepted: pa.Table
    """``row`` (index into the input), the fields of ``Person.model_dump(mode="json")`` in order, ``fingerprint``."""
    undecided: pa.Array
    """int64 indices of the input rows the caller must validate with ``Person.model_validate``."""


@dataclass(frozen=True)
class _ResidentIds:
    """What the model derives from each row's resident ID; ``valid`` is False where that is not certain."""

    valid: np.ndarray
    number: pa.Array
    gender: pa.Array
    birth_date: pa.Array


def normalise_people(table: pa.Table) -> PeopleBatch:
    """Split an export into rows accepted with the model's exact values and fingerprint, and rows for the model.

    ``table`` holds Person's input fields as text columns (any may be absent) plus columns to ignore.
    """
    columns, foreign = _text_columns(table)
    trimmed = {field: _trim(column) for field, column in columns.items()}
    ids = _resident_ids(trimmed["id_number"])
    gender = pc.take(_GENDER_CODES, pc.index_in(pc.ascii_lower(trimmed["gender"]), value_set=_GENDER_WORDS))
    decided = (
        ids.valid
        & ~foreign
        & _holds(trimmed["name"], _HAN_NAME)
        & (_absent(trimmed["gender"]) | _true(pc.equal(gender, ids.gender)))
        & (_absent(trimmed["birth_date"]) | _true(pc.equal(trimmed["birth_date"], ids.birth_date)))
        & (_absent(trimmed["phone"]) | _holds(trimmed["phone"], _MOBILE) | _holds(trimmed["phone"], _LANDLINE))
        & _absent(trimmed["employer_uscc"])
    )
    rows = pa.array(np.flatnonzero(decided), pa.int64())
    values = {
        "id_number": ids.number,
        "name": trimmed["name"],
        "gender": ids.gender,
        "birth_date": ids.birth_date,
        "phone": _e164(_blank_to_null(trimmed["phone"])),
        "address": columns["address"],
    }
    accepted = _accepted(rows, {field: column.take(rows) for field, column in values.items()})
    return PeopleBatch(accepted, pa.array(np.flatnonzero(~decided), pa.int64()))


def _text_columns(table: pa.Table) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Person's input columns as one text array each (an absent column is all null).

    A column of another type (numbers, dates) reaches the model as those Python values, whose
    handling is the model's business: the rows holding such a value are flagged as foreign.
    """
    foreign = np.zeros(table.num_rows, dtype=bool)
    columns: dict[str, pa.Array] = {}
    for field in INPUT_FIELDS:
        column = table.column(field) if field in table.column_names else None
        if column is not None and _is_text(column.type):
            columns[field] = column.cast(pa.string()).combine_chunks()
            continue
        if column is not None:
            foreign |= _true(pc.is_valid(column))
        columns[field] = pa.nulls(table.num_rows, pa.string())
    return columns, foreign


def _is_text(kind: pa.DataType) -> bool:
    """Types whose values the caller hands to the model as ``str`` (or None)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_null(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
    )


def _trim(column: pa.Array) -> pa.Array:
    """Drop the padding registers put around values; an empty result is a blank cell."""
    return pc.utf8_trim(column, _PADDING)


def _true(mask: pa.Array) -> np.ndarray:
    """A boolean column as numpy, null read as False: an unknown answer is never a yes."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _absent(trimmed: pa.Array) -> np.ndarray:
    """Cells the model drops as missing: null, or padding alone."""
    return ~_true(pc.not_equal(trimmed, ""))


def _holds(trimmed: pa.Array, pattern: str) -> np.ndarray:
    """Cells matching ``pattern`` (RE2, whole value): a null cell holds nothing."""
    return _true(pc.match_substring_regex(trimmed, pattern))


def _e164(phones: pa.Array) -> pa.Array:
    """:func:`schemas.phones.normalise_phone` of the numbers the fast path decides (plain mobiles, landlines)."""
    national = pc.if_else(
        _true(pc.match_substring_regex(phones, _LANDLINE)),
        pc.utf8_slice_codeunits(pc.replace_substring(phones, "-", ""), 1),
        phones,
    )
    return pc.binary_join_element_wise("+86", national, "")


def _blank_to_null(trimmed: pa.Array) -> pa.Array:
    """A blank optional field is absent to the model, so it is null in the dump, not an empty string."""
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _resident_ids(trimmed: pa.Array) -> _ResidentIds:
    """GB 11643 as ``normalise_resident_id`` applies it to 18-character IDs, on whole columns.

    Only plain ASCII IDs are judged here (15-digit ones, separators and full-width digits are left to the
    model): 17 digits and a check character that is right, a birthplace GB/T 2260 knows, a real birth date
    from 1880 up to today.
    Today is read once, before any row is judged, and the model reads it later: a birth date not after
    our today is not after the model's either. Every ID is then 18 bytes, so numpy reads them as a matrix.
    """
    shaped = _true(pc.match_substring_regex(trimmed, _RESIDENT_ID))
    number = pc.ascii_upper(pc.if_else(shaped, trimmed, "0" * 18))
    chars = _byte_matrix(number, 18)
    digits = chars[:, :17].astype(np.int64) - ord("0")
    year, month, day = (digits[:, a:b] @ 10 ** np.arange(b - a - 1, -1, -1) for a, b in _ISO_PARTS)
    division = digits[:, :6] @ 10 ** np.arange(5, -1, -1)
    month_start = ((year - 1970) * 12 + np.clip(month, 1, 12) - 1).astype("datetime64[M]")
    month_days = ((month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")).astype(np.int64)
    born = month_start.astype("datetime64[D]") + (day - 1)
    today = np.datetime64(datetime.now(TOWN_TIMEZONE).date())
    valid = (
        shaped
        & (chars[:, 17] == _ID_CHECK[(digits @ _ID_WEIGHTS) % 11])
        & _DIVISIONS[division]
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= month_days)
        & (year >= _FIRST_BIRTH_YEAR)
        & (born <= today)
    )
    dash = np.full((len(chars), 1), ord("-"), np.uint8)
    birth_date = ascii_strings(np.hstack([chars[:, 6:10], dash, chars[:, 10:12], dash, chars[:, 12:14]]))
    gender = pc.if_else(pa.array(digits[:, 16] % 2 == 1), "M", "F")
    return _ResidentIds(valid, number, gender, birth_date)


def _byte_matrix(texts: pa.Array, width: int) -> np.ndarray:
    """The UTF-8 bytes of a column without nulls whose values all have ``width`` bytes, one row per value."""
    _, offsets, data = texts.buffers()
    start = int(np.frombuffer(offsets, np.int32, 1, texts.offset * 4)[0])
    chars = np.frombuffer(data if data is not None else b"", np.uint8, len(texts) * width, start)
    return chars.reshape(-1, width)


def _accepted(rows: pa.Array, values: dict[str, pa.Array]) -> pa.Table:
    """The accepted rows as ``model_dump(mode="json")`` writes them, with the fingerprint of their JSON.

    ``values`` holds the normalised id_number, name, gender, birth_date and phone, and the raw address.
    Those five hold only digits, X, Han, the middle dot, ``+``, ``-`` and spaces, which JSON writes as they are.
    """
    address, address_norm, address_json, address_norm_json = _addresses(values["address"])
    number, phone = values["id_number"], values["phone"]
    record_json = pc.binary_join_element_wise(
        '{"id_number":"',
        number,
        '","name":"',
        values["name"],
        '","gender":"',
        values["gender"],
        '","birth_date":"',
        values["birth_date"],
        '","phone":',
        pc.coalesce(pc.binary_join_element_wise('"', phone, '"', ""), "null"),
        ',"address":',
        address_json,
        ',"employer_uscc":null,"match_key":"',
        number,
        '","address_norm":',
        address_norm_json,
        "}",
        "",
    )
    return pa.table(
        {
            "row": rows,
            **{field: values[field] for field in ("id_number", "name", "gender", "birth_date", "phone")},
            "address": address,
            "employer_uscc": pa.nulls(len(rows), pa.string()),
            "match_key": number,
            "address_norm": address_norm,
            "fingerprint": sha256_hex(record_json),
        }
    )


def _addresses(raw: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """Address, its matching form, and both as JSON text, computed once per distinct address.

    Addresses take any character, so rather than imitate the model, each distinct value goes through the
    model's own steps: blank is missing, pydantic's stripping, ``normalise_address``, pydantic's JSON.
    """
    encoded = pc.dictionary_encode(raw)
    forms = [_address_forms(value) for value in encoded.dictionary.to_pylist()]
    parts = zip(*forms, strict=True) if forms else ((),) * 4
    address, norm, address_json, norm_json = (pa.array(part, pa.string()).take(encoded.indices) for part in parts)
    return address, norm, pc.coalesce(address_json, "null"), pc.coalesce(norm_json, "null")


@lru_cache(maxsize=32768)
def _address_forms(value: str) -> tuple[str | None, str | None, str, str]:
    """One distinct address as the model treats it: (address, address_norm) and each as JSON text.

    Remembered across batches (about 850 bytes each, so under 30 MB): a batch of 5,000 rows holds
    few repeats, while a town's register holds some tens of thousands of households, and working
    them out batch by batch cost a first load a fifth of the worker's time (bench/PROFILE.md).
    """
    if not value.strip():
        return None, None, "null", "null"
    address = _STRIPPED.validate_python(value)
    norm = normalise_address(address)
    return address, norm, to_json(address).decode(), to_json(norm).decode()
