"""Valid identities for tests, each never issued before in the session, and deliberately wrong ones."""

from __future__ import annotations

import random
import re

from schemas.identity import USCC_ALPHABET, resident_id_check_char, uscc_check_char

_issued: set[str] = set()
FULL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
"""A whole resident ID anywhere in a text: what no masked output may contain."""
FULL_MOBILE = re.compile(r"(?<![0-9])(?:\+?86)?1[3-9][0-9]{9}(?![0-9])")
"""A whole mainland mobile number anywhere in a text, as written or in E.164 (+86...): what no masked output
may contain."""


def resident_id(division: str = "320411") -> str:
    """A valid resident ID never issued before in this session."""
    while True:
        born = f"19{random.randint(40, 99)}{random.randint(1, 12):02d}{random.randint(1, 28):02d}"
        code = with_check(f"{division}{born}{random.randint(0, 999):03d}")
        if code not in _issued:
            _issued.add(code)
            return code


def mobile() -> str:
    """A valid mainland mobile number never issued before in this session.

    Deriving one from a resident ID is tempting but wrong one time in eleven: the ID's check
    character may be X.
    """
    while True:
        number = f"1{random.choice('3456789')}{random.randint(0, 999_999_999):09d}"
        if number not in _issued:
            _issued.add(number)
            return number


def uscc() -> str:
    """A valid unified social credit code never issued before in this session."""
    while True:
        first17 = "91320411" + "".join(random.choice(USCC_ALPHABET) for _ in range(9))
        code = first17 + uscc_check_char(first17)
        if code not in _issued:
            _issued.add(code)
            return code


def with_check(first17: str) -> str:
    """The resident ID with these 17 digits and its right check character."""
    return first17 + resident_id_check_char(first17)


def with_wrong_check(first17: str) -> str:
    """The resident ID with these 17 digits and a wrong check character: a typo at the desk."""
    right = resident_id_check_char(first17)
    return first17 + ("1" if right == "0" else "0")
