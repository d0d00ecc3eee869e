"""The hop-by-hop trace: messages found by the report id in their payload, hops ordered and timed right.

The trace is read against the latency curve, so a hop timed from the wrong parent, or listed
out of the order it happened in, would send the reader to the wrong place.
"""

from __future__ import annotations

import json

from rich.console import Console

from bench.trace import (
    PATH,
    REQUEST,
    WAREHOUSE,
    Sighting,
    hop_of,
    hops_seen,
    report_id_in,
    trace_json,
    trace_rows,
    trace_table,
)
from schemas.topics import CASE_COMMANDS, RAW_PATROL, canonical_topic, dispatch_topic

T0 = 1_800_000_000.0
"""A wall-clock moment in seconds, as ``time.time()`` gives."""


def at(ms: float) -> float:
    return T0 + ms / 1000


def full_trace() -> list[Sighting]:
    return [
        Sighting(REQUEST, "POST /v1/reports", T0, "bench wall clock"),
        Sighting("gateway → raw topic", RAW_PATROL, at(4), "Kafka CreateTime"),
        Sighting("integrate agent → case command", CASE_COMMANDS, at(30), "Kafka CreateTime"),
        Sighting("case agent → work order", dispatch_topic("urban-management"), at(61), "Kafka CreateTime"),
        Sighting("case agent → case", canonical_topic("case"), at(58), "Kafka CreateTime"),
        Sighting(WAREHOUSE, "cases", at(140), "bench wall clock"),
    ]


def test_the_report_id_is_found_where_each_topic_carries_it() -> None:
    report = "BENCH-1-trace-000000"
    messages = {
        RAW_PATROL: {"source_record_id": report, "payload": {"event_id": report}},
        CASE_COMMANDS: {"type": "event", "record": {"event_id": report}},
        canonical_topic("case"): {"record": {"case_id": report, "report_count": 1}, "meta": {}},
        dispatch_topic("urban-management.wansui"): {"work_order": {"event_id": report}, "department": "x"},
    }
    for topic, message in messages.items():
        hop = hop_of(topic)
        assert hop is not None
        assert report_id_in(json.loads(json.dumps(message)), hop.report_id_at) == report
    assert hop_of(canonical_topic("event")) is None
    assert report_id_in({"record": None}, ("record", "case_id")) is None
    assert report_id_in({"record": {"case_id": 7}}, ("record", "case_id")) is None


def test_hops_are_listed_in_the_order_they_happened_and_timed_from_their_parent() -> None:
    rows = trace_rows(full_trace())
    assert [row.hop for row in rows] == [
        REQUEST,
        "gateway → raw topic",
        "integrate agent → case command",
        "case agent → case",
        "case agent → work order",
        WAREHOUSE,
    ]
    timings = {row.hop: (row.since_request_ms, row.hop_ms) for row in rows}
    assert timings[REQUEST] == (0.0, None)
    assert timings["gateway → raw topic"] == (4.0, 4.0)
    assert timings["case agent → case"] == (58.0, 28.0)
    assert timings["case agent → work order"] == (61.0, 31.0)  # a sibling of the case: from the command
    assert timings[WAREHOUSE] == (140.0, 82.0)  # from the case message the sink read
    assert rows[4].topic == "dispatch.urban-management"
    assert hops_seen(rows) == len(PATH) - 1


def test_ties_keep_the_path_order() -> None:
    sightings = [
        Sighting(REQUEST, "POST /v1/reports", T0, "bench wall clock"),
        Sighting("gateway → raw topic", RAW_PATROL, at(5), "Kafka CreateTime"),
        Sighting("integrate agent → case command", CASE_COMMANDS, at(5), "Kafka CreateTime"),
    ]
    assert [row.hop for row in trace_rows(sightings)][:3] == [
        REQUEST,
        "gateway → raw topic",
        "integrate agent → case command",
    ]


def test_hops_not_seen_come_last_and_say_so() -> None:
    seen = [sighting for sighting in full_trace() if sighting.hop not in ("case agent → case", WAREHOUSE)]
    rows = trace_rows(seen)
    assert [row.hop for row in rows[-2:]] == ["case agent → case", WAREHOUSE]
    assert all(row.since_request_ms is None and row.hop_ms is None for row in rows[-2:])
    assert hops_seen(rows) == 3
    console = Console(width=140, record=True)
    console.print(trace_table(rows))
    text = console.export_text()
    assert "3 hops" in text
    assert text.count("not seen") == 2


def test_the_json_has_every_row_and_the_hop_count() -> None:
    document = trace_json(trace_rows(full_trace()))
    assert document["hops"] == 5
    assert document["rows"][1] == {
        "hop": "gateway → raw topic",
        "topic": RAW_PATROL,
        "since_request_ms": 4.0,
        "hop_ms": 4.0,
        "clock": "Kafka CreateTime",
    }
    assert json.loads(json.dumps(document)) == document
