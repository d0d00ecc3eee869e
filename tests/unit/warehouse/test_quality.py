"""The warehouse contract's results are kept: counts, sources and ids of the failing rows, never their values."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from schemas.batches import RecordBatch, encode_batch
from schemas.topics import CANONICAL_BATCHES, canonical_topic, sink_topics
from schemas.versions import CONTRACTS
from tests.support.identities import resident_id
from tests.unit.warehouse.batches import T0
from warehouse.contract import BatchContract
from warehouse.decode import decode_message
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.sink import IsolatingWriter
from warehouse.writer import ENTITY_TABLES, WarehouseWriter, connect

TOPIC_IDS = dict.fromkeys(sink_topics(), "topic-1")
BAD_ID = "1101051949"
"""An ID number too short for the contract: a resident's (partial) ID, which no kept result may hold."""
REGEX = ("expect_column_values_to_match_regex", "id_number")


@pytest.fixture(scope="module")
def contract() -> BatchContract:
    return BatchContract()


@pytest.fixture
def warehouse(tmp_path: Path, contract: BatchContract) -> Iterator[tuple[IsolatingWriter, duckdb.DuckDBPyConnection]]:
    """The sink's writers as SinkService builds them, on a real DuckDB file."""
    resolver = Resolver(ResolutionRules.load())
    connection = connect(tmp_path / "w.duckdb", resolver)
    yield (
        IsolatingWriter(WarehouseWriter(connection, resolver, contract.table_violations), TOPIC_IDS, contract),
        connection,
    )
    connection.close()


def people() -> pa.Table:
    """Three people of two sources, the second with an ID number the contract refuses."""
    return pa.table(
        {
            "id_number": ["11010519491231002X", BAD_ID, "110105194912310011"],
            "name": ["张三", "李四", "王五"],
            "gender": ["F", "M", "M"],
            "source": ["civil-affairs", "police", "police"],
            "record_uid": ["u0", "u1", "u2"],
            "source_record_id": ["s0", "s1", "s2"],
        }
    )


def by_expectation(results: list[dict[str, Any]]) -> dict[tuple[str | None, str | None], dict[str, Any]]:
    return {(row["expectation_type"], row["checked_column"]): row for row in results}


def test_a_failing_row_leaves_each_expectations_result_its_source_and_ids_but_not_its_value(
    contract: BatchContract,
) -> None:
    screening = contract.table_violations("person", people())

    assert list(screening.broken) == [1]
    results = by_expectation(screening.results)
    assert set(results) == {
        (None, None),
        REGEX,
        ("expect_column_values_to_not_be_null", "name"),
        ("expect_column_values_to_be_in_set", "gender"),
    }
    suite = results[(None, None)]
    assert suite | {"unexpected_percent": round(suite["unexpected_percent"], 2)} == suite | {
        "lane": "bulk",
        "kind": "person",
        "success": False,
        "element_count": 3,
        "unexpected_count": 1,
        "unexpected_percent": 33.33,
        "sources": ["police", "civil-affairs"],
        "source_rows": [2, 1],
        "failing_sources": ["police"],
        "failing_source_rows": [1],
        "failing_record_uids": ["u1"],
        "failing_source_record_ids": ["s1"],
    }
    regex = results[REGEX]
    assert (regex["success"], regex["element_count"], regex["unexpected_count"]) == (False, 3, 1)
    assert json.loads(regex["parameters"]) == {"regex": "^[0-9]{17}[0-9X]$"}
    assert (regex["failing_sources"], regex["failing_record_uids"]) == (["police"], ["u1"])
    name = results[("expect_column_values_to_not_be_null", "name")]
    assert (name["success"], name["unexpected_count"], name["failing_sources"]) == (True, 0, [])
    assert BAD_ID not in json.dumps(screening.results, ensure_ascii=False)


def test_a_batch_that_passes_leaves_one_row_per_kind_with_its_counts_by_source(contract: BatchContract) -> None:
    rows = [{"id_number": "11010519491231002X", "name": "张三", "gender": "F", "source": "civil-affairs"}] * 2
    screening = contract.violations("person", rows)
    assert screening.broken == {}
    [suite] = screening.results
    assert (suite["lane"], suite["expectation_type"], suite["success"]) == ("record", None, True)
    assert (suite["element_count"], suite["unexpected_count"], suite["sources"], suite["source_rows"]) == (
        2,
        0,
        ["civil-affairs"],
        [2],
    )


def test_the_catalogue_names_every_expectation_of_every_kind_and_its_table(contract: BatchContract) -> None:
    catalogue = {(row["kind"], row["expectation_type"], row["checked_column"]): row for row in contract.expectations()}
    person = catalogue[("person", *REGEX)]
    assert person["target_table"] == "person_sources"
    assert person["rule"] == "id_number must match ^[0-9]{17}[0-9X]$"
    assert {kind for kind, _, _ in catalogue} == set(ENTITY_TABLES)


