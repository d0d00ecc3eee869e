"""Normalised addresses: one spelling per location, so registers can be matched on it.

Departments write the same house many ways: with or without the province, city,
district and town in front, full-width digits, Chinese numerals (十二号 / 12号),
spaces and punctuation. The normal form drops what does not tell two locations in
the town apart and unifies what does; it is a matching key, never shown as the address.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from functools import lru_cache

_ADMIN_PREFIX = re.compile(
    r"^(?:中国)?(?:[^省市]{2,7}(?:省|自治区))?(?:[^市区县]{2,7}市)?(?:[^区县市]{1,5}(?:(?<![小社园景校厂])区|县))?(?:[^镇乡]{2,5}(?:镇|乡|街道))?"
)
_NOISE = re.compile(r"[\s\-_,，。.、·()（）\[\]【】#＃/\\'\"]+")
_CHINESE_NUMERAL = re.compile(r"[零〇一二两三四五六七八九十百千]")
_UNIT_WORDS = (("号楼", "幢"), ("栋", "幢"), ("弄", "号"))


def _arabic_numerals(text: str) -> str:
    """十二号 → 12号, 一组 → 1组; cn2an warns on fragments it leaves alone (万绥), which is fine.

    cn2an is imported here, on the first address that needs it: importing it takes about 0.3 s,
    and every process that reads a record's schema (each ``gridhub`` command) paid it at start.
    """
    if not _CHINESE_NUMERAL.search(text):
        return text
    import cn2an

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(cn2an.transform(text, "cn2an"))


@lru_cache(maxsize=65536)
def normalise_address(address: str | None) -> str | None:
    """The matching form of an address, or None when nothing addressable is left."""
    if address is None:
        return None
    text = unicodedata.normalize("NFKC", address).strip()
    text = _NOISE.sub("", text)
    text = _ADMIN_PREFIX.sub("", text, count=1)
    text = _arabic_numerals(text)
    for variant, canonical in _UNIT_WORDS:
        text = text.replace(variant, canonical)
    text = text.upper()
    return text or None
