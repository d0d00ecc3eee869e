"""Register dates in every form departments write them, and a readable refusal otherwise."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from foundation.settings import Settings
from schemas.dates import ACCEPTED_FORMS, DateFormatError, RegisterDate, parse_date
from schemas.records import Person, RawEnvelope
from streams.normalise import Rejected, normalise
from streams.routing import load_rules

MAY_3 = date(2018, 5, 3)
WOMAN_ID = "11010519491231002X"  # GB 11643 example: female, born 1949-12-31


@pytest.mark.parametrize(
    "value",
    [
        "2018-05-03",
        "2018-5-3",
        "2018/5/3",
        "2018/05/03",
        "2018.5.3",
        "2018.05.03",
        "2018年5月3日",
        "2018年05月03日",
        "2018 年 5 月 3 日",
        "2018年5月3",
        "20180503",
        " 2018-05-03 ",
        "２０１８年５月３日",
    ],
)
def test_written_dates(value: str) -> None:
    assert parse_date(value) == MAY_3


@pytest.mark.parametrize(
    "value",
    [
        "2018-05-03 10:20",
        "2018-05-03 10:20:30",
        "2018-05-03T10:20:30",
        "2018-05-03T10:20:30.123456",
        "2018-05-03T23:59:59+08:00",
        "2018-05-03T00:00:00Z",
        "2018/5/3 8:05",
        "2018.5.3 08:05:00",
        "20180503 10:20:30",
        "2018年5月3日 10:20",
        "2018年5月3日10时",
        "2018年5月3日10时20分",
        "2018年5月3日 10时20分30秒",
    ],
)
def test_datetimes_give_their_date_as_written(value: str) -> None:
    assert parse_date(value) == MAY_3


@pytest.mark.parametrize("value", [43223, 43223.0, 43223.75, "43223", "43223.75", Decimal("43223"), 20180503])
def test_excel_serials_and_compact_numbers(value: Any) -> None:
    assert parse_date(value) == MAY_3


@pytest.mark.parametrize(("serial", "day"), [(1, date(1900, 1, 1)), (59, date(1900, 2, 28)), (61, date(1900, 3, 1))])
def test_excel_counts_the_phantom_1900_leap_day(serial: int, day: date) -> None:
    assert parse_date(serial) == day


def test_date_and_datetime_objects_pass_through() -> None:
    assert parse_date(MAY_3) == MAY_3
    assert parse_date(datetime(2018, 5, 3, 17, 45)) == MAY_3


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2018-02-30", "is not a calendar date"),
        ("2018/13/1", "is not a calendar date"),
        ("20181301", "is not a calendar date"),
        ("2018-05-03 24:00", "time of day that does not exist"),
        ("2018-05-03 10:61", "time of day that does not exist"),
        ("03/05/2018", "is not a date"),
        ("2018-5/3", "is not a date"),
        ("May 3, 2018", "is not a date"),
        ("1990", "looks like a year alone"),
        (2018, "looks like a year alone"),
        ("199001", "is not a date"),
        ("60", "is not an Excel serial day number"),
        ("0", "is not an Excel serial day number"),
        (123456, "is not an Excel serial day number"),
        (-5, "is not an Excel serial day number"),
        (float("nan"), "is not an Excel serial day number"),
        (float("inf"), "is not an Excel serial day number"),
        (True, "is not a date"),
        ("unknown", "is not a date"),
        ("", "is not a date"),
        ([2018, 5, 3], "is not a date"),
    ],
)
def test_refusals_name_the_value_and_the_accepted_forms(value: Any, problem: str) -> None:
    with pytest.raises(DateFormatError) as refused:
        parse_date(value)
    message = str(refused.value)
    assert repr(value) in message
    assert problem in message
    assert ACCEPTED_FORMS in message


class Register(BaseModel):
    day: RegisterDate | None = None


def test_register_date_fields_accept_the_forms_and_none() -> None:
    assert Register(day="2018年5月3日").day == MAY_3
    assert Register(day="43223").day == MAY_3
    assert Register(day=None).day is None
    assert Register.model_json_schema()["properties"]["day"]["anyOf"][0] == {"format": "date", "type": "string"}


def test_person_birth_date_in_register_forms_must_still_agree_with_the_id() -> None:
    for written in ("1949/12/31", "1949年12月31日", "19491231", "18263"):
        assert Person(id_number=WOMAN_ID, name="张三", birth_date=written).birth_date == date(1949, 12, 31)
    with pytest.raises(ValidationError, match="contradicts the resident ID"):
        Person(id_number=WOMAN_ID, name="张三", birth_date="1950/1/1")


def test_unparseable_birth_date_is_rejected_as_invalid_birth_date_with_the_value_and_forms() -> None:
    envelope = RawEnvelope(
        record_uid="u1",
        source="civil-affairs",
        source_record_id=WOMAN_ID,
        entity="person",
        received_at=datetime(2026, 11, 25, 10, 0),
        content_hash="h",
        payload={"id_number": WOMAN_ID, "name": "张三", "birth_date": "1949年13月31日"},
    )
    outcome = normalise(envelope.model_dump_json().encode(), load_rules(Settings().routing_rules))
    assert isinstance(outcome, Rejected)
    assert outcome.reject.reason_code == "invalid_birth_date"
    assert "'1949年13月31日' is not a calendar date" in outcome.reject.reason
    assert "2018年5月3日" in outcome.reject.reason
    assert json.loads(outcome.reject.payload)["birth_date"] == "1949年13月31日"