def person_message(id_number: str, source_record_id: str) -> bytes:
    """A person put on canonical.person around the worker, as a rogue producer would."""
    meta = {
        "record_uid": f"uid-{source_record_id}",
        "source": "rogue",
        "source_record_id": source_record_id,
        "entity": "person",
        "run_id": None,
        "received_at": "2026-11-25T09:00:00+08:00",
        "processed_at": "2026-11-25T09:00:01+08:00",
        "outcome": "new",
        "fingerprint": "x",
        "record_version": CONTRACTS["person"].version,  # current: read as it is, not through the model
    }
    record = {"record": {"id_number": id_number, "name": "冒名", "gender": "M"}, "meta": meta}
    return json.dumps(record, ensure_ascii=False).encode()


def results(connection: duckdb.DuckDBPyConnection, schema: str = "main") -> list[dict[str, Any]]:
    cursor = connection.execute(
        f"SELECT * FROM {schema}.quality_results ORDER BY message_offset, expectation_type NULLS FIRST, checked_column"
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_results_commit_with_their_batch_once_however_often_it_is_written(
    warehouse: tuple[IsolatingWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    resident = resident_id()
    message = person_message(BAD_ID, resident)
    for _ in range(2):  # the same batch again, as after a replay: its results are not counted twice
        writer.write(decode_message(canonical_topic("person"), 0, 7, message), threading.Event())

    kept = results(connection)
    assert [(row["expectation_type"], row["success"]) for row in kept] == [
        (None, False),
        ("expect_column_values_to_be_in_set", True),
        ("expect_column_values_to_match_regex", False),
        ("expect_column_values_to_not_be_null", True),
    ]
    assert {(row["topic"], row["partition"], row["message_offset"], row["topic_id"]) for row in kept} == {
        ("canonical.person", 0, 7, "topic-1")
    }
    regex = by_expectation(kept)[REGEX]
    assert (regex["lane"], regex["kind"], regex["failing_sources"], regex["failing_source_rows"]) == (
        "record",
        "person",
        ["rogue"],
        [1],
    )
    assert regex["failing_source_record_ids"] == [resident]
    assert connection.execute("SELECT reason_code FROM rejects").fetchall() == [("contract_violation",)]
    assert BAD_ID not in json.dumps(kept, ensure_ascii=False, default=str)

    masked = by_expectation(results(connection, "masked"))[REGEX]
    assert (masked["failing_sources"], masked["failing_source_rows"], masked["unexpected_count"]) == (["rogue"], [1], 1)
    assert masked["failing_source_record_ids"][0].startswith("P-"), "an analyst sees a resident ID as its pseudonym"
    assert json.loads(masked["parameters"]) == {"regex": "^[0-9]{17}[0-9X]$"}

    writer.write(decode_message(canonical_topic("person"), 0, 8, message), threading.Event())
    assert connection.execute("SELECT count(*) FROM quality_results WHERE message_offset = 8").fetchone() == (4,)
    recreated = IsolatingWriter(writer.writer, dict.fromkeys(sink_topics(), "topic-2"), writer.contract)
    recreated.write(decode_message(canonical_topic("person"), 0, 7, message), threading.Event())
    assert connection.execute(
        "SELECT count(*) FROM quality_results WHERE message_offset = 7 GROUP BY topic_id ORDER BY topic_id"
    ).fetchall() == [(4,), (4,)], "offset 7 of a recreated topic is another message"


def test_a_transaction_tried_again_keeps_the_first_validation(contract: BatchContract) -> None:
    batch = decode_message(canonical_topic("person"), 0, 1, person_message(BAD_ID, "s1"))
    assert contract.enforce(batch) == 1
    first = list(batch.quality)
    assert contract.enforce(batch) == 0
    assert batch.quality == first
    assert by_expectation(first)[(None, None)]["unexpected_count"] == 1


def test_the_bulk_lane_keeps_the_results_of_the_changed_rows_it_screens(
    warehouse: tuple[IsolatingWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    rows = pa.Table.from_pylist(
        [
            {
                "record_uid": "b1",
                "source_record_id": "x1",
                "id_number": resident_id(),
                "name": "甲",
                "fingerprint": "1",
            },
            {"record_uid": "b2", "source_record_id": "x2", "id_number": BAD_ID, "name": "乙", "fingerprint": "2"},
        ]
    )
    value = encode_batch(RecordBatch("person", "civil-affairs", "run-b", T0, rows, processed_at=T0))
    writer.write(decode_message(CANONICAL_BATCHES, 0, 3, value), threading.Event())

    kept = by_expectation(results(connection))
    suite, regex = kept[(None, None)], kept[REGEX]
    assert (suite["lane"], suite["element_count"], suite["unexpected_count"]) == ("bulk", 2, 1)
    assert (suite["sources"], suite["source_rows"]) == (["civil-affairs"], [2])
    assert (regex["failing_record_uids"], regex["failing_source_record_ids"]) == (["b2"], ["x2"])
    assert connection.execute("SELECT record_uid FROM rejects").fetchall() == [("b2",)]
