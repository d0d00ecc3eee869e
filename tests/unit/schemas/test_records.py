"""Canonical records validate and normalise their own fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.records import (
    CANONICAL_MODELS,
    Application,
    Event,
    EventUpdate,
    Organisation,
    Person,
    RawEnvelope,
)
from schemas.versions import CONTRACTS

WOMAN_ID = "11010519491231002X"  # GB 11643 example: female, born 1949-12-31
MAN_ID = "440524188001010014"  # GB 11643 example: male, born 1880-01-01
USCC = "91350100M000100Y43"  # GB 32100 example
CST = timedelta(hours=8)


def errors_of(excinfo: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple[Any, ...], str, str]]:
    return [(tuple(e["loc"]), e["type"], e["msg"]) for e in excinfo.value.errors()]


# Person ---------------------------------------------------------------------------------------------


def test_person_gender_and_birth_date_are_derived_from_the_id() -> None:
    woman = Person(id_number=WOMAN_ID, name="张三")
    man = Person(id_number=MAN_ID, name="李四")
    assert (woman.gender, woman.birth_date) == ("F", date(1949, 12, 31))
    assert (man.gender, man.birth_date) == ("M", date(1880, 1, 1))


def test_person_derived_fields_appear_in_the_dump() -> None:
    dumped = Person(id_number=WOMAN_ID, name="张三").model_dump()
    assert dumped["gender"] == "F"
    assert dumped["birth_date"] == date(1949, 12, 31)


def test_person_id_is_normalised_and_is_the_key() -> None:
    person = Person(id_number="110105-19491231-002x", name="张三")
    assert person.id_number == WOMAN_ID
    assert person.key == WOMAN_ID


def test_person_with_a_fifteen_digit_id_is_keyed_on_the_eighteen_digit_form() -> None:
    assert Person(id_number="110105491231002", name="张三").key == WOMAN_ID


def test_person_with_an_invalid_id_is_refused_with_the_identity_message() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Person(id_number="110105194912310021", name="张三")
    [(loc, _, msg)] = errors_of(excinfo)
    assert loc == ("id_number",)
    assert "check character is 1, expected X" in msg


@pytest.mark.parametrize(
    ("word", "id_number", "gender"),
    [
        ("男", MAN_ID, "M"),
        ("女", WOMAN_ID, "F"),
        (" 男 ", MAN_ID, "M"),
        ("male", MAN_ID, "M"),
        ("Female", WOMAN_ID, "F"),
        ("m", MAN_ID, "M"),
        ("F", WOMAN_ID, "F"),
    ],
)
def test_gender_words_agreeing_with_the_id_are_accepted(word: str, id_number: str, gender: str) -> None:
    assert Person(id_number=id_number, name="某人", gender=word).gender == gender


@pytest.mark.parametrize(("word", "id_number"), [("男", WOMAN_ID), ("M", WOMAN_ID), ("女", MAN_ID), ("f", MAN_ID)])
def test_gender_contradicting_the_id_is_refused(word: str, id_number: str) -> None:
    with pytest.raises(ValidationError, match="contradicts the resident ID, which encodes"):
        Person(id_number=id_number, name="某人", gender=word)


def test_unknown_gender_word_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Person(id_number=WOMAN_ID, name="张三", gender="未知")
    assert [loc for loc, _, _ in errors_of(excinfo)] == [("gender",)]


def test_birth_date_agreeing_with_the_id_is_accepted() -> None:
    assert Person(id_number=WOMAN_ID, name="张三", birth_date="1949-12-31").birth_date == date(1949, 12, 31)


def test_birth_date_contradicting_the_id_is_refused_and_both_dates_named() -> None:
    with pytest.raises(ValidationError, match=r"birth_date 1950-01-01 contradicts the resident ID \(1949-12-31\)"):
        Person(id_number=WOMAN_ID, name="张三", birth_date="1950-01-01")


@pytest.mark.parametrize("blank", ["", None])
def test_blank_optional_person_fields_are_treated_as_missing(blank: str | None) -> None:
    person = Person.model_validate(
        {"id_number": WOMAN_ID, "name": "张三", "gender": blank, "birth_date": blank, "phone": blank, "address": blank}
    )
    assert (person.gender, person.birth_date) == ("F", date(1949, 12, 31))
    assert person.phone is None
    assert person.address is None


@pytest.mark.parametrize("blank", ["", None])
def test_blank_name_counts_as_missing(blank: str | None) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Person.model_validate({"id_number": WOMAN_ID, "name": blank})
    assert [(loc, kind) for loc, kind, _ in errors_of(excinfo)] == [(("name",), "missing")]


def test_missing_id_number_is_reported_as_a_missing_key() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Person.model_validate({"name": "张三", "address": "孟河镇通江路12号"})
    assert [(loc, kind) for loc, kind, _ in errors_of(excinfo)] == [((), "missing_id_number")]


@pytest.mark.parametrize("field", ["gender", "address"])
def test_whitespace_only_cells_are_treated_as_missing(field: str) -> None:
    person = Person.model_validate({"id_number": WOMAN_ID, "name": "张三", field: "   "})
    assert person == Person(id_number=WOMAN_ID, name="张三")


def test_person_text_is_trimmed() -> None:
    person = Person(id_number=WOMAN_ID, name="  张三 ", address=" 新北区孟河镇 ")
    assert (person.name, person.address) == ("张三", "新北区孟河镇")


@pytest.mark.parametrize(
    ("phone", "kept"),
    [
        ("13800000000", "+8613800000000"),
        ("+86 138-0000-0000", "+8613800000000"),
        ("138-0000-0000", "+8613800000000"),
        ("0086 138 0000 0000", "+8613800000000"),
        ("0519-8888888", "+865198888888"),
        ("+1 202 555 0100", "+12025550100"),
        ("12345", "12345"),  # no number of that length anywhere: kept as written
    ],
)
def test_phone_numbers_are_kept_in_e164_so_one_line_written_two_ways_is_one(phone: str, kept: str) -> None:
    assert Person(id_number=WOMAN_ID, name="张三", phone=phone).phone == kept
    assert Organisation(uscc=None, name="孟河五金厂", registered_address="孟河镇", phone=phone).phone == kept


@pytest.mark.parametrize("phone", ["call me", "1234", "138000000001380000000", "138.0000.0000"])
def test_implausible_phone_numbers_are_refused(phone: str) -> None:
    with pytest.raises(ValidationError):
        Person(id_number=WOMAN_ID, name="张三", phone=phone)


def test_name_longer_than_2000_characters_is_refused() -> None:
    with pytest.raises(ValidationError):
        Person(id_number=WOMAN_ID, name="张" * 2001)


def test_unknown_person_columns_are_ignored() -> None:
    person = Person.model_validate({"id_number": WOMAN_ID, "name": "张三", "性别": "女", "备注": "x"})
    assert "性别" not in person.model_dump()


def test_person_is_immutable() -> None:
    person = Person(id_number=WOMAN_ID, name="张三")
    with pytest.raises(ValidationError):
        person.name = "李四"  # type: ignore[misc]


# Organisation ---------------------------------------------------------------------------------------


def test_organisation_uscc_is_normalised_and_is_the_key() -> None:
    organisation = Organisation(uscc="9135 0100 m000 100y 43", name="某某有限公司")
    assert organisation.uscc == USCC
    assert organisation.key == USCC


def test_organisation_with_a_bad_check_character_is_refused() -> None:
    with pytest.raises(ValidationError, match="check character is 4, expected 3"):
        Organisation(uscc=USCC[:17] + "4", name="某某有限公司")


def test_organisation_needs_a_name() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Organisation.model_validate({"uscc": USCC, "name": ""})
    assert [(loc, kind) for loc, kind, _ in errors_of(excinfo)] == [(("name",), "missing")]


def test_blank_optional_organisation_fields_are_missing() -> None:
    organisation = Organisation.model_validate(
        {"uscc": USCC, "name": "某某有限公司", "legal_representative": "", "registered_address": "", "phone": ""}
    )
    assert (organisation.legal_representative, organisation.registered_address, organisation.phone) == (
        None,
        None,
        None,
    )


# Event ------------------------------------------------------------------------------------------------

EVENT: dict[str, Any] = {
    "event_id": "R1",
    "category": "0102",
    "description": "暴露垃圾",
    "reported_at": "2026-11-25T09:00:00",
    "reporter_id": "GW001",
    "lat": 31.99,
    "lon": 119.87,
}


def test_naive_event_time_is_china_standard_time() -> None:
    reported = Event.model_validate(EVENT).reported_at
    assert str(reported.tzinfo) == "Asia/Shanghai"
    assert reported.utcoffset() == CST
    assert reported.astimezone(UTC) == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def test_aware_event_time_keeps_its_instant_in_town_time() -> None:
    reported = Event.model_validate({**EVENT, "reported_at": "2026-11-25T09:00:00Z"}).reported_at
    assert reported.utcoffset() == timedelta(hours=8)
    assert reported == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_event_defaults() -> None:
    event = Event.model_validate(EVENT)
    assert (event.status, event.photo_refs, event.category_name, event.department) == ("reported", [], None, None)
    assert event.key == "R1"


@pytest.mark.parametrize(("field", "value"), [("lat", 90.5), ("lat", -91), ("lon", 180.1), ("lon", -181)])
def test_event_coordinates_out_of_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Event.model_validate({**EVENT, field: value})
    assert [loc for loc, _, _ in errors_of(excinfo)] == [(field,)]


def test_event_status_outside_the_case_flow_is_refused() -> None:
    with pytest.raises(ValidationError):
        Event.model_validate({**EVENT, "status": "lost"})


@pytest.mark.parametrize("field", ["event_id", "category", "description", "reported_at", "reporter_id", "lat", "lon"])
def test_each_required_event_field_is_reported_missing(field: str) -> None:
    payload = {key: value for key, value in EVENT.items() if key != field}
    with pytest.raises(ValidationError) as excinfo:
        Event.model_validate(payload)
    assert [(loc, kind) for loc, kind, _ in errors_of(excinfo)] == [((field,), "missing")]


def test_event_update_accepts_at_as_the_time_field_and_reads_it_as_cst() -> None:
    update = EventUpdate.model_validate(
        {"update_id": "U1", "event_id": "R1", "status": "dispatched", "at": "2026-11-25T10:00:00", "actor": "desk"}
    )
    assert update.occurred_at.utcoffset() == CST
    assert update.key == "U1"


# Application --------------------------------------------------------------------------------------------

APPLICATION: dict[str, Any] = {
    "application_id": "A1",
    "item_code": "XK-001",
    "status": "submitted",
    "submitted_at": "2026-11-25T09:00:00",
    "updated_at": "2026-11-25T09:30:00+08:00",
}


def test_application_by_a_resident_is_accepted_with_a_normalised_id() -> None:
    application = Application.model_validate({**APPLICATION, "applicant_id_number": "11010519491231002x"})
    assert application.applicant_id_number == WOMAN_ID
    assert application.applicant_uscc is None
    assert application.key == "A1"


def test_application_by_an_organisation_is_accepted() -> None:
    assert Application.model_validate({**APPLICATION, "applicant_uscc": USCC}).applicant_uscc == USCC


@pytest.mark.parametrize("blank", [{}, {"applicant_id_number": "", "applicant_uscc": ""}, {"applicant_uscc": None}])
def test_application_without_an_applicant_is_refused(blank: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="an application needs an applicant"):
        Application.model_validate({**APPLICATION, **blank})


def test_application_with_an_invalid_applicant_id_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Application.model_validate({**APPLICATION, "applicant_id_number": "110105194912310021"})
    assert [loc for loc, _, _ in errors_of(excinfo)] == [("applicant_id_number",)]


def test_application_naive_times_are_cst() -> None:
    application = Application.model_validate({**APPLICATION, "applicant_uscc": USCC})
    assert application.submitted_at.utcoffset() == CST
    assert application.updated_at - application.submitted_at == timedelta(minutes=30)


def test_application_status_must_be_known() -> None:
    with pytest.raises(ValidationError):
        Application.model_validate({**APPLICATION, "applicant_uscc": USCC, "status": "lost"})


# RawEnvelope and the model table -------------------------------------------------------------------------

ENVELOPE: dict[str, Any] = {
    "record_uid": "u1",
    "source": "civil-affairs",
    "source_record_id": "r1",
    "entity": "person",
    "received_at": "2026-11-25T09:00:00Z",
    "content_hash": "0" * 64,
    "payload": {"id_number": WOMAN_ID, "name": "张三"},
}


def test_envelope_defaults_to_the_current_versions_and_no_run() -> None:
    envelope = RawEnvelope.model_validate(ENVELOPE)
    assert envelope.schema_version == CONTRACTS["raw_envelope"].version
    assert envelope.payload_version == CONTRACTS["person"].version
    assert envelope.run_id is None


def test_envelope_survives_a_json_round_trip() -> None:
    envelope = RawEnvelope.model_validate({**ENVELOPE, "run_id": "run-7"})
    assert RawEnvelope.model_validate_json(envelope.model_dump_json()) == envelope


def test_envelope_refuses_extra_fields() -> None:
    with pytest.raises(ValidationError) as excinfo:
        RawEnvelope.model_validate({**ENVELOPE, "sneaky": 1})
    assert [(loc, kind) for loc, kind, _ in errors_of(excinfo)] == [(("sneaky",), "extra_forbidden")]


@pytest.mark.parametrize("field", ["record_uid", "source", "source_record_id", "entity", "received_at", "payload"])
def test_envelope_requires_its_provenance(field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        RawEnvelope.model_validate({key: value for key, value in ENVELOPE.items() if key != field})
    assert [(loc, kind) for loc, kind, _ in errors_of(excinfo)] == [((field,), "missing")]


def test_envelope_refuses_an_unknown_entity_kind() -> None:
    with pytest.raises(ValidationError):
        RawEnvelope.model_validate({**ENVELOPE, "entity": "dragon"})


def test_envelope_is_immutable() -> None:
    envelope = RawEnvelope.model_validate(ENVELOPE)
    with pytest.raises(ValidationError):
        envelope.source = "elsewhere"  # type: ignore[misc]


def test_every_entity_kind_has_a_model_keyed_by_that_kind() -> None:
    assert set(CANONICAL_MODELS) == {
        "person",
        "organisation",
        "place",
        "object",
        "event",
        "event_update",
        "application",
        "track_point",
        "case",
        "case_transition",
        "enforcement_case",
    }
    assert all(model.kind == kind for kind, model in CANONICAL_MODELS.items())
