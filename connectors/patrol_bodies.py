"""What a patrol device may post: bodies bounded in depth and numbers, read into strict per-endpoint models.

A body is UTF-8 JSON, nested at most :data:`MAX_JSON_DEPTH` deep (scanned before parsing, so a
deep body costs no recursion) with no number longer than :data:`MAX_NUMBER_CHARS` characters
(refused while parsing). Each endpoint reads it into a model of the fields it knows, with strict
JSON types (a timestamp is an ISO 8601 string, never a number of seconds, and photos a list of
references), and drops every other field, so only the contract reaches Kafka. Every refusal is a
:class:`~connectors.http_guard.RequestRefused` naming the field and what it must be.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from itertools import accumulate
from typing import Annotated, Any, NoReturn, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from connectors.http_guard import RequestRefused
from connectors.photos import REFERENCE

MAX_JSON_DEPTH = 10
"""Deepest nesting of objects and lists in a body. Reports and updates are flat and a track is three
levels deep; the limit keeps the parser's recursion (and everything that walks the result) short."""
MAX_NUMBER_CHARS = 40
"""Longest number literal: a coordinate needs some 20 characters, while a 5,000-digit integer costs
quadratic time to convert and Python refuses it half-way through (with a ValueError, not a JSON error)."""

# --- the JSON body ---------------------------------------------------------------------------------

_STRING = re.compile(rb'"[^"\\]*+(?:\\.?[^"\\]*+)*+(?:"|\Z)', re.DOTALL)
"""A JSON string, or an unterminated one up to the end: this pattern never fails once it starts, so
scanning a body for strings stays linear whatever the body holds."""
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
"""Opening brackets to +1, closing ones to -1 (as signed bytes)."""


def json_depth(raw: bytes) -> int:
    """How deep ``raw`` nests objects and lists, found without parsing it (at C speed: no Python loop per byte).

    Brackets inside strings do not count. For invalid JSON the answer is at least the depth a
    parser would reach before it gives up, which is what matters.
    """
    steps = _STRING.sub(b"", raw).translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise RequestRefused(
            400,
            "bad_number",
            f"a number in the body has {len(text)} digits; send numbers of at most {MAX_NUMBER_CHARS}",
        )
    return int(text)


