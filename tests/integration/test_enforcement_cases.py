"""The enforcement bureau's case files through `gridhub ingest --wait`, as its case system exports them.

A grid case of illegal construction opens through the gateway; the bureau's export names it, the
power it used, the officer and the party; the warehouse links the file to the grid case and to the
party's golden record. The files the bureau's rules refuse end in the rejects with the rule named.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.files import write_csv
from tests.support.hub import Hub, report, unique, wait_until
from tests.support.identities import resident_id

HEADERS = [
    "案件编号",
    "网格案件编号",
    "执法事项编码",
    "当事人",
    "当事人身份证号",
    "承办人编号",
    "立案时间",
    "调查取证时间",
    "告知时间",
    "决定时间",
    "执行时间",
    "结案时间",
    "处理决定",
]
DAY = "2026-11-25T"


def test_case_files_land_linked_to_their_grid_case_and_party_and_bad_ones_are_refused_by_rule(
    hub: Hub, tmp_path: Path
) -> None:
    party = resident_id()
    people = write_csv(tmp_path / "people.csv", ["姓名", "公民身份号码"], [["李建华", party]])
    assert hub.ingest(people, unique("civil-affairs"), "person", "--wait").returncode == 0
    grid_case = unique("R")
    status, answer = hub.post(
        "/v1/reports",
        report(
            grid_case,
            category="0101",
            description="违法搭建彩钢棚",
            reported_at=f"{DAY}09:30:00+08:00",
            reporter_id="GW001",
        ),
    )
    assert status == 202, answer
    wait_until(lambda: hub.scalar(f"SELECT count(*) FROM cases WHERE case_id = '{grid_case}'"), what="the grid case")

    source = unique("enforcement-bureau")
    number = unique("ZF").upper()
    good = [
        f"{number}-1",
        grid_case,
        "ZF-CG-005",
        "李建华",
        party,
        "ZF03",
        f"{DAY}09:45",
        f"{DAY}09:50",
        f"{DAY}10:00",
        f"{DAY}10:10",
        f"{DAY}11:10",
        f"{DAY}11:30",
        "责令限期拆除",
    ]
    dropped = [
        f"{number}-2",
        "",
        "ZF-LD-003",
        "李建华",
        party,
        "ZF20",
        f"{DAY}14:00",
        f"{DAY}15:00",
        "",
        "",
        "",
        f"{DAY}16:00",
        "",
    ]
    unknown_power = [f"{number}-3", "", "ZF-XX-999", "李建华", party, "ZF03", f"{DAY}09:00", "", "", "", "", "", ""]
    skipped = [
        f"{number}-4",
        "",
        "ZF-CG-005",
        "李建华",
        party,
        "ZF03",
        f"{DAY}09:00",
        f"{DAY}09:10",
        "",
        f"{DAY}09:20",
        "",
        "",
        "",
    ]
    backwards = [
        f"{number}-5",
        "",
        "ZF-CG-005",
        "李建华",
        party,
        "ZF03",
        f"{DAY}09:00",
        f"{DAY}08:10",
        "",
        "",
        "",
        "",
        "",
    ]
    stranger = [f"{number}-6", "", "ZF-CG-005", "李建华", party, "ZF99", f"{DAY}09:00", "", "", "", "", "", ""]
    no_party = [f"{number}-7", "", "ZF-CG-005", "", "", "ZF03", f"{DAY}09:00", "", "", "", "", "", ""]
    rows = [good, dropped, unknown_power, skipped, backwards, stranger, no_party]
    path = write_csv(tmp_path / "cases.csv", HEADERS, rows)

    result = hub.ingest(path, source, "enforcement_case", "--wait")

    assert result.returncode == 0, result.stderr
    assert hub.outcomes(source=source) == {"new": 2, "rejected": 5}
    reasons = dict(hub.sql(f"SELECT source_record_id, reason_code FROM rejects WHERE source = '{source}'"))
    assert reasons == {
        f"{number}-3": "unknown_power",
        f"{number}-4": "stage_skipped",
        f"{number}-5": "stage_out_of_order",
        f"{number}-6": "unknown_officer",
        f"{number}-7": "missing_party",
    }
    facts = hub.sql(
        "SELECT case_no, status, squad, grid_case_status IS NOT NULL, person_key IS NOT NULL, on_time "
        f"FROM enforcement_case_facts WHERE case_no LIKE '{number}-%' ORDER BY case_no"
    )
    assert facts == [
        [f"{number}-1", "closing", "wansui", True, True, True],
        [f"{number}-2", "closing", "mengcheng", False, True, True],
    ]


def test_a_resent_unchanged_file_is_a_duplicate_and_a_later_stage_updates_the_case(hub: Hub, tmp_path: Path) -> None:
    source = unique("enforcement-bureau")
    number = unique("ZF").upper()
    row = [number, "", "ZF-CG-008", "周明", resident_id(), "ZF16", f"{DAY}10:00", f"{DAY}10:30", "", "", "", "", ""]
    path = write_csv(tmp_path / "cases.csv", HEADERS, [row])
    assert hub.ingest(path, source, "enforcement_case", "--wait").returncode == 0
    assert hub.ingest(path, source, "enforcement_case", "--wait").returncode == 0
    row[8], row[9], row[12] = f"{DAY}11:00", f"{DAY}11:30", "罚款"
    write_csv(path, HEADERS, [row])
    assert hub.ingest(path, source, "enforcement_case", "--wait").returncode == 0

    assert hub.outcomes(source=source) == {"new": 1, "duplicate": 1, "update": 1}
    assert hub.sql(f"SELECT status, decision FROM enforcement_cases WHERE case_no = '{number}'") == [
        ["decision", "罚款"]
    ]
    assert hub.scalar(f"SELECT list(stage ORDER BY \"at\") FROM enforcement_steps WHERE case_no = '{number}'") == [
        "filing",
        "investigation",
        "notice",
        "decision",
    ]


def test_show_event_tells_a_cases_whole_story_masked_for_an_analyst(hub: Hub, tmp_path: Path) -> None:
    party = resident_id()
    grid_case = unique("R")
    status, answer = hub.post(
        "/v1/reports",
        report(
            grid_case,
            category="0201",
            description="电线杆上贴满小广告",
            reported_at=f"{DAY}10:00:00+08:00",
            reporter_id="GW002",
        ),
    )
    assert status == 202, answer
    number = unique("ZF").upper()
    row = [number, grid_case, "ZF-CG-008", "赵强", party, "ZF05", f"{DAY}10:20", "", "", "", "", "", ""]
    path = write_csv(tmp_path / "cases.csv", HEADERS, [row])
    assert hub.ingest(path, unique("enforcement-bureau"), "enforcement_case", "--wait").returncode == 0
    wait_until(
        lambda: hub.scalar(f"SELECT count(*) FROM case_transitions WHERE case_id = '{grid_case}'") >= 3,
        what="the automatic accept and dispatch",
    )

    shown = hub.cli("show", "event", grid_case, "--output", "json", token=hub.tokens.analyst)

    assert shown.returncode == 0, shown.stderr
    story = json.loads(shown.stdout)
    assert story["case_id"] == grid_case
    assert story["case"]["department"] == "enforcement"
    assert [report["event_id"] for report in story["reports"]] == [grid_case]
    assert [step["to_status"] for step in story["steps"]][:3] == ["reported", "accepted", "dispatched"]
    [enforcement] = story["enforcement"]
    assert (enforcement["case_no"], enforcement["status"], enforcement["squad"]) == (number, "filing", "wansui")
    assert enforcement["party_name"] == "赵*"
    assert party not in shown.stdout


def test_show_event_for_an_unknown_or_malformed_id_says_so_in_one_line(hub: Hub) -> None:
    for wanted in ("R-NO-SUCH-CASE", "../../etc/passwd"):
        shown = hub.cli("show", "event", wanted)
        assert shown.returncode != 0
        assert "Traceback" not in shown.stderr
        assert "no case or report" in shown.stderr or "not a case or report id" in shown.stderr
