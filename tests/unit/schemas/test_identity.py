"""GB 11643 resident IDs and GB 32100 unified social credit codes: format, check characters, derived facts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.identity import (
    InvalidCode,
    UnknownDivision,
    division_codes,
    normalise_resident_id,
    normalise_uscc,
    resident_id_birth_date,
    resident_id_check_char,
    resident_id_gender,
    uscc_check_char,
)

# The two worked examples printed in GB 11643-1999.
BEIJING_WOMAN = "11010519491231002X"
SHANTOU_MAN = "440524188001010014"
# The worked example printed in GB 32100-2015.
PUBLISHED_USCC = "91350100M000100Y43"

DIGITS = "0123456789"
# GB 32100 leaves out I, O, Z, S and V so they cannot be confused with digits.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def with_check(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def with_uscc_check(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def replace_at(code: str, position: int, char: str) -> str:
    return code[:position] + char + code[position + 1 :]


# Strategies ---------------------------------------------------------------------------------------

divisions = st.sampled_from(sorted(division_codes()))
never_divisions = st.text(alphabet=DIGITS, min_size=6, max_size=6).filter(lambda code: code not in division_codes())
births = st.dates(min_value=date(1880, 1, 1), max_value=date(2020, 12, 31))
sequences = st.integers(min_value=0, max_value=999)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    """A valid 18-character resident ID with a real birth date and a computed check character."""
    born = draw(births)
    return with_check(f"{draw(divisions)}{born:%Y%m%d}{draw(sequences):03d}")


@st.composite
def usccs(draw: st.DrawFn) -> str:
    """A valid USCC: any allowed characters, except a 6-digit division code in positions 3-8."""
    head = draw(st.text(alphabet=USCC_ALPHABET, min_size=2, max_size=2))
    division = draw(st.text(alphabet=DIGITS, min_size=6, max_size=6))
    body = draw(st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9))
    first17 = head + division + body
    return first17 + uscc_check_char(first17)


# Resident ID: check character -----------------------------------------------------------------------


def test_check_character_of_the_published_examples() -> None:
    assert resident_id_check_char(BEIJING_WOMAN[:17]) == "X"
    assert resident_id_check_char(SHANTOU_MAN[:17]) == "4"


def test_check_character_needs_exactly_seventeen_digits() -> None:
    with pytest.raises(ValueError):
        resident_id_check_char(BEIJING_WOMAN[:16])
    with pytest.raises(ValueError):
        resident_id_check_char(BEIJING_WOMAN)


@given(first17=st.text(alphabet=DIGITS, min_size=17, max_size=17))
def test_check_character_satisfies_iso_7064_mod_11_2(first17: str) -> None:
    """Independent restatement: sum of digit * 2^(17-i) plus the check value (X = 10) is 1 modulo 11."""
    check = resident_id_check_char(first17)
    check_value = 10 if check == "X" else int(check)
    total = sum(int(digit) * 2 ** (17 - i) for i, digit in enumerate(first17)) + check_value
    assert total % 11 == 1


# Resident ID: accepted inputs -----------------------------------------------------------------------


@pytest.mark.parametrize("code", [BEIJING_WOMAN, SHANTOU_MAN])
def test_published_resident_ids_are_valid_and_unchanged(code: str) -> None:
    assert normalise_resident_id(code) == code


@pytest.mark.parametrize(
    "written",
    [
        "11010519491231002x",
        " 11010519491231002X ",
        "110105 19491231 002X",
        "110105-19491231-002x",
        "110105 - 1949 1231 - 002 X",
        "11010519491231002X\t\n",
    ],
)
def test_lower_case_x_spaces_and_dashes_are_normalised_away(written: str) -> None:
    assert normalise_resident_id(written) == BEIJING_WOMAN


def test_fifteen_digit_card_is_upgraded_with_century_and_check_character() -> None:
    assert normalise_resident_id("110105491231002") == BEIJING_WOMAN


def test_fifteen_digit_card_always_means_the_twentieth_century() -> None:
    """GB 11643 inserts "19"; an 1880 birth (like the Shantou example) has no 15-digit form."""
    assert normalise_resident_id("440524800101001") == "440524198001010013"


def test_fifteen_digit_card_with_separators_is_upgraded() -> None:
    assert normalise_resident_id("110105-491231-002") == BEIJING_WOMAN


def test_leap_day_birth_date_is_accepted() -> None:
    code = with_check("32041120000229001")
    assert normalise_resident_id(code) == code


def test_earliest_plausible_birth_year_is_accepted() -> None:
    code = with_check("32041118800101001")
    assert normalise_resident_id(code) == code


# Resident ID: rejected inputs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "length"),
    [("", 0), ("11010519491231002", 17), ("11010519491231002X0", 19), ("1101054912310", 13), ("1101054912310021", 16)],
)
def test_wrong_length_is_refused_with_the_length_found(value: str, length: int) -> None:
    with pytest.raises(InvalidCode, match=rf"18 characters \(or 15 for old cards\), got {length}$"):
        normalise_resident_id(value)


@pytest.mark.parametrize(
    "value",
    ["11010519491231002Y", "1101051949123100XX", "A1010519491231002X", "110105194912310O2X", "11010519491231002*"],
)
def test_non_digits_in_an_eighteen_character_id_are_refused(value: str) -> None:
    with pytest.raises(InvalidCode, match="17 digits followed by a digit or X"):
        normalise_resident_id(value)


@pytest.mark.parametrize("value", ["11010549123100X", "11010549123100x", "1101054912310A2"])
def test_non_digits_in_a_fifteen_digit_card_are_refused(value: str) -> None:
    with pytest.raises(InvalidCode, match="15-digit resident ID must contain digits only"):
        normalise_resident_id(value)


@pytest.mark.parametrize(
    "yyyymmdd",
    ["19491301", "19490001", "19490230", "19490100", "19490132", "19230229", "19000229", "00000101"],
)
def test_impossible_birth_date_is_refused_and_quoted(yyyymmdd: str) -> None:
    code = with_check(f"110105{yyyymmdd}002")
    with pytest.raises(InvalidCode, match=f"impossible birth date {yyyymmdd}"):
        normalise_resident_id(code)


@pytest.mark.parametrize("yymmdd", ["491301", "490230", "490100", "230229"])
def test_impossible_birth_date_on_a_fifteen_digit_card_is_refused(yymmdd: str) -> None:
    with pytest.raises(InvalidCode, match=f"impossible birth date 19{yymmdd}"):
        normalise_resident_id(f"110105{yymmdd}002")


def test_birth_before_1880_is_implausible() -> None:
    with pytest.raises(InvalidCode, match="implausible birth date 1879-12-31"):
        normalise_resident_id(with_check("11010518791231002"))


def test_birth_in_the_future_is_implausible() -> None:
    future = datetime.now(UTC).date() + timedelta(days=400)
    with pytest.raises(InvalidCode, match=f"implausible birth date {future.isoformat()}"):
        normalise_resident_id(with_check(f"110105{future:%Y%m%d}002"))


@pytest.mark.parametrize("wrong", list(DIGITS))
def test_wrong_check_character_names_the_one_expected(wrong: str) -> None:
    with pytest.raises(InvalidCode, match=f"check character is {wrong}, expected X"):
        normalise_resident_id(BEIJING_WOMAN[:17] + wrong)


def test_x_where_a_digit_is_expected_is_refused_naming_the_digit() -> None:
    with pytest.raises(InvalidCode, match="check character is X, expected 4"):
        normalise_resident_id(SHANTOU_MAN[:17] + "X")


def test_invalid_code_is_a_value_error_so_pydantic_reports_it() -> None:
    assert issubclass(InvalidCode, ValueError)


def test_non_string_input_is_read_as_text() -> None:
    assert normalise_resident_id(110105491231002) == BEIJING_WOMAN  # type: ignore[arg-type]


def test_full_width_digits_are_not_kept_as_a_different_key() -> None:
    full_width = BEIJING_WOMAN[:17].translate(str.maketrans(DIGITS, "０１２３４５６７８９")) + "X"
    try:
        result = normalise_resident_id(full_width)
    except InvalidCode:
        return  # refusing is as good as converting
    assert result == BEIJING_WOMAN


def test_superscript_digit_outside_the_birth_date_raises_invalid_code() -> None:
    with pytest.raises(InvalidCode):
        normalise_resident_id(replace_at(BEIJING_WOMAN, 15, "²"))


# Resident ID: derived facts ---------------------------------------------------------------------------


def test_birth_date_is_read_from_the_code() -> None:
    assert resident_id_birth_date(BEIJING_WOMAN) == date(1949, 12, 31)
    assert resident_id_birth_date(SHANTOU_MAN) == date(1880, 1, 1)


@pytest.mark.parametrize(("sequence_digit", "gender"), [(str(d), "M" if d % 2 else "F") for d in range(10)])
def test_gender_is_odd_male_even_female_on_the_seventeenth_digit(sequence_digit: str, gender: str) -> None:
    assert resident_id_gender(with_check(f"3204111980010100{sequence_digit}")) == gender


def test_published_examples_have_the_documented_genders() -> None:
    assert resident_id_gender(BEIJING_WOMAN) == "F"
    assert resident_id_gender(SHANTOU_MAN) == "M"


@given(born=births, sequence=sequences, division=divisions)
def test_birth_date_and_gender_round_trip_through_the_code(born: date, sequence: int, division: str) -> None:
    code = with_check(f"{division}{born:%Y%m%d}{sequence:03d}")
    assert resident_id_birth_date(code) == born
    assert resident_id_gender(code) == ("M" if sequence % 2 else "F")


# Resident ID: properties ------------------------------------------------------------------------------


@given(code=resident_ids())
def test_any_valid_resident_id_normalises_to_itself(code: str) -> None:
    assert normalise_resident_id(code) == code
    assert normalise_resident_id(code.lower()) == code


@given(code=resident_ids())
def test_normalising_is_idempotent(code: str) -> None:
    once = normalise_resident_id(f" {code[:6]}-{code[6:14]}-{code[14:].lower()} ")
    assert normalise_resident_id(once) == once == code


@given(division=divisions, born=st.dates(date(1900, 1, 1), date(1999, 12, 31)), sequence=sequences)
def test_every_fifteen_digit_card_upgrades_to_a_valid_eighteen(division: str, born: date, sequence: int) -> None:
    old = f"{division}{born:%y%m%d}{sequence:03d}"
    new = normalise_resident_id(old)
    assert new == with_check(f"{division}{born:%Y%m%d}{sequence:03d}")
    assert normalise_resident_id(new) == new


@given(code=resident_ids())
def test_mod_11_2_detects_every_single_digit_substitution_in_the_first_17(code: str) -> None:
    """The checksum alone: weights 2^k are non-zero mod the prime 11 and digit differences are below 11."""
    for position in range(17):
        for digit in DIGITS:
            if digit != code[position]:
                assert resident_id_check_char(replace_at(code, position, digit)[:17]) != code[17]


@given(code=resident_ids())
def test_every_single_character_substitution_makes_a_resident_id_invalid(code: str) -> None:
    for position in range(18):
        alphabet = DIGITS + "X"
        for char in alphabet:
            if char != code[position]:
                with pytest.raises(InvalidCode):
                    normalise_resident_id(replace_at(code, position, char))


@given(code=resident_ids())
def test_every_adjacent_transposition_makes_a_resident_id_invalid(code: str) -> None:
    for position in range(17):
        swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
        if swapped != code:
            with pytest.raises(InvalidCode):
                normalise_resident_id(swapped)


@given(division=divisions, born=st.dates(date(1900, 1, 1), date(1999, 12, 31)), sequence=st.integers(0, 998))
def test_a_typo_in_a_fifteen_digit_card_cannot_be_detected(division: str, born: date, sequence: int) -> None:
    """Old cards carry no check character: a mistyped sequence digit upgrades to someone else's valid ID."""
    typed = f"{division}{born:%y%m%d}{sequence + 1:03d}"
    meant = f"{division}{born:%y%m%d}{sequence:03d}"
    assert normalise_resident_id(typed) != normalise_resident_id(meant)


