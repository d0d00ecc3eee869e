"""``gridhub export`` while the hub runs: the rows stream from the sink's query server, in the caller's role.

The export is read back with DuckDB, as a county reading many towns' exports would, and compared
with what the same caller's SQL sees in the running warehouse: the same rows and columns, an
analyst's resident IDs masked, the commander's whole and audited as a read of personal data.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from schemas.personal import mask_id_number
from tests.support.files import write_csv
from tests.support.hub import Hub, report, unique, wait_until
from tests.support.identities import resident_id
from warehouse.reader import audit, query

pytestmark = pytest.mark.integration

TABLES = ("people", "person_sources", "events", "cases")
"""Relations only a test's own records change, so nothing in the background moves their counts."""


def parquet(folder: Path, relation: str) -> str:
    return f"read_parquet('{folder}/{relation}/**/*.parquet', hive_partitioning = true)"


def test_an_export_of_the_running_hub_reads_back_with_the_warehouse_counts_masked_and_whole(
    hub: Hub, tmp_path: Path
) -> None:
    person = resident_id()
    people = write_csv(tmp_path / "people.csv", ["姓名", "公民身份号码"], [["钱多多", person]])
    assert hub.ingest(people, unique("civil-affairs"), "person", "--wait").returncode == 0
    case_id = unique("R")
    fields = {"category": "0101", "description": "暴露垃圾", "reported_at": "2026-11-25T09:30:00+08:00"}
    assert hub.post("/v1/reports", report(case_id, reporter_id="GW001", **fields))[0] == 202
    wait_until(lambda: hub.scalar(f"SELECT count(*) FROM cases WHERE case_id = '{case_id}'"), what="the case")
    hub.settled()

    for token, masked in ((hub.tokens.analyst, True), (hub.tokens.commander, False)):
        folder = tmp_path / ("analyst" if masked else "commander")
        result = hub.cli("export", str(folder), "--tables", ",".join(TABLES), token=token)
        assert result.returncode == 0, result.stderr
        manifest = json.loads((folder / "manifest.json").read_text())
        assert (manifest["masked"], list(manifest["tables"])) == (masked, list(TABLES))
        for relation in TABLES:
            seen = query(hub.as_caller(token), f"SELECT * FROM {relation} LIMIT 0")["columns"]
            [(count,)] = query(hub.as_caller(token), f"SELECT count(*) FROM {relation}")["rows"]
            read = duckdb.execute(f"SELECT * FROM {parquet(folder, relation)} LIMIT 0")
            assert [column[0] for column in read.description or []][: len(seen)] == seen, relation
            assert duckdb.execute(f"SELECT count(*) FROM {parquet(folder, relation)}").fetchall() == [(count,)]
            assert manifest["tables"][relation]["rows"] == count, relation
        ids = {row[0] for row in duckdb.execute(f"SELECT id_number FROM {parquet(folder, 'people')}").fetchall()}
        assert (person in ids, mask_id_number(person) in ids) == (not masked, masked)
        months = duckdb.execute(
            f"SELECT DISTINCT town, month FROM {parquet(folder, 'events')} WHERE event_id = ?", [case_id]
        )
        assert months.fetchall() == [(320411101, "2026-11")]

    trail = audit(hub.as_caller(hub.admin), 200)
    exports = [dict(zip(trail["columns"], row, strict=True)) for row in trail["rows"]]
    assert any(
        entry["action"] == "export"
        and entry["role"] == "commander"
        and entry["personal"]
        and entry["outcome"] == "ok"
        and entry["statement"] == 'SELECT * FROM "main"."people"'
        for entry in exports
    )


def test_a_relation_outside_the_callers_role_is_refused_in_one_line(hub: Hub, tmp_path: Path) -> None:
    refused = hub.cli("export", str(tmp_path / "out"), "--tables", "audit_log", token=hub.tokens.analyst)
    assert refused.returncode == 2
    assert "you may not export audit_log" in refused.stderr and "Traceback" not in refused.stderr
    desk = hub.cli("export", str(tmp_path / "out"), "--tables", "events", token=next(iter(hub.tokens.desks.values())))
    assert desk.returncode == 2 and "this needs the role" in desk.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()
