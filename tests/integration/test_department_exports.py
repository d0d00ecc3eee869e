"""Department exports through `gridhub ingest --wait`: the command a data clerk runs.

Each test ingests as a source of its own, so what it counts is its own whatever else the
session's hub has taken in.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.files import write_csv
from tests.support.hub import Hub, unique
from tests.support.identities import resident_id, uscc

PEOPLE_HEADER = ["姓名", "公民身份号码", "性别", "联系电话", "住址"]


def test_people_export_lands_deduplicated_with_rejects_explained(hub: Hub, tmp_path: Path) -> None:
    source = unique("civil-affairs")
    alice, bob = resident_id(), resident_id()
    broken = alice[:17] + ("0" if alice[17] != "0" else "1")
    lower_x = next(code for code in iter(resident_id, None) if code.endswith("X"))
    rows = [
        ["王芳", alice, "", "13900000001", "孟河镇万绥村1号"],
        ["王芳", alice, "", "13900000001", "孟河镇万绥村1号"],
        ["刘强", bob, "", "", "孟河镇小河村8号"],
        ["陈静", lower_x.lower(), "", "", ""],
        ["错号", broken, "", "", ""],
        ["", resident_id(), "", "", ""],
    ]
    path = write_csv(tmp_path / "household.csv", PEOPLE_HEADER, rows)

    result = hub.ingest(path, source, "person", "--wait")

    assert result.returncode == 0, result.stderr
    assert "published 6 records" in result.stdout
    assert hub.outcomes(source=source) == {"new": 3, "duplicate": 1, "rejected": 2}
    assert hub.sql(f"SELECT name, address FROM people WHERE id_number = '{alice}'") == [["王芳", "孟河镇万绥村1号"]]
    assert hub.scalar(f"SELECT count(*) FROM people WHERE id_number = '{lower_x}'") == 1
    reasons = dict(hub.sql(f"SELECT reason_code, reason FROM rejects WHERE source = '{source}'"))
    assert set(reasons) == {"invalid_id_number", "missing_name"}
    assert "check character" in reasons["invalid_id_number"]


def test_resync_of_unchanged_export_is_all_duplicates_and_a_change_is_an_update(hub: Hub, tmp_path: Path) -> None:
    source = unique("civil-affairs")
    people = [["赵一", resident_id(), "", "13900000011", "孟河镇南兴村"] for _ in range(20)]
    path = write_csv(tmp_path / "register.csv", PEOPLE_HEADER, people)
    assert hub.ingest(path, source, "person", "--wait").returncode == 0
    assert hub.ingest(path, source, "person", "--wait").returncode == 0
    people[3][4] = "孟河镇东兵村"
    write_csv(path, PEOPLE_HEADER, people)
    assert hub.ingest(path, source, "person", "--wait").returncode == 0

    assert hub.outcomes(source=source) == {"new": 20, "duplicate": 39, "update": 1}
    assert hub.scalar(f"SELECT address FROM people WHERE id_number = '{people[3][1]}'") == "孟河镇东兵村"


def test_gbk_export_with_bom_free_chinese_headers_loads(hub: Hub, tmp_path: Path) -> None:
    person = resident_id()
    path = write_csv(tmp_path / "gbk.csv", PEOPLE_HEADER, [["孙丽", person, "", "", "孟河镇通江村"]], encoding="gbk")
    result = hub.ingest(path, unique("civil-affairs-gbk"), "person", "--wait")
    assert result.returncode == 0, result.stderr
    assert hub.sql(f"SELECT name, address FROM people WHERE id_number = '{person}'") == [["孙丽", "孟河镇通江村"]]


def test_organisation_jsonl_with_unreadable_lines_keeps_them_as_rejects(hub: Hub, tmp_path: Path) -> None:
    source = unique("market")
    code = uscc()
    lines = [
        json.dumps(
            {"单位名称": "常州孟河汽配有限公司", "统一社会信用代码": code, "法定代表人": "周明"}, ensure_ascii=False
        ),
        '{"单位名称": "半行',
        "[1, 2]",
        json.dumps({"单位名称": "坏码公司", "统一社会信用代码": code[:17] + ("A" if code[17] != "A" else "B")}),
    ]
    path = tmp_path / "enterprises.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = hub.ingest(path, source, "organisation", "--wait")

    assert result.returncode == 0, result.stderr
    assert hub.sql(f"SELECT name, legal_representative FROM organisations WHERE uscc = '{code}'") == [
        ["常州孟河汽配有限公司", "周明"]
    ]
    reasons = sorted(hub.sql(f"SELECT reason_code, stage FROM rejects WHERE source = '{source}'"))
    assert reasons == [["invalid_uscc", "validate"], ["unreadable_line", "decode"], ["unreadable_line", "decode"]]


def test_export_without_required_columns_is_refused_before_publishing(hub: Hub, tmp_path: Path) -> None:
    source = unique("civil-affairs")
    path = tmp_path / "no_names.csv"
    path.write_text("公民身份号码,住址\n320411199001010011,孟河镇\n", encoding="utf-8")

    result = hub.ingest(path, source, "person")

    assert result.returncode == 2
    assert "lacks required column" in result.stderr
    assert "姓名" in result.stderr
    assert "Traceback" not in result.stderr
    hub.settled()  # a record sent before the refusal would be in the intake ledger now
    assert hub.outcomes(source=source) == {}


def test_ingest_of_a_missing_file_or_unknown_format_says_so(hub: Hub, tmp_path: Path) -> None:
    missing = hub.ingest(tmp_path / "nope.csv", "x", "person")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    odd = tmp_path / "register.xml"
    odd.write_text("<people/>")
    wrong = hub.ingest(odd, "x", "person")
    assert wrong.returncode == 2
    assert "unsupported export format" in wrong.stderr
