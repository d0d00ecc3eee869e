"""Personal data: which fields hold it, and how a role that may not see it whole sees it.

The classification is data (``schemas/data/personal_fields.yaml``): per warehouse table or view
and column, the mask a masked role (analyst, admin) sees; the command centre sees every value
whole. The warehouse applies the masks as views (:mod:`warehouse.masking`); the functions here
are the same masks in Python, for what leaves the hub outside the warehouse (work orders on
topics) and for the tests that hold the SQL to them. The regular expressions are shared with
the SQL, and keep to what RE2 (DuckDB's engine) knows: no lookarounds.

The masks:

- ``id_number``: ``320411**********2X``, the first 6 and last 2 of an 18-character ID; every
  digit starred otherwise.
- ``phone``: ``138****5678`` for 11 digits (after dropping separators and a ``+86``); every
  digit starred otherwise.
- ``name``: ``王*``, the first character and a star for each other one.
- ``address``: a short prefix (at most 6 characters, a third of the address), stars for the rest.
- ``birth_date``: 1 January of the birth year, still a date.
- ``pseudonym``: ``P-`` and 16 letters, a keyed hash of the value (the key is a secret of the
  warehouse): stable, so joins and GROUP BY still work, and without a digit, so it never looks
  like an ID or a phone number.
- ``hidden``: nothing (NULL).

Every other text is *scrubbed* (:func:`scrub_text`): a value that is wholly a resident ID
becomes its pseudonym (person keys are resident IDs, so a key masked anywhere still joins
``people.person_key``), and resident IDs and mobile numbers inside free text are masked in place.
"""

from __future__ import annotations

import functools
import hashlib
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foundation import packaged
from foundation.errors import ConfigurationError
from schemas.config_file import load_yaml_model

PERSONAL_FIELDS = packaged.PACKAGED_DATA / "personal_fields.yaml"
"""The shipped classification of the warehouse's columns."""

MaskKind = Literal["id_number", "phone", "name", "address", "birth_date", "pseudonym", "hidden"]
MASK_KINDS: tuple[MaskKind, ...] = get_args(MaskKind)

# The patterns, in the syntax Python's re and RE2 share. A digit of free text may be full-width
# (typed on a Chinese keyboard); the edges of a number are judged on ASCII digits only, like the
# tests' detector: a full-width digit next to an ASCII number does not hide it.
DIGIT = "[0-9０-９]"
RESIDENT_ID = "[0-9]{17}[0-9Xx]"
"""A value that is wholly a resident ID (the shape, not the check character: a mistyped ID is personal too)."""
PLACE_KEY = "[0-9]{15}[|].+"
"""A value that is wholly a place's key: its 15-digit grid cell and its normalised address (a house is a home)."""
SHORTEST_NUMBER = 11
"""Characters of the shortest number masked (a mobile number): shorter text is left as it is (a fast way past)."""
ID_IN_TEXT = f"(^|[^0-9])({DIGIT}{{6}})[ -]?{DIGIT}{{8}}[ -]?{DIGIT}{{2}}({DIGIT}[0-9０-９XxＸｘ])([^0-9]|$)"
"""An 18-character resident ID inside text, possibly written 6-8-4 with spaces or dashes."""
ID_IN_TEXT_MASK = r"\1\2**********\3\4"
PHONE_IN_TEXT = f"(^|[^0-9])(\\+?86[ -]?)?([1１][3-9３-９]{DIGIT})[ -]?{DIGIT}{{4}}[ -]?({DIGIT}{{4}})([^0-9]|$)"
"""A mainland mobile number inside text (1[3-9]x xxxx xxxx), with or without +86 and separators."""
PHONE_IN_TEXT_MASK = r"\1\2\3****\4\5"
IN_TEXT_PASSES = 2
"""Each pattern consumes the character after a number, so one that follows another after a single
character is missed by the first pass; the second finds it (the one before is masked by then)."""
PSEUDONYM_PREFIX = "P-"
PSEUDONYM_LENGTH = 16
"""Hex characters of the keyed SHA-256 kept (64 bits: no collision in a town's population)."""
DIGITS_TO_LETTERS = ("0123456789", "ghijklmnop")
"""Hex digits become letters past ``f``, so a pseudonym has no digit and keeps 16 symbols."""

