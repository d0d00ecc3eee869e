"""Per-department column mappings are configuration; the standard headers need none."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.exports import ExportFile, export_records
from connectors.exports.columns import ColumnMap, cell_value, load_mappings
from connectors.exports.errors import ExportRejected, MappingsError
from foundation.packaged import EXPORT_MAPPINGS
from foundation.settings import Settings
from schemas.records import Place

LAND = """
land-resources:
  place:
    columns: {宗地代码: place_id, 坐落位置: address, 名称: grid_code}
    defaults: {place_type: parcel}
    sheet: 宗地
"""


def mappings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mappings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_department_columns_and_defaults_apply_to_that_source_only(tmp_path: Path) -> None:
    mappings = load_mappings(mappings_file(tmp_path, LAND))
    land = mappings.columns_for("land-resources", "place")
    row = {"宗地代码": "320411001", "坐落位置": "孟河镇万绥村", "备注": "x"}
    payload = land.apply(row)
    assert payload == {"place_id": "320411001", "address": "孟河镇万绥村", "备注": "x", "place_type": "parcel"}
    assert Place.model_validate(payload).place_type == "parcel"
    other = mappings.columns_for("housing", "place").apply(row)
    assert other == {"宗地代码": "320411001", "坐落位置": "孟河镇万绥村", "备注": "x"}


def test_a_department_header_wins_over_the_standard_name(tmp_path: Path) -> None:
    land = load_mappings(mappings_file(tmp_path, LAND)).columns_for("land-resources", "place")
    assert land.field("名称") == "grid_code"
    assert ColumnMap("place").field("名称") == "name"


def test_a_value_in_the_export_wins_over_the_default(tmp_path: Path) -> None:
    land = load_mappings(mappings_file(tmp_path, LAND)).columns_for("land-resources", "place")
    assert land.apply({"宗地代码": "1", "类型": "house"})["place_type"] == "house"
    assert land.apply({"宗地代码": "1", "类型": " "})["place_type"] == "parcel"


def test_standard_headers_need_no_mapping_and_ignore_case_spaces_and_underscores() -> None:
    people = ColumnMap("person")
    assert people.apply({"姓名": "张三", "身份证号": "X", "ID Number": "Y", "Phone": 139}) == {
        "name": "张三",
        "id_number": "Y",
        "phone": "139",
    }
    assert people.field("出生日期") == "birth_date"


def test_an_empty_column_does_not_hide_a_filled_one_for_the_same_field() -> None:
    assert ColumnMap("person").apply({"住址": "孟河镇", "居住地址": ""}) == {"address": "孟河镇"}


def test_a_missing_required_column_names_the_department_header_too(tmp_path: Path) -> None:
    land = load_mappings(mappings_file(tmp_path, LAND)).columns_for("land-resources", "place")
    with pytest.raises(ExportRejected) as refused:
        land.require(["坐落位置"], "export")
    assert refused.value.reason_code == "missing_columns"
    assert str(refused.value) == (
        "export lacks required column(s) for place: place_id (宗地代码 / 地块编号 / 房屋编号 / 编号 / place_id). "
        "Found columns: 坐落位置"
    )


def test_the_mapped_sheet_is_the_default_for_the_source(tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    workbook.create_sheet("封面").append(["孟河镇宗地"])
    parcels = workbook.create_sheet("宗地")
    parcels.append(["宗地代码", "坐落位置"])
    parcels.append(["320411001", "孟河镇万绥村"])
    path = tmp_path / "parcels.xlsx"
    workbook.save(path)
    land = load_mappings(mappings_file(tmp_path, LAND)).columns_for("land-resources", "place")
    [envelope] = export_records("land-resources", ExportFile(path, "place", land), "run")
    assert envelope.source_record_id == "320411001"
    assert envelope.payload["place_type"] == "parcel"


def test_the_mapped_sheet_does_not_stop_the_same_source_sending_csv(tmp_path: Path) -> None:
    path = tmp_path / "parcels.csv"
    path.write_text("宗地代码,坐落位置\n320411001,孟河镇万绥村\n", encoding="utf-8")
    land = load_mappings(mappings_file(tmp_path, LAND)).columns_for("land-resources", "place")
    [envelope] = export_records("land-resources", ExportFile(path, "place", land), "run")
    assert envelope.payload == {"place_id": "320411001", "address": "孟河镇万绥村", "place_type": "parcel"}


def test_the_packaged_example_is_the_default_and_valid() -> None:
    assert Settings().export_mappings == EXPORT_MAPPINGS
    land = load_mappings(EXPORT_MAPPINGS).columns_for("land-resources", "place")
    assert land.apply({"宗地代码": "1", "坐落位置": "孟河镇"}) == {
        "place_id": "1",
        "address": "孟河镇",
        "place_type": "parcel",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a:\n  place:\n    columns: {x: plce_id}\n", "a.place names unknown field(s) plce_id; place fields are"),
        (
            "a:\n  people: {}\n",
            "Input should be 'person', 'organisation', 'place', 'object', 'event' or 'enforcement_case'",
        ),
        ("a:\n  place:\n    colums: {x: place_id}\n", "a.place.colums: Extra inputs are not permitted"),
        ("a: [unclosed\n", "is not valid YAML"),
    ],
)
def test_a_wrong_mappings_file_is_one_line_naming_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = mappings_file(tmp_path, text)
    with pytest.raises(MappingsError) as refused:
        load_mappings(path)
    message = str(refused.value)
    assert str(path) in message
    assert problem in message
    assert "\n" not in message


def test_a_missing_mappings_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(MappingsError, match="GRIDHUB_EXPORT_MAPPINGS"):
        load_mappings(tmp_path / "nope.yaml")


def test_an_empty_mappings_file_means_standard_headers_everywhere(tmp_path: Path) -> None:
    assert load_mappings(mappings_file(tmp_path, "")).columns_for("any", "person").field("姓名") == "name"


@pytest.mark.parametrize(
    ("value", "text"),
    [(13900000001, "13900000001"), (1.0, "1"), (0.1, "0.1"), (float("nan"), None), (False, "false"), (b"x", "x")],
)
def test_cells_become_text(value: object, text: str | None) -> None:
    assert cell_value(value) == text


def test_rows_without_a_resident_id_are_identified_by_the_mapped_record_id_column(tmp_path: Path) -> None:
    mappings = load_mappings(mappings_file(tmp_path, "community:\n  person:\n    record_id: 档案编号\n"))
    export = tmp_path / "community.csv"
    export.write_text("档案编号,姓名,联系电话,住址\nSQ-0042,王芳,13900000000,孟河镇通江路12号\n,李强,13800000000,\n")
    columns = mappings.columns_for("community", "person")
    ids = [
        envelope.source_record_id
        for envelope in export_records("community", ExportFile(export, "person", columns), "r")
    ]
    assert ids == ["SQ-0042", "community.csv:2"]


def test_ignored_headers_are_those_no_field_takes(tmp_path: Path) -> None:
    mappings = load_mappings(
        mappings_file(
            tmp_path,
            """
monitor:
  event:
    columns: {报警编号: event_id, 备注: description}
    compose: {description: "{站点名称}超标"}
    record_id: 流水号
""",
        )
    )
    alarms = mappings.columns_for("monitor", "event")
    headers = ["报警编号", "站点名称", "备注", "流水号", "经度", "操作员"]
    # 站点名称 feeds the template and 流水号 identifies the row; 备注's field is the template's, 操作员 names none.
    assert alarms.ignored(headers) == ["备注", "操作员"]
    assert alarms.fields[:3] == ["event_id", "category", "description"]
    assert "photo_refs" not in alarms.fields  # no header names it: a phone's field, not an export's
    assert ColumnMap("person").ignored(["姓名", "身份证号", "ID Number", "备注"]) == ["备注"]
