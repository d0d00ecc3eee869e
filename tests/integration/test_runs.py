"""`gridhub runs`: every ingest, watched file and approvals poll, with what became of its records.

Each test feeds a source of its own, so the runs it reads are its own whatever else the session's
hub has taken in. A run's end notice and its records travel apart, so a test waits for the state
it asserts (the run complete) rather than for the records alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from foundation.access import Forbidden
from tests.integration.test_approval_system import add_rows, application
from tests.support.files import write_csv
from tests.support.hub import Hub, unique, wait_until
from tests.support.identities import resident_id
from warehouse.reader import runs as read_runs
from warehouse.runs import RunQuery

PEOPLE_HEADER = ["姓名", "公民身份号码", "住址"]


def runs(hub: Hub, *args: str) -> Any:
    """``gridhub runs ARGS -o json``, as command-centre staff."""
    result = hub.cli("runs", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def ledger(hub: Hub, query: RunQuery, token: str | None = None) -> list[dict[str, Any]]:
    """What ``gridhub runs`` reads, asked in this process (cheap enough to wait on)."""
    found = read_runs(hub.as_caller(token or hub.tokens.commander), query)
    return [dict(zip(found["columns"], row, strict=True)) for row in found["rows"]]


def ended(hub: Hub, query: RunQuery) -> dict[str, Any]:
    """The newest run ``query`` finds, once it has ended and (unless it failed) the warehouse accounts for it."""
    return wait_until(
        lambda: next((run for run in ledger(hub, query) if run["status"] in ("complete", "failed")), None),
        what=f"a run of {query} to end",
    )


def test_an_ingest_is_a_run_whose_records_are_counted_by_outcome_and_reason(hub: Hub, tmp_path: Path) -> None:
    source = unique("civil-affairs")
    alice, bob = resident_id(), resident_id()
    broken = alice[:17] + ("0" if alice[17] != "0" else "1")
    rows = [
        ["王芳", alice, "孟河镇万绥村1号"],
        ["王芳", alice, "孟河镇万绥村1号"],
        ["刘强", bob, "孟河镇小河村8号"],
        ["错号", broken, ""],
        ["", resident_id(), ""],
    ]
    result = hub.ingest(write_csv(tmp_path / "household.csv", PEOPLE_HEADER, rows), source, "person", "--wait")
    assert result.returncode == 0, result.stderr
    run_id = re.search(r"as run ([0-9a-f]+)", result.stdout).group(1)  # type: ignore[union-attr]

    ended(hub, RunQuery(run_id))
    shown = runs(hub, run_id)
    run = shown["run"]
    assert (run["kind"], run["source"], run["entity"], run["origin"]) == ("ingest", source, "person", "household.csv")
    assert run["status"] == "complete"
    assert run["started_by"].startswith("test-admin-"), "the commander sees who ingested it"
    assert run["started_at"] <= run["ended_at"] and run["landed_at"] is not None and run["error"] is None
    assert (run["published"], run["refused"]) == (5, 0)
    assert {name: run[name] for name in ("new", "updated", "duplicate", "rejected")} == {
        "new": 2, "updated": 0, "duplicate": 1, "rejected": 2
    }  # fmt: skip
    by_reason = {reject["reason_code"]: reject for reject in shown["rejects"]}
    assert {code: reject["records"] for code, reject in by_reason.items()} == {
        "invalid_id_number": 1,
        "missing_name": 1,
    }
    assert "check character" in by_reason["invalid_id_number"]["example"]

    detail = hub.cli("runs", run_id)
    assert detail.returncode == 0, detail.stderr
    assert f"run {run_id}: ingest of household.csv, complete" in detail.stdout
    assert f"gridhub rejects list --source {source} --reason" in detail.stdout


def test_an_export_refused_as_a_whole_is_a_failed_run_with_its_reason(hub: Hub, tmp_path: Path) -> None:
    source = unique("civil-affairs")
    path = tmp_path / "no_names.csv"
    path.write_text("公民身份号码,住址\n320411199001010011,孟河镇\n", encoding="utf-8")
    assert hub.ingest(path, source, "person").returncode == 2

    run = ended(hub, RunQuery(source=source))
    assert (run["kind"], run["status"], run["origin"], run["new"]) == ("ingest", "failed", "no_names.csv", 0)
    assert "lacks required column" in run["error"] and "姓名" in run["error"]
    assert runs(hub, "--source", source, "--status", "failed")[0]["run_id"] == run["run_id"]


def test_a_watched_file_is_a_watch_run_and_a_publisher_sees_only_its_own_runs(hub: Hub) -> None:
    source = unique("market")
    assert hub.settings.watch_dir is not None, "the session's hub watches a folder"
    lines = [json.dumps({"姓名": "周明", "公民身份号码": resident_id()}, ensure_ascii=False), '{"姓名": "半行']
    dropped = hub.settings.watch_dir / source / "person" / "people.jsonl"
    dropped.parent.mkdir(parents=True)
    dropped.write_text("\n".join(lines) + "\n", encoding="utf-8")

    run = ended(hub, RunQuery(source=source))
    assert (run["kind"], run["status"], run["origin"], run["started_by"]) == ("watch", "complete", "people.jsonl", None)
    assert (run["published"], run["refused"], run["new"], run["rejected"]) == (1, 1, 1, 1)
    assert run["rejected_by_reason"] == "unreadable_line 1"

    own = hub.book.add(unique("publisher"), "publisher", source=source)
    assert [seen["run_id"] for seen in ledger(hub, RunQuery(), token=own)] == [run["run_id"]]
    with pytest.raises(Forbidden, match="needs the role"):
        ledger(hub, RunQuery(source=source), token=hub.tokens.any_phone)


def test_an_approvals_poll_that_publishes_is_a_run_and_an_empty_poll_is_none(hub: Hub) -> None:
    application_id = unique("A")
    add_rows(hub, [application(application_id, "submitted", person=resident_id())])
    run_id = wait_until(
        lambda: hub.scalar(f"SELECT run_id FROM intake WHERE source_record_id = '{application_id}'"),
        what="the application in the intake ledger",
    )
    run = ended(hub, RunQuery(run_id))
    assert (run["kind"], run["source"], run["entity"], run["status"]) == (
        "approvals",
        "approvals",
        "application",
        "complete",
    )
    assert run["origin"] == "applications", "the table it read, never the database's URL"
    assert run["new"] >= 1 and run["accounted"] == run["published"] + run["refused"]
    # The poller has polled every 0.2 s since the hub started; a poll that found nothing would be a
    # run complete with nothing in it.
    assert hub.sql(
        "SELECT count(*) FROM run_summary WHERE kind = 'approvals' AND status = 'complete' AND accounted = 0"
    ) == [[0]]