_RESIDENT_ID = re.compile(RESIDENT_ID)
_PLACE_KEY = re.compile(PLACE_KEY)
_LOWER_X_ID = re.compile("[0-9]{17}x")
_ID_IN_TEXT = re.compile(ID_IN_TEXT)
_PHONE_IN_TEXT = re.compile(PHONE_IN_TEXT)
_A_DIGIT = re.compile(DIGIT)
_NOT_A_DIGIT = re.compile("[^0-9０-９]")
_TO_LETTERS = str.maketrans(*DIGITS_TO_LETTERS)

PERSONAL_SOUNDING = re.compile(
    "name|phone|mobile|address|id_number|id_card|birth|person|resident|actor|reporter|worker|applicant|"
    "decided_by|representative|contact|owner|email|household"
)
"""Column names that sound personal: each such column must be classified or listed as not personal."""


class PersonalFieldsError(ConfigurationError):
    """The classification file is unusable; the message says where and why."""


class ByField(BaseModel):
    """A view whose rows carry the value of any field of a source copy (``field_lineage``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str = Field(description="Column naming the entity kind: the value is masked as <kind>_sources.<field>.")
    field: str = Field(description="Column naming the field the value belongs to.")
    value: str = Field(description="Column holding the value, as text.")


class PersonalFields(BaseModel):
    """The whole classification."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    relations: dict[str, dict[str, MaskKind]]
    by_field: dict[str, ByField] = Field(default_factory=dict)
    not_personal: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_decision_per_column(self) -> PersonalFields:
        both = sorted(
            f"{relation}.{column}"
            for relation, columns in self.not_personal.items()
            for column in columns
            if column in self.relations.get(relation, {})
            or (relation in self.by_field and column == self.by_field[relation].value)
        )
        if both:
            raise ValueError(f"classified as personal and as not personal: {', '.join(both)}")
        return self

    def mask_of(self, relation: str, column: str) -> MaskKind | None:
        """The mask of one column, or None when it is only scrubbed.

        A history table (``people_history``) holds the versions of its table's rows, so it is
        masked as that table is: one classification, never two that can drift apart.
        """
        return self.relations.get(_current(relation), {}).get(column)

    def field_masks(self, kind: str) -> dict[str, MaskKind]:
        """The masks of the fields of a source copy of ``kind`` (a person, an organisation, ...)."""
        return dict(self.relations.get(f"{kind}_sources", {}))

    def source_kinds(self) -> tuple[str, ...]:
        """The kinds whose source copies have classified fields."""
        return tuple(sorted(name.removesuffix("_sources") for name in self.relations if name.endswith("_sources")))

    def reviewed(self, relation: str, column: str) -> bool:
        """Whether a decision was taken on the column: classified, masked by field, or listed as not personal."""
        by_field = self.by_field.get(relation)
        return (
            self.mask_of(relation, column) is not None
            or (by_field is not None and column == by_field.value)
            or column in self.not_personal.get(_current(relation), [])
        )


HISTORY_SUFFIX = "_history"
"""Suffix of the table that keeps the versions of a table's rows (warehouse/history.py)."""


def _current(relation: str) -> str:
    """The table whose versions ``relation`` keeps, or ``relation`` itself."""
    return relation.removesuffix(HISTORY_SUFFIX)


@functools.cache
def load_personal_fields(path: Path = PERSONAL_FIELDS) -> PersonalFields:
    """Read and check a classification file (the shipped one by default)."""
    return load_yaml_model(path, PersonalFields, "personal-data classification", PersonalFieldsError)


