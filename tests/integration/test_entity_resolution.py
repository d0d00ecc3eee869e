"""One golden record per person from several departments' registers, through the real hub."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.files import write_csv
from tests.support.hub import Hub, spot, unique
from tests.support.identities import mobile, resident_id

HEADERS = ["姓名", "公民身份号码", "出生日期", "联系电话", "住址"]


def ingest(hub: Hub, folder: Path, source: str, entity: str, headers: list[str], rows: list[list[str]]) -> None:
    # A file name of its own: rows without an ID are known by file and line.
    path = write_csv(folder / f"{unique(source)}-{entity}.csv", headers, rows)
    result = hub.ingest(path, source, entity, "--wait")
    assert result.returncode == 0, result.stderr


def test_three_departments_with_conflicting_fields_make_one_golden_person(hub: Hub, tmp_path: Path) -> None:
    person = resident_id()
    phone = mobile()
    ingest(hub, tmp_path, "civil-affairs", "person", HEADERS, [["周 敏", person, "", "13000000001", "孟河镇通江路3号"]])
    ingest(
        hub, tmp_path, "public-security", "person", HEADERS, [["周敏", person, "", "13000000002", "孟河镇通江路5号"]]
    )
    ingest(
        hub, tmp_path, "housing", "person", HEADERS, [["周敏敏", person.lower(), "", phone, "新北区孟河镇通江路五号"]]
    )

    assert hub.sql(f"SELECT name, phone, address, source_count FROM people WHERE person_key = '{person}'") == [
        ["周敏", f"+86{phone}", "新北区孟河镇通江路五号", 3]
    ]
    lineage = dict(
        (field, [value, source])
        for field, value, source in hub.sql(
            f"SELECT field, value, source FROM field_lineage WHERE kind = 'person' AND entity_key = '{person}'"
        )
    )
    assert lineage["name"] == ["周敏", "public-security"]
    assert lineage["address"] == ["新北区孟河镇通江路五号", "housing"]
    assert lineage["phone"] == [f"+86{phone}", "housing"]
    assert hub.scalar(f"SELECT count(*) FROM field_observations WHERE entity_key = '{person}' AND field = 'name'") == 3


def test_a_register_without_ids_merges_when_sure_and_asks_for_review_when_not(hub: Hub, tmp_path: Path) -> None:
    person = resident_id()
    born = f"{person[6:10]}-{person[10:12]}-{person[12:14]}"
    phone = mobile()
    name = unique("钱")[:6]
    ingest(hub, tmp_path, "public-security", "person", HEADERS, [[name, person, "", phone, "孟河镇小河村8号"]])
    ingest(
        hub,
        tmp_path,
        "community",
        "person",
        ["姓名", "出生日期", "联系电话", "住址"],
        [[name, born, phone, ""], [name, "", phone, "孟河镇小河村8号"], [name, "", "", ""]],
    )

    methods = hub.sql(
        f"SELECT m.method, m.entity_key FROM entity_matches m JOIN person_sources s USING (source, source_record_id) "
        f"WHERE m.kind = 'person' AND s.source = 'community' AND s.name = '{name}' ORDER BY s.birth_date NULLS LAST"
    )
    assert methods, hub.sql("SELECT * FROM person_sources WHERE source = 'community'")
    assert methods[0] == ["fuzzy", person]
    assert methods[1][0] == "unmatched"
    review = hub.sql(f"SELECT candidate_key, score FROM match_review WHERE candidate_key = '{person}'")
    assert review == [[person, 0.7]]
    rejected = hub.sql(
        f"SELECT reason_code, reason FROM rejects WHERE source = 'community' AND payload LIKE '%{name}%'"
    )
    assert [code for code, _ in rejected] == ["missing_id_number"]
    assert "at least 2 of birth_date, phone, address" in rejected[0][1]


def test_a_reviewer_merges_a_listed_copy_through_the_cli(hub: Hub, tmp_path: Path) -> None:
    person = resident_id()
    phone = mobile()
    name = unique("孔")[:6]
    ingest(hub, tmp_path, "public-security", "person", HEADERS, [[name, person, "", phone, "孟河镇富民村3号"]])
    ingest(hub, tmp_path, "community", "person", ["姓名", "联系电话", "住址"], [[name, phone, "孟河镇富民村3号"]])

    listed = hub.cli("review", "list", "--kind", "person", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    mine = [row for row in json.loads(listed.stdout) if row["candidate_key"] == person]
    assert [(row["source"], row["candidate"], row["score"]) for row in mine] == [("community", name, 0.7)]

    merged = hub.cli("review", "merge", "person", "community", mine[0]["source_record_id"], person, "--by", "王科长")
    assert merged.returncode == 0, merged.stderr
    assert f"now belongs to person {person}" in merged.stdout
    assert hub.sql(f"SELECT source_count FROM people WHERE person_key = '{person}'") == [[2]]
    assert hub.scalar(f"SELECT count(*) FROM match_review WHERE candidate_key = '{person}'") == 0
    assert hub.sql(
        f"SELECT decision, decided_by FROM match_decisions WHERE source_record_id = '{mine[0]['source_record_id']}'"
    ) == [["merge", "王科长"]]


def test_a_decision_about_a_copy_with_its_own_id_is_refused_in_one_line(hub: Hub, tmp_path: Path) -> None:
    person = resident_id()
    ingest(hub, tmp_path, "civil-affairs", "person", HEADERS, [["吴用", person, "", "", ""]])
    refused = hub.cli("review", "separate", "person", "civil-affairs", person)
    assert refused.returncode == 2
    assert "carries its own key" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_show_gathers_fields_sources_and_links_of_a_person(hub: Hub, tmp_path: Path) -> None:
    person = resident_id()
    where = spot()
    ingest(hub, tmp_path, "civil-affairs", "person", HEADERS, [["孙立", person, "", "", f"孟河镇{person[-6:]}号"]])
    ingest(
        hub,
        tmp_path,
        "housing",
        "place",
        ["房屋编号", "地址", "纬度", "经度"],
        [[unique("H"), f"江苏省常州市新北区孟河镇{person[-6:]}号", str(where["lat"]), str(where["lon"])]],
    )

    shown = hub.cli("show", "person", person.lower(), "--output", "json")

    assert shown.returncode == 0, shown.stderr
    profile = json.loads(shown.stdout)
    assert profile["key"] == person
    assert {row["field"]: row["source"] for row in profile["lineage"]}["name"] == "civil-affairs"
    assert [(link["relation"], link["other_kind"]) for link in profile["links"]] == [("lives_at", "place")]
    place_key = profile["links"][0]["other_key"]
    assert place_key.endswith(f"|{person[-6:]}号")
    by_address = hub.cli("show", "place", f"孟河镇{person[-6:]}号", "--output", "json")
    assert by_address.returncode == 0, by_address.stderr
    assert json.loads(by_address.stdout)["key"] == place_key
    assert [link["other_key"] for link in json.loads(by_address.stdout)["links"]] == [person]


def test_show_of_an_unknown_person_says_so_in_one_line(hub: Hub) -> None:
    shown = hub.cli("show", "person", "not-a-person")
    assert shown.returncode == 2
    assert "no person with key or source id 'not-a-person'" in shown.stderr
    assert "Traceback" not in shown.stderr
