"""National identity codes that key people and organisations.

Both codes carry a check character, so a mistyped digit is caught at the door
instead of creating a second, phantom person or enterprise in the warehouse.
Each function returns the normalised code or raises :class:`InvalidCode` whose
message tells the data owner what exactly is wrong with the value they sent.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date, datetime
from typing import Any

from stdnum import numdb

from foundation.errors import InputRejected
from schemas import TOWN_TIMEZONE

RESIDENT_ID_WEIGHTS: tuple[int, ...] = tuple(pow(2, 17 - i, 11) for i in range(17))
"""GB 11643 (ISO 7064 MOD 11-2) weight of each of the first 17 digits of a resident ID."""
RESIDENT_ID_CHECK_CHARS = "10X98765432"
"""The check character for each remainder 0..10 of the weighted sum modulo 11."""
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""GB 32100's 31 characters (no I, O, S, V, Z), in the order that gives each its value."""
USCC_WEIGHTS: tuple[int, ...] = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
"""GB 32100 weight of each of the first 17 characters (3 to the power of the position, modulo 31)."""
ORGANISATION_CODE_WEIGHTS: tuple[int, ...] = (3, 7, 9, 10, 5, 8, 4, 2)
"""GB 11714 weight of each of the first 8 characters of an organisation code (USCC characters 9-16)."""
_SEPARATORS = re.compile(r"[\s\-]+")
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def _clean(value: object) -> str:
    """Full-width characters (common in Chinese registers) become ASCII; separators go; letters go upper."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", str(value))).upper()


def _digits(text: str) -> bool:
    return _DIGITS.fullmatch(text) is not None


class InvalidCode(InputRejected, ValueError):
    """A national code that fails its format or check-character rule.

    Also a :class:`ValueError`, so a pydantic validator that meets one reports it as a field error.
    """

    reason_code = "invalid_code"


def resident_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits (GB 11643)."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return RESIDENT_ID_CHECK_CHARS[total % 11]


def _birth_date(yyyymmdd: str) -> date:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError as exc:
        raise InvalidCode(f"resident ID has an impossible birth date {yyyymmdd}") from exc


def normalise_resident_id(value: str) -> str:
    """Return the 18-character resident ID, upgrading 15-digit numbers.

    Spaces and dashes are dropped and a lower-case ``x`` is upper-cased, since
    both are common in hand-kept registers.
    """
    code = _clean(value)
    if len(code) == 15:
        if not _digits(code):
            raise InvalidCode("a 15-digit resident ID must contain digits only")
        _birth_date("19" + code[6:12])
        first17 = code[:6] + "19" + code[6:]
        return first17 + resident_id_check_char(first17)
    if len(code) != 18:
        raise InvalidCode(f"resident ID must have 18 characters (or 15 for old cards), got {len(code)}")
    if not _digits(code[:17]) or not (_digits(code[17]) or code[17] == "X"):
        raise InvalidCode("resident ID must be 17 digits followed by a digit or X")
    born = _birth_date(code[6:14])
    if born.year < 1880 or born > datetime.now(TOWN_TIMEZONE).date():
        raise InvalidCode(f"resident ID has an implausible birth date {born.isoformat()}")
    expected = resident_id_check_char(code[:17])
    if code[17] != expected:
        raise InvalidCode(f"resident ID check character is {code[17]}, expected {expected}: a digit is mistyped")
    _known_division(code)
    return code


class UnknownDivision(InvalidCode):
    """A resident ID whose first six digits name no administrative division, present or retired."""

    reason_code = "unknown_division"


DIVISION_DIGITS = 6
"""The birthplace's county code: the first six digits of a resident ID."""


@functools.cache
def division_codes() -> frozenset[str]:
    """Every six-digit administrative division code GB/T 2260 has had, the retired ones included.

    The codes are python-stdnum's (its ``cn/loc`` table, kept with the standard's revisions).
    Unlike ``stdnum.cn.ric``, the birth year is not held against the years a code was in use: a
    card carries the code of when it was issued, often years after the birth, so a code that
    existed at any time is a birthplace a real card can show.
    """
    codes: set[str] = set()

    def walk(nodes: list[tuple[int, str, str, dict[str, str], list[Any]]], prefix: str) -> None:
        for length, low, high, _props, children in nodes:
            for number in range(int(low), int(high) + 1):
                key = prefix + str(number).zfill(length)
                if len(key) == DIVISION_DIGITS:
                    codes.add(key)
                walk(children, key)

    walk(numdb.get("cn/loc").prefixes, "")
    return frozenset(codes)


def _known_division(code: str) -> None:
    """Refuse a birthplace that GB/T 2260 never had."""
    if code[:DIVISION_DIGITS] not in division_codes():
        raise UnknownDivision(
            f"resident ID starts with {code[:6]}, which no administrative division of GB/T 2260 has ever had "
            "(the first six digits are the birthplace's county code): check the first digits against the card"
        )


def resident_id_birth_date(code: str) -> date:
    """Birth date encoded in a normalised resident ID."""
    return _birth_date(code[6:14])


def resident_id_gender(code: str) -> str:
    """``M`` or ``F`` from the sequence digit (odd means male)."""
    return "M" if int(code[16]) % 2 else "F"


def uscc_check_char(first17: str) -> str:
    """GB 32100 MOD 31 check character of the first 17 characters."""
    total = sum(USCC_ALPHABET.index(char) * weight for char, weight in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def organisation_code_check_char(first8: str) -> str:
    """GB 11714 MOD 11 check character of an organisation code's first 8 characters (digits or letters)."""
    total = sum(
        (int(char) if char.isdigit() else ord(char) - 55) * weight
        for char, weight in zip(first8, ORGANISATION_CODE_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def normalise_uscc(value: str) -> str:
    """Return the 18-character unified social credit code, verified."""
    code = _clean(value)
    if len(code) != 18:
        raise InvalidCode(f"unified social credit code must have 18 characters, got {len(code)}")
    bad = sorted({char for char in code if char not in USCC_ALPHABET})
    if bad:
        raise InvalidCode(f"unified social credit code contains characters not allowed by GB 32100: {''.join(bad)}")
    if not _digits(code[2:8]):
        raise InvalidCode("unified social credit code characters 3-8 must be a division code (digits)")
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidCode(f"unified social credit code check character is {code[17]}, expected {expected}")
    return code