# USCC ---------------------------------------------------------------------------------------------------


def test_check_character_of_the_published_uscc() -> None:
    assert uscc_check_char(PUBLISHED_USCC[:17]) == "3"


@given(first17=st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
def test_uscc_check_character_makes_the_weighted_sum_a_multiple_of_31(first17: str) -> None:
    """Independent restatement: sum of value * 3^i (mod 31) plus the check value is 0 modulo 31."""
    check = uscc_check_char(first17)
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    assert (total + USCC_ALPHABET.index(check)) % 31 == 0


def test_published_uscc_is_valid_and_unchanged() -> None:
    assert normalise_uscc(PUBLISHED_USCC) == PUBLISHED_USCC


@pytest.mark.parametrize(
    "written",
    [
        "91350100m000100y43",
        " 91350100M000100Y43 ",
        "9135-0100-M000-100Y-43",
        "913501 00M000 100Y43",
        "91350100M000100Y43\n",
    ],
)
def test_uscc_case_spaces_and_dashes_are_normalised_away(written: str) -> None:
    assert normalise_uscc(written) == PUBLISHED_USCC


@pytest.mark.parametrize(("value", "length"), [("", 0), (PUBLISHED_USCC[:17], 17), (PUBLISHED_USCC + "0", 19)])
def test_uscc_of_wrong_length_is_refused_with_the_length_found(value: str, length: int) -> None:
    with pytest.raises(InvalidCode, match=f"must have 18 characters, got {length}$"):
        normalise_uscc(value)


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_letters_excluded_by_gb_32100_are_refused_and_named(letter: str) -> None:
    with pytest.raises(InvalidCode, match=f"not allowed by GB 32100: {letter}$"):
        normalise_uscc(replace_at(PUBLISHED_USCC, 10, letter))


def test_all_disallowed_characters_are_listed_once_and_sorted() -> None:
    with pytest.raises(InvalidCode, match=r"not allowed by GB 32100: \*OV$"):
        normalise_uscc("9V350100O000100*V3")


def test_letters_in_the_division_code_are_refused() -> None:
    with pytest.raises(InvalidCode, match="characters 3-8 must be a division code"):
        normalise_uscc(with_uscc_check("91ABCDEFM000100Y4"))


@pytest.mark.parametrize("wrong", [c for c in USCC_ALPHABET if c != "3"])
def test_wrong_uscc_check_character_names_the_one_expected(wrong: str) -> None:
    with pytest.raises(InvalidCode, match=f"check character is {wrong}, expected 3$"):
        normalise_uscc(PUBLISHED_USCC[:17] + wrong)


@given(code=usccs())
def test_any_valid_uscc_normalises_to_itself(code: str) -> None:
    assert normalise_uscc(code) == code
    assert normalise_uscc(code.lower()) == code


@given(code=usccs())
def test_mod_31_detects_every_single_character_substitution_in_the_first_17(code: str) -> None:
    """The checksum alone: weights 3^i are non-zero mod the prime 31 and value differences are below 31."""
    for position in range(17):
        for char in USCC_ALPHABET:
            if char != code[position]:
                assert uscc_check_char(replace_at(code, position, char)[:17]) != code[17]


@given(code=usccs())
def test_every_single_character_substitution_makes_a_uscc_invalid(code: str) -> None:
    for position in range(18):
        for char in USCC_ALPHABET:
            if char != code[position]:
                with pytest.raises(InvalidCode):
                    normalise_uscc(replace_at(code, position, char))


@given(code=usccs())
def test_every_adjacent_transposition_makes_a_uscc_invalid(code: str) -> None:
    for position in range(17):
        swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
        if swapped != code:
            with pytest.raises(InvalidCode):
                normalise_uscc(swapped)


def test_a_birthplace_no_division_ever_had_is_refused_with_a_reason_of_its_own() -> None:
    with pytest.raises(UnknownDivision, match="starts with 990426") as refused:
        normalise_resident_id("990426199112010074")  # the example: right check character, region 99
    assert refused.value.reason_code == "unknown_division"


@given(division=never_divisions, born=births, sequence=sequences)
def test_any_code_outside_gb_t_2260_is_refused(division: str, born: date, sequence: int) -> None:
    with pytest.raises(UnknownDivision):
        normalise_resident_id(with_check(f"{division}{born:%Y%m%d}{sequence:03d}"))


@pytest.mark.parametrize("division", ["110103", "110104", "320404", "320411"])
def test_retired_and_current_divisions_are_birthplaces(division: str) -> None:
    # 110103 (崇文区) and 110104 (宣武区) were retired in 2010; old cards still carry them.
    code = with_check(f"{division}19650301001")
    assert normalise_resident_id(code) == code


def test_the_table_has_the_countys_of_every_province_and_nothing_else() -> None:
    codes = division_codes()
    assert len(codes) > 3000 and all(len(code) == 6 and code.isdigit() for code in codes)
    assert {code[:2] for code in codes} >= {"11", "32", "44", "65"}
