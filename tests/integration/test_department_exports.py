"""Department exports through `gridhub ingest --wait`: the command a data clerk runs."""

from __future__ import annotations

import json
from pathlib import Path

from support import Hub, resident_id, uscc


def write_people_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    lines = ["姓名,公民身份号码,性别,联系电话,住址", *(",".join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def outcomes_of(hub: Hub, source: str) -> dict[str, int]:
    return dict(hub.sql(f"SELECT outcome, count(*) FROM intake WHERE source = '{source}' GROUP BY 1"))


def test_people_export_lands_deduplicated_with_rejects_explained(hub: Hub, tmp_path: Path) -> None:
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
    path = write_people_csv(tmp_path / "household.csv", rows)

    result = hub.cli("ingest", str(path), "--source", "civil-affairs-a", "--entity", "person", "--wait")

    assert result.returncode == 0, result.stderr
    assert "published 6 records" in result.stdout
    assert outcomes_of(hub, "civil-affairs-a") == {"new": 3, "duplicate": 1, "rejected": 2}
    assert hub.sql(f"SELECT name, address FROM people WHERE id_number = '{alice}'") == [["王芳", "孟河镇万绥村1号"]]
    assert hub.scalar(f"SELECT count(*) FROM people WHERE id_number = '{lower_x}'") == 1
    reasons = dict(hub.sql("SELECT reason_code, reason FROM rejects WHERE source = 'civil-affairs-a'"))
    assert set(reasons) == {"invalid_id_number", "missing_name"}
    assert "check character" in reasons["invalid_id_number"]


def test_resync_of_unchanged_export_is_all_duplicates_and_a_change_is_an_update(hub: Hub, tmp_path: Path) -> None:
    people = [["赵一", resident_id(), "", "13900000011", "孟河镇南兴村"] for _ in range(20)]
    path = write_people_csv(tmp_path / "register.csv", people)
    assert hub.cli("ingest", str(path), "--source", "civil-affairs-b", "--entity", "person", "--wait").returncode == 0
    assert hub.cli("ingest", str(path), "--source", "civil-affairs-b", "--entity", "person", "--wait").returncode == 0
    people[3][4] = "孟河镇东兵村"
    write_people_csv(path, people)
    assert hub.cli("ingest", str(path), "--source", "civil-affairs-b", "--entity", "person", "--wait").returncode == 0

    assert outcomes_of(hub, "civil-affairs-b") == {"new": 20, "duplicate": 39, "update": 1}
    assert hub.scalar(f"SELECT address FROM people WHERE id_number = '{people[3][1]}'") == "孟河镇东兵村"


def test_gbk_export_with_bom_free_chinese_headers_loads(hub: Hub, tmp_path: Path) -> None:
    person = resident_id()
    path = write_people_csv(tmp_path / "gbk.csv", [["孙丽", person, "", "", "孟河镇通江村"]], encoding="gbk")
    result = hub.cli("ingest", str(path), "--source", "civil-affairs-gbk", "--entity", "person", "--wait")
    assert result.returncode == 0, result.stderr
    assert hub.sql(f"SELECT name, address FROM people WHERE id_number = '{person}'") == [["孙丽", "孟河镇通江村"]]


def test_organisation_jsonl_with_unreadable_lines_keeps_them_as_rejects(hub: Hub, tmp_path: Path) -> None:
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

    result = hub.cli("ingest", str(path), "--source", "market-a", "--entity", "organisation", "--wait")

    assert result.returncode == 0, result.stderr
    assert hub.sql(f"SELECT name, legal_representative FROM organisations WHERE uscc = '{code}'") == [
        ["常州孟河汽配有限公司", "周明"]
    ]
    reasons = sorted(hub.sql("SELECT reason_code, stage FROM rejects WHERE source = 'market-a'"))
    assert reasons == [["invalid_uscc", "validate"], ["unreadable_line", "decode"], ["unreadable_line", "decode"]]


def test_export_without_required_columns_is_refused_before_publishing(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "no_names.csv"
    path.write_text("公民身份号码,住址\n320411199001010011,孟河镇\n", encoding="utf-8")

    result = hub.cli("ingest", str(path), "--source", "civil-affairs-c", "--entity", "person")

    assert result.returncode == 2
    assert "lacks required column" in result.stderr
    assert "姓名" in result.stderr
    assert "Traceback" not in result.stderr
    assert hub.scalar("SELECT count(*) FROM intake WHERE source = 'civil-affairs-c'") == 0


def test_ingest_of_a_missing_file_or_unknown_format_says_so(hub: Hub, tmp_path: Path) -> None:
    missing = hub.cli("ingest", str(tmp_path / "nope.csv"), "--source", "x", "--entity", "person")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    odd = tmp_path / "register.xml"
    odd.write_text("<people/>")
    wrong = hub.cli("ingest", str(odd), "--source", "x", "--entity", "person")
    assert wrong.returncode == 2
    assert "unsupported export format" in wrong.stderr