def _decimal(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise RequestRefused(
            400,
            "bad_number",
            f"a number in the body is {len(text)} characters long; send numbers of at most {MAX_NUMBER_CHARS}",
        )
    value = float(text)
    if not math.isfinite(value):
        raise RequestRefused(400, "bad_number", f"{text} is beyond a double's range; send a finite number")
    return value


def _constant(text: str) -> NoReturn:
    raise RequestRefused(400, "bad_number", f"{text} is not a JSON number; send a finite number or null")


def parse_record(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; anything too deep, too large, not UTF-8 or not an object is refused (400)."""
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise RequestRefused(
            400,
            "too_deep",
            f"body nests objects and lists {depth} levels deep; records are flat, send at most {MAX_JSON_DEPTH} levels",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestRefused(
            400, "bad_json", f"body is not UTF-8 text (byte {exc.start}); send JSON encoded as UTF-8"
        ) from None
    try:
        body = json.loads(text, parse_int=_integer, parse_float=_decimal, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise RequestRefused(
            400,
            "bad_json",
            f"body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); fix it and send it again",
        ) from None
    if not isinstance(body, dict):
        raise RequestRefused(400, "bad_json", f"body must be a JSON object, not {_json_kind(body)}")
    return body


# --- the fields of each endpoint ----------------------------------------------------------------------

_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?")
"""A date, or a date and time with an optional offset: what the stream's datetime parser reads as a
calendar date (it would also read a bare number as seconds since 1970, which no phone means)."""
TIMESTAMP_EXAMPLE = "2026-11-25T09:15:00+08:00"


def _json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type, for reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _wrong(expected: str, got: str) -> PydanticCustomError:
    return PydanticCustomError("json_type", "must be {expected}, not {got}", {"expected": expected, "got": got})


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong("a JSON string", _json_kind(value))
    try:
        value.encode()
    except UnicodeEncodeError:
        raise _wrong("text", "a string with a lone UTF-16 surrogate (\\ud800 to \\udfff)") from None
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong("a JSON number", _json_kind(value))
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _wrong("a finite number", "one out of range")
    return number


def _timestamp(value: Any) -> str:
    expected = f"a JSON string with an ISO 8601 date and time such as {TIMESTAMP_EXAMPLE}"
    if not isinstance(value, str):
        raise _wrong(expected, _json_kind(value))
    if not _ISO_8601.fullmatch(value):
        raise _wrong(expected, "a string in another form")
    return value


def _reference(value: Any) -> str:
    if not isinstance(value, str) or not REFERENCE.match(value):
        got = "a string in another form" if isinstance(value, str) else _json_kind(value)
        raise _wrong("a photo reference (sha256:<64 hex digits>, as the gateway answers an upload)", got)
    return value


def _references(value: Any) -> list[str]:
    expected = "a JSON list of photo references (sha256:<64 hex digits>)"
    if not isinstance(value, list):
        raise _wrong(expected, _json_kind(value))
    for number, item in enumerate(value):
        if not isinstance(item, str) or not REFERENCE.match(item):
            got = "a string in another form" if isinstance(item, str) else _json_kind(item)
            raise _wrong(expected, f"a list whose item {number} is {got}")
    return value


_REFERENCE_SCHEMA = {"type": "string", "pattern": REFERENCE.pattern}
Text = Annotated[str, BeforeValidator(_text)]
Number = Annotated[float, BeforeValidator(_number)]
Timestamp = Annotated[
    str,
    BeforeValidator(_timestamp),
    WithJsonSchema({"type": "string", "pattern": f"^{_ISO_8601.pattern}$", "examples": [TIMESTAMP_EXAMPLE]}),
]
Reference = Annotated[str, BeforeValidator(_reference), WithJsonSchema(_REFERENCE_SCHEMA)]
References = Annotated[
    list[str], BeforeValidator(_references), WithJsonSchema({"type": "array", "items": _REFERENCE_SCHEMA})
]
"""The JSON Schema of each (what the API document shows) is what its validator accepts."""


class _Body(BaseModel):
    """The fields an endpoint knows, each of one JSON type; unknown fields are ignored and never published.

    Every field may be absent or null: whether the record is complete is the canonical
    record's to say (``schemas.records``), with the same reasons the stream gives.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


class ReportBody(_Body):
    """``POST /v1/reports``: an incident as a grid worker's phone reports it (``schemas.records.Event``)."""

    report_id: Text | None = None
    category: Text | None = None
    description: Text | None = None
    lat: Number | None = None
    lon: Number | None = None
    coord_system: Text | None = None
    reported_at: Timestamp | None = None
    reporter_id: Text | None = None
    photos: References | None = None
    subject_id_number: Text | None = None
    subject_uscc: Text | None = None
    object_id: Text | None = None
    place_id: Text | None = None


class UpdateBody(_Body):
    """``POST /v1/updates``: one step of a case (``schemas.records.EventUpdate``, which reads ``at`` and ``due_at``)."""

    update_id: Text | None = None
    event_id: Text | None = None
    status: Text | None = None
    at: Timestamp | None = None
    occurred_at: Timestamp | None = None
    actor: Text | None = None
    actor_role: Text | None = None
    note: Text | None = None
    photo_ref: Reference | None = None
    due_at: Timestamp | None = None
    new_due_at: Timestamp | None = None
    department: Text | None = None


class TrackBody(_Body):
    """``POST /v1/tracks``: whose track it is; its ``points`` are read one by one (:class:`PointBody`)."""

    worker_id: Text | None = None


class PointBody(_Body):
    """One point of a patrol track (``schemas.records.PatrolPoint``)."""

    at: Timestamp | None = None
    recorded_at: Timestamp | None = None
    lat: Number | None = None
    lon: Number | None = None


Body = TypeVar("Body", bound=_Body)


def _read_fields(model: type[Body], record: dict[str, Any], what: str, where: str = "") -> Body:
    """``record`` as ``model``, or a 422 naming each wrong field and the JSON it must be."""
    try:
        return model.model_validate(record)
    except ValidationError as exc:
        problems = [_problem(item["loc"], item["msg"]) for item in exc.errors()]
        code = f"invalid_{exc.errors()[0]['loc'][0]}"
        raise RequestRefused(422, code, f"{where}{'; '.join(problems)}; correct the {what} and send it again") from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return f"{name} {message}"


def report_payload(record: dict[str, Any], max_photos: int) -> tuple[str, dict[str, Any]]:
    """The report id (the phone's, or a new one) and the event payload to publish: known fields only."""
    body = _read_fields(ReportBody, record, "report")
    references = body.photos or []
    if len(references) > max_photos:
        raise RequestRefused(
            422, "invalid_photos", f"photos lists {len(references)} references; send at most {max_photos}"
        )
    report_id = body.report_id or uuid.uuid4().hex
    payload = body.model_dump(exclude_unset=True, exclude={"report_id", "photos"})
    payload["event_id"] = report_id
    payload["photo_refs"] = list(references)
    return report_id, payload


def update_payload(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The update id (the sender's, or a new one) and the event-update payload to publish: known fields only."""
    body = _read_fields(UpdateBody, record, "update")
    update_id = body.update_id or uuid.uuid4().hex
    return update_id, {**body.model_dump(exclude_unset=True), "update_id": update_id}


def track_payloads(record: dict[str, Any], max_points: int) -> list[tuple[str, dict[str, Any]]]:
    """Each point of a track as (source record id, payload to publish), or a 422 for the whole batch."""
    worker = _read_fields(TrackBody, record, "track").worker_id
    points = record.get("points")
    if not isinstance(points, list) or not points or len(points) > max_points:
        got = f"{len(points)} points" if isinstance(points, list) else _json_kind(points)
        raise RequestRefused(
            422, "invalid_points", f"points must be a JSON list of 1 to {max_points} points, not {got}"
        )
    payloads = []
    for number, point in enumerate(points):
        if not isinstance(point, dict):
            raise RequestRefused(
                422,
                "invalid_points",
                f"point {number} must be a JSON object with at, lat and lon, not {_json_kind(point)}",
            )
        fields = _read_fields(PointBody, point, "track", where=f"point {number}: ").model_dump(exclude_unset=True)
        at = fields.get("at", fields.get("recorded_at"))
        payloads.append((f"{worker}|{at}", {**fields, "worker_id": worker}))
    return payloads
