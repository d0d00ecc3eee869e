"""What a patrol device may post: every bad body is a 4xx naming the problem, found cheaply.

The pure functions (the depth scan, JSON parsing, the fields of each endpoint) are tested
directly, with hypothesis for the properties that must hold for any input.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.http_guard import RequestRefused
from connectors.patrol_bodies import (
    MAX_JSON_DEPTH,
    json_depth,
    parse_record,
    report_payload,
    track_payloads,
    update_payload,
)
from tests.support.patrol import REFERENCE, REPORT, UPDATE


def refusal(call: Any, *args: Any) -> RequestRefused:
    with pytest.raises(RequestRefused) as refused:
        call(*args)
    return refused.value


# --- the JSON body -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"{}", 1),
        (b'{"points": [{"at": 1}]}', 3),
        (b'{"description": "[[[{{{ brackets in text do not nest"}', 1),
        (b'{"a": "\\"[[[", "b": [[]]}', 3),  # an escaped quote does not end the string
        (b"[" * 100_000, 100_000),  # unclosed: the parser would recurse into every one of them
        (b'{"a": "unterminated [[[[', 1),
        (b"", 0),
    ],
)
def test_json_depth_counts_brackets_outside_strings(raw: bytes, depth: int) -> None:
    assert json_depth(raw) == depth


def test_depth_of_a_megabyte_is_found_in_milliseconds() -> None:
    """The scan must stay linear whatever the body: quotes and backslashes are the costly case for a regex."""
    for body in (b"[" * 1_000_000, b'"\\"' * 350_000, b'{"a": "' + b"x" * 1_000_000 + b'"}'):
        started = time.perf_counter()
        json_depth(body)
        assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deep"),
        (b'{"a": ' + b"[" * 800 + b"]" * 800 + b"}", "too_deep"),
        (b'{"a": ' + b"[" * 250 + b"]" * 250 + b"}", "too_deep"),
        (b'{"lat": ' + b"7" * 5000 + b"}", "bad_number"),
        (b'{"lat": 0.' + b"1" * 5000 + b"}", "bad_number"),
        (b'{"lat": 1e999}', "bad_number"),
        (b'{"lat": NaN}', "bad_number"),
        (b'{"lat": -Infinity}', "bad_number"),
        (b'{"report_id": "R", "category": ', "bad_json"),
        (b'{"a": 1,}', "bad_json"),
        (b"[1, 2, 3]", "bad_json"),
        (b'"just a string"', "bad_json"),
        (b'{"a": "\xff"}', "bad_json"),  # not UTF-8
        ('{"a": 1}'.encode("utf-16"), "bad_json"),
        (b"", "bad_json"),
    ],
)
def test_bad_bodies_are_refused_with_400(raw: bytes, code: str) -> None:
    refused = refusal(parse_record, raw)
    assert (refused.status, refused.reason_code) == (400, code)
    assert len(str(refused)) < 300  # a reason, never the body


def test_depth_up_to_the_limit_and_a_bom_are_fine() -> None:
    nested = b'{"a": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert parse_record(nested)["a"] is not None
    assert parse_record(b'\xef\xbb\xbf{"a": 12345678901234567890, "b": 31.952000000000001}') == {
        "a": 12345678901234567890,
        "b": 31.952,
    }


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=300) | st.text(alphabet='{}[]":,0123456789.eE-+ \\utrfalsenNI', max_size=300).map(str.encode))
def test_any_bytes_are_a_record_or_a_400(raw: bytes) -> None:
    try:
        assert isinstance(parse_record(raw), dict)
    except RequestRefused as refused:
        assert refused.status == 400


# --- the fields of each endpoint ----------------------------------------------------------------------


def test_a_report_keeps_the_fields_of_the_contract_and_drops_the_rest() -> None:
    report_id, payload = report_payload({**REPORT, "padding": "x" * 900_000, "status": "closed"}, max_photos=5)
    assert report_id == "R-1"
    assert payload == {
        "event_id": "R-1",
        "category": "0102",
        "description": "路边暴露垃圾",
        "lat": 31.99,
        "lon": 119.87,
        "reported_at": "2026-11-25T09:15:00+08:00",
        "reporter_id": "GW017",
        "photo_refs": [REFERENCE],
    }


def test_a_report_without_an_id_gets_one_and_nulls_stay_for_the_canonical_check() -> None:
    report_id, payload = report_payload({**REPORT, "report_id": None, "lat": None}, max_photos=5)
    assert len(report_id) == 32 and payload["event_id"] == report_id
    assert payload["lat"] is None  # the canonical record says "missing_lat", as the stream would


@pytest.mark.parametrize(
    ("change", "code", "expected"),
    [
        ({"reported_at": 123}, "invalid_reported_at", "ISO 8601"),
        ({"reported_at": "1700000000"}, "invalid_reported_at", "ISO 8601"),
        ({"reported_at": {"$date": 1}}, "invalid_reported_at", "not an object"),
        ({"photos": 5}, "invalid_photos", "list of photo references"),
        ({"photos": "sha256:abc"}, "invalid_photos", "not a string"),
        ({"photos": [REFERENCE, 7]}, "invalid_photos", "item 1 is a number"),
        ({"photos": [REFERENCE] * 6}, "invalid_photos", "at most 5"),
        ({"report_id": 7}, "invalid_report_id", "JSON string"),
        ({"report_id": ["R"]}, "invalid_report_id", "not a list"),
        ({"reporter_id": True}, "invalid_reporter_id", "JSON string"),
        ({"category": 102}, "invalid_category", "JSON string"),
        ({"lat": "31.99"}, "invalid_lat", "JSON number"),
        ({"lon": False}, "invalid_lon", "JSON number"),
        ({"description": "坏\ud800了"}, "invalid_description", "surrogate"),
    ],
)
def test_a_report_field_of_the_wrong_json_type_is_a_422_naming_it(
    change: dict[str, Any], code: str, expected: str
) -> None:
    refused = refusal(report_payload, {**REPORT, **change}, 5)
    assert (refused.status, refused.reason_code) == (422, code)
    assert code.removeprefix("invalid_") in str(refused) and expected in str(refused)


def test_an_update_keeps_its_fields_and_checks_its_times_and_photo() -> None:
    update_id, payload = update_payload({**UPDATE, "due_at": "2026-11-28", "note": None, "extra": [1, 2]})
    assert update_id == "U-1"
    assert payload == {**UPDATE, "due_at": "2026-11-28", "note": None}
    for change, code in [
        ({"at": 1764034800}, "invalid_at"),
        ({"due_at": "next week"}, "invalid_due_at"),
        ({"photo_ref": "my-photo.jpg"}, "invalid_photo_ref"),
        ({"event_id": 12}, "invalid_event_id"),
        ({"update_id": {"id": 1}}, "invalid_update_id"),
    ]:
        assert refusal(update_payload, {**UPDATE, **change}).reason_code == code


def test_track_points_are_read_one_by_one_and_a_bad_one_names_its_number() -> None:
    points = [
        {"at": f"2026-11-25T08:0{minute}:00+08:00", "lat": 31.99, "lon": 119.87, "speed": 3} for minute in range(3)
    ]
    payloads = track_payloads({"worker_id": "GW017", "points": points}, max_points=10)
    assert payloads[0][0] == "GW017|2026-11-25T08:00:00+08:00"
    assert payloads[1][1] == {"at": "2026-11-25T08:01:00+08:00", "lat": 31.99, "lon": 119.87, "worker_id": "GW017"}

    refused = refusal(track_payloads, {"worker_id": "GW017", "points": [*points, {**points[0], "at": 5}]}, 10)
    assert refused.reason_code == "invalid_at" and str(refused).startswith("point 3: at must be")
    for body in [
        {"worker_id": "GW017", "points": []},
        {"worker_id": "GW017", "points": "many"},
        {"worker_id": "GW017", "points": points * 4},
        {"worker_id": "GW017", "points": [points[0], 7]},
    ]:
        assert refusal(track_payloads, body, 10).reason_code == "invalid_points"
    assert refusal(track_payloads, {"worker_id": 17, "points": points}, 10).reason_code == "invalid_worker_id"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    base=st.sampled_from(
        [REPORT, UPDATE, {"worker_id": "GW1", "points": [{"at": "2026-11-25T08:00:00", "lat": 1, "lon": 2}]}]
    ),
    changes=st.dictionaries(
        st.sampled_from([*REPORT, *UPDATE, "points", "worker_id", "due_at", "extra"]), json_values, max_size=4
    ),
)
def test_any_record_is_a_payload_or_a_4xx_never_another_error(base: dict[str, Any], changes: dict[str, Any]) -> None:
    record = {**base, **changes}
    for read in (lambda: report_payload(record, 5), lambda: update_payload(record), lambda: track_payloads(record, 5)):
        try:
            read()
        except RequestRefused as refused:
            assert 400 <= refused.status < 500
