"""``gridhub test``: mapping cases kept as data pass while the export becomes what they say, else name the field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from foundation.settings import Settings
from gridhub.cli_common import UsageError
from gridhub.mapping_cases import _expected, _same, discover, run_case
from streams.normalise import ReferenceData
from tests.support.files import write_csv

SHIPPED = Path(__file__).resolve().parents[2] / "mapping_cases"
MAN_ID = "320411199007058931"

CASE = """
input: households.csv
source: civil-affairs
entity: person
expect:
  rows: 3
  records:
    1: {id_number: "320411199007058931", gender: M, birth_date: "1990-07-05", phone: "+8613900000001"}
    3: {name: 王芳, birth_date: "1980-05-03"}
  rejects:
    2: invalid_id_number
  ignored_headers: [备注]
  empty_fields: {address: 1}
"""


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    return ReferenceData.load(Settings())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def household_case(folder: Path, case: str = CASE) -> Path:
    """A case folder: a register with a good row, a mistyped ID and a row without an ID, and what it must become."""
    write_csv(
        folder / "households.csv",
        ["姓名", "公民身份号码", "出生日期", "联系电话", "住址", "备注"],
        [
            ["张三", MAN_ID, "", "13900000001", "孟河镇万绥村1号", "户主"],
            ["李四", MAN_ID[:-1] + "2", "", "13900000002", "孟河镇万绥村2号", ""],
            ["王  芳", "", "1980/5/3", "13900000003", "", ""],
        ],
    )
    (folder / "case.yaml").write_text(case, encoding="utf-8")
    return folder


def test_the_shipped_cases_pass(settings: Settings, reference: ReferenceData) -> None:
    folders = discover(SHIPPED)
    results = [run_case(folder, settings, reference) for folder in folders]
    assert [(result.name, result.problems) for result in results if not result.passed] == []
    assert {result.name for result in results} >= {
        "households-bad-id",
        "households-gbk",
        "enterprise-register",
        "environment-alarms",
        "police-incidents",
        "hotline-complaints",
        "enforcement-cases",
        "community-list",
        "land-parcels-missing-key",
    }
    # Every format gridhub ingest reads is among them, and both kinds of reject: the connector's and the worker's.
    inputs = {path.suffix for folder in folders for path in folder.iterdir() if path.name != "case.yaml"}
    assert {".csv", ".jsonl", ".xlsx", ".parquet"} <= inputs
    assert any("unreadable_line" in result.summary for result in results)


def test_a_case_with_good_and_bad_rows_passes(tmp_path: Path, settings: Settings, reference: ReferenceData) -> None:
    result = run_case(household_case(tmp_path), settings, reference)
    assert result.problems == []
    assert result.summary == "3 rows: 2 accepted, 1 rejected (invalid_id_number 1)"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("gender: M", "gender: F"), 'row 1: gender: expected "F", got "M"'),
        (("name: 王芳", "name: 王 芳"), 'row 3: name: expected "王 芳", got "王芳"'),
        (("2: invalid_id_number", "2: invalid_phone"), "row 2: expected reject invalid_phone, got invalid_id_number ("),
        (("  rejects:\n    2: invalid_id_number\n", ""), "row 2: rejected invalid_id_number ("),
        (("    3: {name", "    2: {name"), "row(s) 2 cannot be both a record and a reject"),
        (("rows: 3", "rows: 4"), "rows: expected 4, the file has 3"),
        (("[备注]", "[]"), 'ignored_headers: expected [], got ["备注"]'),
        (("{address: 1}", "{address: 0}"), "empty_fields: address: expected empty in 0 records, got 1"),
        (('birth_date: "1980-05-03"', "birth_date: 1980-05-04"), 'row 3: birth_date: expected "1980-05-04", got'),
        (("gender: M", "shoe_size: 42"), "row 1: shoe_size: not a field of person records"),
    ],
)
def test_changing_one_expectation_fails_the_case_and_says_what_differed(
    tmp_path: Path, settings: Settings, reference: ReferenceData, change: tuple[str, str], problem: str
) -> None:
    old, new = change
    assert old in CASE
    result = run_case(household_case(tmp_path, CASE.replace(old, new)), settings, reference)
    assert not result.passed
    assert any(problem in line for line in result.problems), result.problems


def test_an_unquoted_code_fails_with_a_hint_and_numbers_match_within_a_tolerance() -> None:
    assert "quote the value" in _expected(603, "0603")
    assert "quote" not in _expected("0604", "0603")
    assert _same(119.8356857, 119.83568574) and not _same(119.83, 119.84)
    assert _same(date(1980, 5, 3), "1980-05-03")
    assert not _same(True, 1) and _same(None, None)


def test_a_file_refused_as_a_whole_passes_only_when_the_case_expects_that(
    tmp_path: Path, settings: Settings, reference: ReferenceData
) -> None:
    folder = household_case(tmp_path, CASE.replace("households.csv", "nowhere.csv"))
    result = run_case(folder, settings, reference)
    assert result.problems == [
        f"the file was refused as a whole (no_such_file): no such file: {folder / 'nowhere.csv'}"
    ]

    refused = "input: nowhere.csv\nsource: civil-affairs\nentity: person\nexpect: {refused: no_such_file}\n"
    assert run_case(household_case(tmp_path, refused), settings, reference).passed
    read = refused.replace("nowhere.csv", "households.csv")
    assert run_case(household_case(tmp_path, read), settings, reference).problems == [
        "expected the file refused as a whole (no_such_file), but it was read",
        "row 2: rejected invalid_id_number (id_number: resident ID check character is 2, expected 1: "
        "a digit is mistyped), but the case expects it to pass",
    ]


def test_a_wrong_case_file_fails_its_case_in_one_line(
    tmp_path: Path, settings: Settings, reference: ReferenceData
) -> None:
    result = run_case(
        household_case(tmp_path, CASE.replace("entity: person", "entity: person\nkind: x")), settings, reference
    )
    assert len(result.problems) == 1 and "kind: Extra inputs are not permitted" in result.problems[0]
    (tmp_path / "case.yaml").write_text("input: [", encoding="utf-8")
    assert "is not valid YAML" in run_case(tmp_path, settings, reference).problems[0]


def test_a_case_may_bring_the_mapping_it_proves(tmp_path: Path, settings: Settings, reference: ReferenceData) -> None:
    write_csv(
        tmp_path / "list.csv", ["档案编号", "居民姓名", "手机", "现住址"], [["A-1", "钱一", "13900000001", "孟河镇1号"]]
    )
    (tmp_path / "mappings.yaml").write_text(
        "community:\n  person:\n    columns: {居民姓名: name, 手机: phone, 现住址: address}\n    record_id: 档案编号\n",
        encoding="utf-8",
    )
    case = "input: list.csv\nsource: community\nentity: person\nmappings: mappings.yaml\n"
    case += "expect:\n  records: {1: {name: 钱一}}\n"
    (tmp_path / "case.yaml").write_text(case, encoding="utf-8")
    assert run_case(tmp_path, settings, reference).passed
    (tmp_path / "case.yaml").write_text(case.replace("mappings: mappings.yaml\n", ""), encoding="utf-8")
    problems = run_case(tmp_path, settings, reference).problems
    assert problems[0].startswith("the file was refused as a whole (missing_columns)")


def test_cases_are_found_in_the_folder_or_under_it(tmp_path: Path) -> None:
    household_case(tmp_path / "b" / "deeper")
    household_case(tmp_path / "a")
    assert discover(tmp_path) == [tmp_path / "a", tmp_path / "b" / "deeper"]
    assert discover(tmp_path / "a") == [tmp_path / "a"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"no case\.yaml"):
        discover(tmp_path / "empty")
    with pytest.raises(UsageError, match="no such folder"):
        discover(tmp_path / "nowhere")
