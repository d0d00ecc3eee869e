"""The run ledger: the sink keeps each run's last word, and its status and counts come from the intake ledger."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest

from foundation.access import Caller, Forbidden
from schemas.messages import reject_message
from schemas.rejects import Reject
from schemas.runs import RunNotice
from schemas.topics import DUPLICATES, REJECTS, RUNS, sink_topics
from warehouse.audit import ensure_audit_table
from warehouse.decode import decode_message
from warehouse.query_server import run_ledger
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.runs import BadRunQuery, RunQuery
from warehouse.writer import Batch, WarehouseWriter, connect

TOPIC_IDS = dict.fromkeys(sink_topics(), "topic-1")
COMMANDER = Caller("command-centre", "commander")
_offsets = itertools.count()
_uids = itertools.count()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WarehouseWriter, duckdb.DuckDBPyConnection]]:
    """A warehouse set up by the sink's own start-up; each test writes runs of a source of its own."""
    resolver = Resolver(ResolutionRules.load())
    connection = connect(tmp_path_factory.mktemp("w") / "warehouse.duckdb", resolver)
    ensure_audit_table(connection)
    yield WarehouseWriter(connection, resolver), connection
    connection.close()


def announce(writer: WarehouseWriter, *notices: RunNotice) -> None:
    """The notices as the sink reads them from the runs topic, in one transaction."""
    batch = Batch()
    for notice in notices:
        batch.absorb(decode_message(RUNS, 0, next(_offsets), notice.model_dump_json().encode()))
    writer.write(batch, TOPIC_IDS)


def take_in(writer: WarehouseWriter, run: RunNotice, *outcomes: str, quoting: str = "") -> None:
    """Records of ``run`` as the sink accounts for them: ``new``, ``update``, ``duplicate``, or a reject's code.

    A reject's reason names its code and record, then ``quoting`` (what a reason may quote of the record).
    """
    batch = Batch()
    now = datetime.now(UTC)
    for outcome in outcomes:
        uid = f"uid-{next(_uids)}"
        provenance = {"record_uid": uid, "run_id": run.run_id, "source": run.source, "entity": "person"}
        if outcome == "duplicate":
            batch.absorb(decode_message(DUPLICATES, 0, next(_offsets), json.dumps({"meta": provenance}).encode()))
        elif outcome in ("new", "update"):
            batch.intake.append({**provenance, "source_record_id": uid, "outcome": outcome, "written_at": now})
        else:
            reason = f"{outcome} in row {uid}{quoting}"
            reject = Reject.build("validate", outcome, reason, {"id": uid}, source_record_id=uid, **provenance)
            batch.absorb(decode_message(REJECTS, 0, next(_offsets), reject_message(reject)))
    writer.write(batch, TOPIC_IDS)


def summary(connection: duckdb.DuckDBPyConnection, run: RunNotice) -> dict[str, Any]:
    cursor = connection.execute("SELECT * FROM run_summary WHERE run_id = ?", [run.run_id])
    names = [column[0] for column in cursor.description]
    rows = cursor.fetchall()
    assert len(rows) == 1, "one row per run, however often it was announced"
    return dict(zip(names, rows[0], strict=True))


def begun(source: str, started_by: str | None = "clerk-wang") -> RunNotice:
    return RunNotice.begin("ingest", source, "person", "households.csv", started_by)


