"""History and lineage on the running hub: versions kept by an update, untouched by a resend, traced to Kafka."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.files import write_csv
from tests.support.hub import Hub, unique
from tests.support.hub import report as make_report
from tests.support.identities import resident_id

HEADER = ["姓名", "公民身份号码", "性别", "联系电话", "住址"]


def run_of(output: str) -> str:
    found = re.search(r"as run ([0-9a-f]+)", output)
    assert found, output
    return found.group(1)


def test_an_update_and_a_resend_leave_exactly_the_right_versions_and_as_of_answers(hub: Hub, tmp_path: Path) -> None:
    source = unique("civil-affairs")
    person, neighbour = resident_id(), resident_id()
    first = write_csv(
        tmp_path / "v1.csv",
        HEADER,
        [["赵敏", person, "", "", "孟河镇通江路12号"], ["钱军", neighbour, "", "", "孟河镇1号"]],
    )
    moved = write_csv(
        tmp_path / "v2.csv",
        HEADER,
        [["赵敏", person, "", "", "孟河镇富民路3号"], ["钱军", neighbour, "", "", "孟河镇1号"]],
    )
    loaded = hub.ingest(first, source, "person", "--wait")
    assert loaded.returncode == 0, loaded.stderr
    updated = hub.ingest(moved, source, "person", "--wait")
    assert updated.returncode == 0, updated.stderr
    resent = hub.ingest(moved, source, "person", "--wait")
    assert resent.returncode == 0, resent.stderr
    assert hub.outcomes(source=source) == {"new": 2, "update": 1, "duplicate": 3}

    versions = hub.sql(
        "SELECT address, valid_from, valid_to FROM person_sources_history "
        f"WHERE source = '{source}' AND id_number = '{person}' ORDER BY valid_from"
    )
    assert [row[0] for row in versions] == ["孟河镇通江路12号", "孟河镇富民路3号"]
    assert versions[0][2] == versions[1][1] and versions[1][2] is None
    assert hub.scalar(f"SELECT count(*) FROM person_sources_history WHERE id_number = '{neighbour}'") == 1
    golden = hub.sql(f"SELECT valid_from FROM people_history WHERE id_number = '{person}' ORDER BY valid_from")
    assert len(golden) == 2
    between = versions[1][1]
    assert hub.sql(
        f"SELECT address FROM people_as_of(TIMESTAMPTZ '{between}' - INTERVAL 1 MICROSECOND) "
        f"WHERE id_number = '{person}'"
    ) == [["孟河镇通江路12号"]]
    assert hub.sql(f"SELECT address FROM people_as_of(now()) WHERE id_number = '{person}'") == [["孟河镇富民路3号"]]

    lineage = hub.sql(
        "SELECT run_id, topic, partition, message_offset FROM person_sources "
        f"WHERE source = '{source}' AND id_number = '{person}'"
    )
    assert lineage[0][0] == run_of(updated.stdout)
    assert lineage[0][1] in ("canonical.person", "canonical.batches") and lineage[0][3] >= 0
    shown = hub.cli("show", "person", person, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    profile = json.loads(shown.stdout)
    assert [copy["message_offset"] for copy in profile["copies"] if copy["source"] == source] == [lineage[0][3]]
    assert len(profile["versions"]) == 2


def test_every_case_row_names_the_message_it_came_from(hub: Hub) -> None:
    report = make_report(
        unique("R"),
        category="0101",
        description="路灯不亮",
        reported_at="2026-11-25T09:30:00+08:00",
        reporter_id="GW001",
    )
    status, answer = hub.post("/v1/reports", report)
    assert status == 202, answer
    hub.settled()
    case_id = hub.scalar(f"SELECT case_id FROM events WHERE event_id = '{report['report_id']}'")
    shown = hub.cli("show", "event", case_id, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    lineage = json.loads(shown.stdout)["lineage"]
    assert {row["row_of"] for row in lineage} == {"case", "report", "step"}
    assert all(row["topic"] and row["message_offset"] is not None for row in lineage)
    assert {row["topic"] for row in lineage if row["row_of"] == "report"} == {"canonical.event"}
