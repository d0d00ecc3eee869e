"""GB 11643 resident IDs and GB 32100 unified social credit codes."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.identity import (
    InvalidCode,
    normalise_resident_id,
    normalise_uscc,
    resident_id_birth_date,
    resident_id_check_char,
    resident_id_gender,
    uscc_check_char,
)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def test_published_resident_id_example_is_valid() -> None:
    assert normalise_resident_id("11010519491231002X") == "11010519491231002X"


def test_lower_case_x_spaces_and_dashes_are_normalised() -> None:
    assert normalise_resident_id(" 110105-19491231-002x ") == "11010519491231002X"


def test_fifteen_digit_card_is_upgraded_to_eighteen() -> None:
    assert normalise_resident_id("110105491231002") == "11010519491231002X"


def test_birth_date_and_gender_come_from_the_code() -> None:
    code = "11010519491231002X"
    assert resident_id_birth_date(code).isoformat() == "1949-12-31"
    assert resident_id_gender(code) == "F"
    first17 = "32041119800101001"
    assert resident_id_gender(first17 + resident_id_check_char(first17)) == "M"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("11010519491231002", "18 characters"),
        ("11010519491231002Y", "17 digits followed by a digit or X"),
        ("110105194913310020", "impossible birth date"),
        ("110105187001010010", "implausible birth date"),
        ("110105194912310021", "expected X"),
        ("11010549123100A", "digits only"),
    ],
)
def test_invalid_resident_ids_say_what_is_wrong(value: str, fragment: str) -> None:
    with pytest.raises(InvalidCode, match=fragment):
        normalise_resident_id(value)


def test_published_uscc_example_is_valid_and_upper_cased() -> None:
    assert normalise_uscc("91350100m000100y43") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("91350100M000100Y4", "18 characters"),
        ("91350100M000100Y4I", "not allowed"),
        ("91ABCDEFM000100Y43", "division code"),
        ("91350100M000100Y44", "expected 3"),
    ],
)
def test_invalid_usccs_say_what_is_wrong(value: str, fragment: str) -> None:
    with pytest.raises(InvalidCode, match=fragment):
        normalise_uscc(value)


births = st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31))


@given(division=st.from_regex(r"\A[1-6][0-9]{5}\Z"), born=births, sequence=st.integers(0, 999))
def test_every_well_formed_resident_id_round_trips(division: str, born: date, sequence: int) -> None:
    first17 = f"{division}{born:%Y%m%d}{sequence:03d}"
    code = first17 + resident_id_check_char(first17)
    assert normalise_resident_id(code) == code


@given(division=st.from_regex(r"\A[1-6][0-9]{5}\Z"), born=births, sequence=st.integers(0, 999), data=st.data())
def test_any_single_digit_substitution_in_a_resident_id_is_caught(
    division: str, born: date, sequence: int, data: st.DataObject
) -> None:
    first17 = f"{division}{born:%Y%m%d}{sequence:03d}"
    code = first17 + resident_id_check_char(first17)
    position = data.draw(st.integers(0, 17))
    replacement = data.draw(st.sampled_from([c for c in "0123456789X" if c != code[position]]))
    if position < 17 and replacement == "X":
        replacement = "0" if code[position] != "0" else "1"
    mutated = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(InvalidCode):
        normalise_resident_id(mutated)


@given(body=st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9), data=st.data())
def test_any_single_character_substitution_in_a_uscc_is_caught(body: str, data: st.DataObject) -> None:
    first17 = "91320411" + body
    code = first17 + uscc_check_char(first17)
    assert normalise_uscc(code) == code
    position = data.draw(st.sampled_from([0, 1, *range(8, 18)]))
    replacement = data.draw(st.sampled_from([c for c in USCC_ALPHABET if c != code[position]]))
    with pytest.raises(InvalidCode):
        normalise_uscc(code[:position] + replacement + code[position + 1 :])
