"""The masks of personal data in Python, and the classification file they are applied by."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.identity import division_codes, resident_id_check_char
from schemas.personal import (
    PersonalFields,
    PersonalFieldsError,
    load_personal_fields,
    looks_personal,
    mask_address,
    mask_birth_date,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_value,
    pseudonym,
    scrub_text,
)
from tests.support.identities import FULL_ID, FULL_MOBILE

BEIJING_WOMAN = "11010519491231002X"
SECRET = "a-warehouse-secret"


def resident_ids() -> st.SearchStrategy[str]:
    """Valid resident IDs: a division, a birth date, a sequence and the right check character."""
    return st.builds(
        lambda division, born, sequence: (
            (first17 := f"{division}{born:%Y%m%d}{sequence:03d}") + resident_id_check_char(first17)
        ),
        st.sampled_from(sorted(division_codes())),
        st.dates(date(1930, 1, 1), date(2020, 12, 31)),
        st.integers(0, 999),
    )


def mobiles() -> st.SearchStrategy[str]:
    return st.builds(lambda second, rest: f"1{second}{rest:09d}", st.sampled_from("3456789"), st.integers(0, 10**9 - 1))


def free_text() -> st.SearchStrategy[str]:
    """Text with IDs and mobile numbers among words, digits and punctuation, joined in every way."""
    words = st.text(alphabet="孟河镇通江路号室报修ab X-:，,。 0123456789０１２", max_size=8)
    ids = resident_ids().flatmap(
        lambda code: st.sampled_from([code, code.lower(), f"{code[:6]} {code[6:14]} {code[14:]}"])
    )
    phones = mobiles().flatmap(
        lambda number: st.sampled_from([number, f"+86{number}", f"{number[:3]}-{number[3:7]}-{number[7:]}"])
    )
    return st.lists(st.one_of(words, ids, phones), max_size=8).map("".join)


def test_an_18_character_id_keeps_its_first_six_and_last_two() -> None:
    assert mask_id_number("320411198002030021") == "320411**********21"
    assert mask_id_number(BEIJING_WOMAN) == "110105**********2X"


def test_an_id_of_another_length_has_every_digit_starred() -> None:
    assert mask_id_number("320411800203002") == "***************"
    assert mask_id_number("ID 12-34") == "ID **-**"


def test_a_mobile_number_keeps_three_and_four_digits_whatever_its_spelling() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phone("0519-88881234") == "****-********"


def test_a_name_keeps_its_first_character() -> None:
    assert mask_name("王芳") == "王*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("王") == "*"
    assert mask_name("") == ""


def test_an_address_keeps_a_short_prefix() -> None:
    assert mask_address("江苏省常州市新北区孟河镇通江路12号") == "江苏省常州市" + "*" * 12
    assert mask_address("通江路12号") == "通江" + "*" * 4
    assert mask_address("12号") == "1**"
    assert mask_address("1号") == "**"


def test_a_birth_date_keeps_its_year_and_stays_a_date() -> None:
    assert mask_birth_date(date(1949, 12, 31)) == date(1949, 1, 1)
    assert mask_value("birth_date", "1949-12-31") == "1949-01-01"
    assert mask_value("birth_date", "not a date") is None


def test_a_pseudonym_is_stable_keyed_and_has_no_digit() -> None:
    assert pseudonym("GW017", SECRET) == pseudonym("GW017", SECRET)
    assert pseudonym("GW017", SECRET) != pseudonym("GW018", SECRET)
    assert pseudonym("GW017", SECRET) != pseudonym("GW017", "another warehouse")
    assert re.fullmatch("P-[a-p]{16}", pseudonym("GW017", SECRET))
    assert pseudonym(BEIJING_WOMAN.lower(), SECRET) == pseudonym(BEIJING_WOMAN, SECRET)


def test_a_value_that_is_wholly_an_id_becomes_its_pseudonym() -> None:
    assert scrub_text(BEIJING_WOMAN, SECRET) == pseudonym(BEIJING_WOMAN, SECRET)
    assert scrub_text(BEIJING_WOMAN.lower(), SECRET) == pseudonym(BEIJING_WOMAN, SECRET)
    assert scrub_text(BEIJING_WOMAN) == "110105**********2X"


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("举报人110105194912310021电话13812345678", "举报人110105**********21电话138****5678"),
        ("ids 110105194912310021,110105194912310021,110105194912310021", "ids " + ",".join(["110105**********21"] * 3)),
        ("tel 138-1234-5678 or +8613912345678.", "tel 138****5678 or +86139****5678."),
        ("card 110105 19491231 002X end", "card 110105**********2X end"),
        ("no number here", "no number here"),
        ("order 1234567890123456789 is not an ID", "order 1234567890123456789 is not an ID"),
        ("电话１３８１２３４５６７８", "电话１３８****５６７８"),
    ],
)
def test_ids_and_mobile_numbers_inside_text_are_masked_in_place(text: str, scrubbed: str) -> None:
    assert scrub_text(text, SECRET) == scrubbed


@settings(max_examples=300)
@given(free_text())
def test_no_scrubbed_text_holds_a_whole_id_or_mobile_number(text: str) -> None:
    scrubbed = scrub_text(text, SECRET)
    assert not FULL_ID.search(scrubbed), (text, scrubbed)
    assert not FULL_MOBILE.search(scrubbed), (text, scrubbed)


@given(resident_ids(), mobiles(), st.text(min_size=1, max_size=20))
def test_no_mask_of_a_personal_field_holds_an_id_or_a_mobile_number(code: str, number: str, name: str) -> None:
    for kind, value in [("id_number", code), ("phone", number), ("name", name + code), ("address", number + code)]:
        masked = mask_value(kind, value, SECRET)
        assert not FULL_ID.search(masked) and not FULL_MOBILE.search(masked), (kind, value, masked)
    assert not re.search("[0-9]", mask_value("pseudonym", code, SECRET))
    assert mask_value("hidden", code, SECRET) is None


def test_the_shipped_classification_loads() -> None:
    fields = load_personal_fields()
    assert fields.mask_of("people", "id_number") == "id_number"
    assert fields.mask_of("people", "person_key") == "pseudonym"
    assert fields.mask_of("rejects", "payload") == "hidden"
    assert fields.mask_of("events", "description") is None
    assert fields.field_masks("person")["name"] == "name"
    assert "organisation" in fields.source_kinds()


def test_a_column_cannot_be_both_personal_and_not(tmp_path: Path) -> None:
    path = tmp_path / "personal.yaml"
    path.write_text("relations: {people: {name: name}}\nnot_personal: {people: [name]}\n")
    with pytest.raises(PersonalFieldsError, match=r"people\.name"):
        load_personal_fields(path)
    with pytest.raises(ValueError, match="unknown mask"):
        PersonalFields.model_validate({"relations": {"people": {"name": "unknown mask"}}})


def test_personal_sounding_names() -> None:
    assert all(map(looks_personal, ["name", "legal_representative_id", "reporter_id", "actor", "decided_by"]))
    assert not any(map(looks_personal, ["status", "category", "grid_code", "fingerprint"]))


def test_a_place_key_which_holds_an_address_becomes_a_pseudonym_or_is_masked() -> None:
    key = "320411101001001|孟河镇通江路12号"
    hidden = scrub_text(key, SECRET)
    assert hidden.startswith("P-") and "通江路" not in hidden
    assert hidden == scrub_text(key, SECRET), "the same key has the same pseudonym, so joins hold"
    assert "12号" not in scrub_text(key)
