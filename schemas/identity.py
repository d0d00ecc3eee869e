"""National identity codes that key people and organisations.

Both codes carry a check character, so a mistyped digit is caught at the door
instead of creating a second, phantom person or enterprise in the warehouse.
Each function returns the normalised code or raises :class:`InvalidCode` whose
message tells the data owner what exactly is wrong with the value they sent.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from schemas import TOWN_TIMEZONE

_RESIDENT_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_RESIDENT_CHECK = "10X98765432"
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
_SEPARATORS = re.compile(r"[\s\-]+")
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def _clean(value: object) -> str:
    """Full-width characters (common in Chinese registers) become ASCII; separators go; letters go upper."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", str(value))).upper()


def _digits(text: str) -> bool:
    return _DIGITS.fullmatch(text) is not None


class InvalidCode(ValueError):
    """A national code that fails its format or check-character rule."""


def resident_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits (GB 11643)."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _RESIDENT_WEIGHTS, strict=True))
    return _RESIDENT_CHECK[total % 11]


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
    return code


def resident_id_birth_date(code: str) -> date:
    """Birth date encoded in a normalised resident ID."""
    return _birth_date(code[6:14])


def resident_id_gender(code: str) -> str:
    """``M`` or ``F`` from the sequence digit (odd means male)."""
    return "M" if int(code[16]) % 2 else "F"


def uscc_check_char(first17: str) -> str:
    """GB 32100 MOD 31 check character of the first 17 characters."""
    total = sum(_USCC_ALPHABET.index(char) * weight for char, weight in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def normalise_uscc(value: str) -> str:
    """Return the 18-character unified social credit code, verified."""
    code = _clean(value)
    if len(code) != 18:
        raise InvalidCode(f"unified social credit code must have 18 characters, got {len(code)}")
    bad = sorted({char for char in code if char not in _USCC_ALPHABET})
    if bad:
        raise InvalidCode(f"unified social credit code contains characters not allowed by GB 32100: {''.join(bad)}")
    if not _digits(code[2:8]):
        raise InvalidCode("unified social credit code characters 3-8 must be a division code (digits)")
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidCode(f"unified social credit code check character is {code[17]}, expected {expected}")
    return code