def test_a_published_run_is_complete_once_the_intake_ledger_accounts_for_every_record_it_sent(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    run = begun("status")
    announce(writer, run)
    take_in(writer, run, "new", "new", "update", "duplicate")
    assert summary(connection, run)["status"] == "running"
    announce(writer, run.published_all(published=6, refused=1))
    assert summary(connection, run)["status"] == "published", "4 of 7 accounted for"
    take_in(writer, run, "missing_name", "missing_name", "invalid_id_number")
    row = summary(connection, run)
    assert row["status"] == "complete"
    assert {name: row[name] for name in ("new", "updated", "duplicate", "rejected", "accounted")} == {
        "new": 2, "updated": 1, "duplicate": 1, "rejected": 3, "accounted": 7
    }  # fmt: skip
    assert row["rejected_by_reason"] == "missing_name 2, invalid_id_number 1"
    rejects = connection.execute(
        "SELECT reason_code, records, starts_with(example, reason_code) FROM run_rejects WHERE run_id = ? ORDER BY 1",
        [run.run_id],
    ).fetchall()
    assert rejects == [("invalid_id_number", 1, True), ("missing_name", 2, True)]


def test_an_empty_export_is_complete_at_once_and_a_failed_run_stays_failed_whatever_landed(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    empty, broken = begun("empty"), begun("broken")
    announce(writer, empty, empty.published_all(0, 0), broken)
    take_in(writer, broken, "new")
    announce(writer, broken.failed(RuntimeError("the disk is full")))
    assert summary(connection, empty)["status"] == "complete"
    failed = summary(connection, broken)
    assert (failed["status"], failed["new"], failed["error"]) == ("failed", 1, "RuntimeError: the disk is full")


def test_a_replayed_topic_neither_doubles_nor_undoes_a_run_and_the_later_end_stands(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    run = begun("replay")
    failed = run.failed(RuntimeError("broker away"))
    published = run.published_all(3, 0)
    announce(writer, run, failed)
    announce(writer, run, published)  # a retry of the same run (the watched folder's) begins again, then ends
    announce(writer, run, failed, run, published)  # the whole topic read again
    announce(writer, run)
    row = summary(connection, run)
    assert (row["status"], row["published"], row["error"]) == ("published", 3, None)
    assert row["ended_at"] == published.ended_at


def ledger(connection: duckdb.DuckDBPyConnection, caller: Caller, **query: Any) -> list[dict[str, Any]]:
    found = run_ledger(connection, caller, RunQuery(**query))
    return [dict(zip(found["columns"], row, strict=True)) for row in found["rows"]]


def test_runs_are_listed_newest_first_and_a_publisher_sees_only_its_own_source(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    first, second, other = begun("water-dept"), begun("water-dept"), begun("police-dept")
    announce(writer, first, first.published_all(0, 0), second, other)

    listed = ledger(connection, COMMANDER, source="water-dept")
    assert [row["run_id"] for row in listed] == [second.run_id, first.run_id]
    assert [row["run_id"] for row in ledger(connection, COMMANDER, source="water-dept", limit=1)] == [second.run_id]
    assert [row["run_id"] for row in ledger(connection, COMMANDER, source="water-dept", status="complete")] == [
        first.run_id
    ]
    publisher = Caller("water-system", "publisher", source="water-dept")
    assert {row["source"] for row in ledger(connection, publisher)} == {"water-dept"}
    assert ledger(connection, publisher, run_id=other.run_id) == [], "another source's run is not found"
    with pytest.raises(Forbidden):
        ledger(connection, Caller("desk-water", "desk", department="water"))


def test_one_run_comes_with_its_rejects_and_masked_roles_see_who_started_it_as_a_pseudonym(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    run = begun("masked", started_by="王丽")
    announce(writer, run, run.published_all(1, 0))
    take_in(writer, run, "invalid_phone", quoting=": 13912345678 is no number")
    analyst = Caller("analyst-li", "analyst")
    found = run_ledger(connection, analyst, RunQuery(run_id=run.run_id))
    (row,) = (dict(zip(found["columns"], values, strict=True)) for values in found["rows"])
    assert row["status"] == "complete" and row["started_by"].startswith("P-")
    [(code, records, example)] = found["rejects"]["rows"]
    assert (code, records) == ("invalid_phone", 1) and example.endswith(": 139****5678 is no number")
    whole = run_ledger(connection, COMMANDER, RunQuery(run_id=run.run_id))
    assert whole["rows"][0][whole["columns"].index("started_by")] == "王丽"
    assert whole["rejects"]["rows"][0][2].endswith(": 13912345678 is no number")
    audited = connection.execute(
        "SELECT caller, action, statement FROM audit_log WHERE caller = 'analyst-li'"
    ).fetchall()
    assert audited == [("analyst-li", "runs", f"runs run_id={run.run_id} limit=20")]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"run_id": "../etc"}, "hexadecimal"),
        ({"status": "done"}, "--status must be one of running, published, complete, failed"),
        ({"limit": 0}, "--limit must be between 1 and 1000"),
    ],
)
def test_a_query_for_what_cannot_be_asked_is_refused_in_one_line(query: dict[str, Any], problem: str) -> None:
    with pytest.raises(BadRunQuery, match=problem):
        RunQuery(**query)
    with pytest.raises(BadRunQuery, match="whole number"):
        RunQuery.of_params({"limit": ["ten"]})


def test_a_query_travels_as_url_parameters_unchanged() -> None:
    query = RunQuery("ab12", "civil-affairs", "failed", 5)
    assert RunQuery.of_params({name: [value] for name, value in query.params().items()}) == query


def test_the_notice_schema_names_every_column_of_the_runs_table(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    from warehouse.runs import NOTICE_SCHEMA

    _, connection = warehouse
    columns = connection.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'runs' AND schema_name = 'main' "
        "ORDER BY column_index"
    ).fetchall()
    assert [name for (name,) in columns] == NOTICE_SCHEMA.names
