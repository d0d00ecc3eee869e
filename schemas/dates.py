"""Calendar dates as department registers write them.

Registers come from many systems and many hands: ISO dates, slashes and dots
without leading zeros, Chinese 年月日, compact 20180503, and Excel serial day
numbers when a spreadsheet cell lost its date format. One pure parser accepts
them all, so every date field of every canonical record takes the same forms
and refuses anything else with the same readable sentence.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator

from foundation.errors import InputRejected

ACCEPTED_FORMS = (
    "2018-05-03, 2018/5/3, 2018.5.3, 2018年5月3日, 20180503 or an Excel serial day number such as 43223, "
    "optionally followed by a time"
)
EXCEL_EPOCH = date(1899, 12, 30)
"""Day zero of Excel's 1900 date system, as it counts from serial 61 (1900-03-01) on."""
LARGEST_SERIAL = 99_999
"""Serials stop at five digits (2173-10-14): a longer number is a compact date or not a date."""

_CLOCK = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?"
_CLOCK_CN = r"(?P<hour_cn>\d{1,2})[时点](?:(?P<minute_cn>\d{1,2})分(?:(?P<second_cn>\d{1,2})秒)?)?"
_TIME = rf"(?:(?:T|\s+){_CLOCK}|\s*{_CLOCK_CN})?"
_DATE_PATTERNS = (
    re.compile(r"(?P<year>\d{4})(?P<sep>[-/.])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})" + _TIME),
    re.compile(r"(?P<year>\d{4})\s*年\s*(?P<month>\d{1,2})\s*月\s*(?P<day>\d{1,2})\s*日?" + _TIME),
    re.compile(r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})" + _TIME),
)
_SERIAL_TEXT = re.compile(r"\d{1,5}(?:\.\d+)?")


class DateFormatError(InputRejected, ValueError):
    """A value that is not a date in any form registers use; the message names the value and the forms.

    Also a :class:`ValueError`, so a pydantic validator that meets one reports it as a field error.
    """

    reason_code = "invalid_date"

    def __init__(self, value: object, problem: str = "is not a date") -> None:
        super().__init__(f"{value!r} {problem}; write dates as {ACCEPTED_FORMS}")


def from_excel_serial(value: object, serial: float) -> date:
    """The day an Excel serial number stands for (1900 date system; the time of day is dropped).

    Excel counts 1900 as a leap year, so serial 60 is the non-existent 1900-02-29 and the
    serials before it are one day off from those after it. Numbers from 1000 to 2999 are
    refused: in a register they are a year written alone far more often than a day of 1903.
    """
    if 1000 <= serial < 3000:
        raise DateFormatError(value, "looks like a year alone; a date needs its month and day")
    if not 1 <= serial < LARGEST_SERIAL + 1 or int(serial) == 60:
        raise DateFormatError(value, f"is not an Excel serial day number (1 to {LARGEST_SERIAL}, 60 excepted)")
    whole = int(serial)
    return EXCEL_EPOCH + timedelta(days=whole + (1 if whole < 60 else 0))


def _from_text(value: object, text: str) -> date:
    text = unicodedata.normalize("NFKC", text).strip()
    if _SERIAL_TEXT.fullmatch(text):
        return from_excel_serial(value, float(text))
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        part = match.groupdict()
        hour = int(part["hour"] or part["hour_cn"] or 0)
        minute = int(part["minute"] or part["minute_cn"] or 0)
        second = int(part["second"] or part["second_cn"] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise DateFormatError(value, "has a time of day that does not exist")
        try:
            return date(int(part["year"]), int(part["month"]), int(part["day"]))
        except ValueError as exc:
            raise DateFormatError(value, f"is not a calendar date ({exc})") from None
    raise DateFormatError(value)


def parse_date(value: object) -> date:
    """Read a date from any form registers use; raise :class:`DateFormatError` otherwise.

    A plain number is read as an Excel serial day number (an eight-digit one as
    YYYYMMDD), so this belongs on fields that hold a date and nowhere else:
    elsewhere 43223 is just a number.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return _from_text(value, value)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        if 10_000_000 <= value <= 99_999_999 and value == int(value):
            return _from_text(value, str(int(value)))
        return from_excel_serial(value, float(value))
    raise DateFormatError(value)


RegisterDate = Annotated[date, BeforeValidator(parse_date)]
"""A date field that takes every form in :data:`ACCEPTED_FORMS`."""