def looks_personal(column: str) -> bool:
    """Whether a column's name sounds like personal data (see :data:`PERSONAL_SOUNDING`)."""
    return PERSONAL_SOUNDING.search(column.lower()) is not None


def mask_id_number(value: str) -> str:
    """``320411**********2X``: first 6 and last 2 of an 18-character ID; every digit starred otherwise."""
    if len(value) == 18:
        return value[:6] + "*" * 10 + value[16:]
    return _A_DIGIT.sub("*", value)


def mask_phone(value: str) -> str:
    """``138****5678`` for 11 digits (a ``+86`` and separators dropped); every digit starred otherwise."""
    digits = _NOT_A_DIGIT.sub("", value)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) == 11:
        return digits[:3] + "****" + digits[7:]
    return _A_DIGIT.sub("*", value)


def mask_name(value: str) -> str:
    """``王*``: the first character and a star for each other one (a one-character name is a star)."""
    if len(value) <= 1:
        return "*" * len(value)
    return value[0] + "*" * (len(value) - 1)


def address_prefix_length(length: int) -> int:
    """Characters of an address of ``length`` characters left readable: a third, at most 6."""
    return min(6, length // 3)


def mask_address(value: str) -> str:
    """A short prefix of the address (the town, the road) and a star for every other character."""
    keep = address_prefix_length(len(value))
    return value[:keep] + "*" * (len(value) - keep)


def mask_birth_date(value: date) -> date:
    """1 January of the birth year: the age stays, the day goes."""
    return date(value.year, 1, 1)


def pseudonym(value: str, secret: str) -> str:
    """``P-`` and 16 letters: the same for the same value and secret, and no digit in it.

    An ID written with a lower-case ``x`` has the pseudonym of the upper-case one (the key of the person).
    """
    normal = value.upper() if _LOWER_X_ID.fullmatch(value) else value
    digest = hashlib.sha256(f"{secret}:{normal}".encode()).hexdigest()[:PSEUDONYM_LENGTH]
    return PSEUDONYM_PREFIX + digest.translate(_TO_LETTERS)


def scrub_text(text: str, secret: str | None = None) -> str:
    """Text with no resident ID and no mobile number left whole.

    A value that is wholly a resident ID or a place's key (which holds its address) becomes its
    pseudonym (given the ``secret``; without one it is masked like any ID or address); IDs and
    mobile numbers inside the text are masked in place.
    """
    if len(text) < SHORTEST_NUMBER:
        return text
    if _RESIDENT_ID.fullmatch(text):
        return pseudonym(text.upper(), secret) if secret is not None else mask_id_number(text)
    if _PLACE_KEY.fullmatch(text):
        return pseudonym(text, secret) if secret is not None else mask_address(text)
    for _ in range(IN_TEXT_PASSES):
        text = _ID_IN_TEXT.sub(ID_IN_TEXT_MASK, text)
    for _ in range(IN_TEXT_PASSES):
        text = _PHONE_IN_TEXT.sub(PHONE_IN_TEXT_MASK, text)
    return text


def mask_value(kind: MaskKind | None, value: Any, secret: str | None = None) -> Any:
    """``value`` as a masked role sees it under the mask ``kind`` (None: scrubbed, when it is text)."""
    if value is None or kind == "hidden":
        return None
    if kind == "birth_date":
        if isinstance(value, date):
            return mask_birth_date(value)
        try:
            return mask_birth_date(date.fromisoformat(str(value))).isoformat()
        except ValueError:
            return None
    if isinstance(value, list):
        return [mask_value(kind, item, secret) for item in value]
    if not isinstance(value, str):
        return value
    if kind == "pseudonym":
        if secret is None:
            raise ValueError("a pseudonym needs the warehouse's secret")
        return pseudonym(value, secret)
    masks = {"id_number": mask_id_number, "phone": mask_phone, "name": mask_name, "address": mask_address}
    return masks[kind](value) if kind in masks else scrub_text(value, secret)
