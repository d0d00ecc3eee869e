"""Every export format reads through the same interface and gives the same payload for the same row."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from connectors.exports import BadLine, ExportFile, export_records
from connectors.exports.errors import ExportRejected
from connectors.exports.readers import PARQUET_BATCH_ROWS, read_table
from schemas.records import RawEnvelope

HEADERS = ["姓名", "公民身份号码", "出生日期", "联系电话", "住址"]
WOMAN_ID = "11010519491231002X"
EXPECTED = {
    "name": "张三",
    "id_number": WOMAN_ID,
    "birth_date": "1949-12-31",
    "phone": "13900000001",
    "address": "孟河镇万绥村1号",
}


def write_xlsx(path: Path, rows: list[list[Any]], sheets: tuple[str, ...] = ("Sheet1",)) -> Path:
    workbook = Workbook(write_only=True)
    for name in sheets:
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def payloads(export: ExportFile) -> list[dict[str, Any] | BadLine]:
    return [item.payload if isinstance(item, RawEnvelope) else item for item in export_records("s", export, "run")]


def test_the_same_row_in_csv_xlsx_and_parquet_gives_the_same_payload(tmp_path: Path) -> None:
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(",".join(HEADERS) + "\n张三,11010519491231002X,1949-12-31,13900000001,孟河镇万绥村1号\n")
    xlsx_path = write_xlsx(
        tmp_path / "people.xlsx", [HEADERS, ["张三", WOMAN_ID, datetime(1949, 12, 31), 13900000001, "孟河镇万绥村1号"]]
    )
    parquet_path = tmp_path / "people.parquet"
    table = pa.table(
        {
            "姓名": ["张三"],
            "公民身份号码": [WOMAN_ID],
            "出生日期": pa.array([date(1949, 12, 31)], pa.date32()),
            "联系电话": pa.array([13900000001], pa.int64()),
            "住址": ["孟河镇万绥村1号"],
        }
    )
    pq.write_table(table, parquet_path)

    for path in (csv_path, xlsx_path, parquet_path):
        assert payloads(ExportFile(path, "person")) == [EXPECTED], path.suffix


def test_xlsx_header_is_the_first_non_empty_row_and_empty_rows_are_skipped(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "register.xlsx",
        [[], [None, None], HEADERS, ["张三", WOMAN_ID, None, None, None], [], [None] * 5, ["李四", WOMAN_ID]],
    )
    export = ExportFile(path, "person")
    assert [row["name"] for row in payloads(export) if isinstance(row, dict)] == ["张三", "李四"]


def test_xlsx_cells_become_json_friendly_text(tmp_path: Path) -> None:
    headers = ["编号", "日期", "时间", "序列号", "小数", "整数浮点", "布尔", "空"]
    row = ["P-1", datetime(2018, 5, 3), datetime(2018, 5, 3, 9, 30), 43223, 119.825, 2.0, True, None]
    path = write_xlsx(tmp_path / "cells.xlsx", [headers, row])
    [payload] = payloads(ExportFile(path, "place"))
    assert payload == {
        "place_id": "P-1",
        "日期": "2018-05-03",
        "时间": "2018-05-03T09:30:00",
        "序列号": "43223",
        "小数": "119.825",
        "整数浮点": "2",
        "布尔": "true",
        "空": None,
    }


def test_xlsx_serial_number_in_a_date_column_becomes_the_date_downstream(tmp_path: Path) -> None:
    from schemas.records import Person

    path = write_xlsx(tmp_path / "serial.xlsx", [HEADERS, ["张三", WOMAN_ID, 18263, None, None]])
    [payload] = payloads(ExportFile(path, "person"))
    assert payload["birth_date"] == "18263"
    assert Person.model_validate(payload).birth_date == date(1949, 12, 31)


def test_xlsx_named_sheet_is_read_and_a_missing_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    workbook = Workbook(write_only=True)
    workbook.create_sheet("说明").append(["这是说明页"])
    data = workbook.create_sheet("人口")
    data.append(HEADERS)
    data.append(["张三", WOMAN_ID])
    workbook.save(path)

    with pytest.raises(ExportRejected, match="lacks required column"):
        ExportFile(path, "person")
    assert [row["name"] for row in payloads(ExportFile(path, "person", sheet="人口"))] == ["张三"]
    with pytest.raises(ExportRejected, match=r"has no sheet '户籍'; its sheets are 说明, 人口"):
        ExportFile(path, "person", sheet="户籍")


def test_xlsx_value_under_no_header_is_a_bad_row_with_its_excel_row_number(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "stray.xlsx", [[], HEADERS, ["张三", WOMAN_ID, None, None, None, "多余"]])
    [bad] = payloads(ExportFile(path, "person"))
    assert isinstance(bad, BadLine)
    assert (bad.number, bad.unit) == (3, "row")
    assert "多余" in bad.text


def test_damaged_xlsx_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(ExportRejected, match=r"is not a readable \.xlsx workbook"):
        ExportFile(path, "person")


def test_parquet_streams_in_batches_and_converts_typed_columns(tmp_path: Path) -> None:
    count = PARQUET_BATCH_ROWS * 2 + 7
    table = pa.table(
        {
            "部件标识码": [f"OBJ-{number}" for number in range(count)],
            "部件名称": ["井盖"] * count,
            "经度": pa.array([119.8] * count, pa.float64()),
            "巡检时间": pa.array([datetime(2026, 11, 25, 8, 0)] * count, pa.timestamp("s")),
            "造价": pa.array([Decimal("12.50")] * count, pa.decimal128(10, 2)),
        }
    )
    path = tmp_path / "objects.parquet"
    pq.write_table(table, path, row_group_size=PARQUET_BATCH_ROWS // 2)
    rows = payloads(ExportFile(path, "object"))
    assert len(rows) == count
    assert rows[-1] == {
        "object_id": f"OBJ-{count - 1}",
        "name": "井盖",
        "lon": "119.8",
        "巡检时间": "2026-11-25T08:00:00",
        "造价": "12.50",
    }


def test_damaged_parquet_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 nothing here")
    with pytest.raises(ExportRejected, match="is not a readable Parquet file"):
        ExportFile(path, "person")


def test_gbk_csv_and_jsonl_still_read(tmp_path: Path) -> None:
    csv_path = tmp_path / "gbk.csv"
    csv_path.write_text(",".join(HEADERS) + "\n张三,11010519491231002X,,,\n", encoding="gbk")
    jsonl_path = tmp_path / "people.jsonl"
    jsonl_path.write_text('{"姓名": "张三", "公民身份号码": "11010519491231002X", "出生日期": 18263}\n[1]\n')
    assert payloads(ExportFile(csv_path, "person"))[0]["name"] == "张三"
    first, bad = payloads(ExportFile(jsonl_path, "person"))
    assert first == {"name": "张三", "id_number": WOMAN_ID, "birth_date": "18263"}
    assert isinstance(bad, BadLine) and bad.problem == "a JSON list, not an object"


def test_a_sheet_name_only_applies_to_workbooks(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(",".join(HEADERS) + "\n")
    with pytest.raises(ExportRejected, match=r"applies to \.xlsx workbooks only"):
        read_table(path, sheet="人口")


def test_unsupported_format_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "people.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(
        ExportRejected, match=r"unsupported export format '\.xls'; use one of .csv, .*\.xlsx, \.parquet"
    ):
        ExportFile(path, "person")


def test_a_csv_that_breaks_off_mid_file_is_one_readable_error(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    head = (",".join(HEADERS) + "\n").encode() + "张三,11010519491231002X,,,\n".encode() * 5000
    path.write_bytes(head + "李四,11010519491231002X,,,\n".encode("gbk"))
    export = ExportFile(path, "person")
    with pytest.raises(ExportRejected, match="could not be read to the end"):
        list(export.rows)


def test_rows_without_a_key_get_their_position_as_record_id(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "keys.xlsx", [HEADERS, ["张三", WOMAN_ID], ["无号", None], ["小写", WOMAN_ID.lower()]])
    ids = [item.source_record_id for item in export_records("s", ExportFile(path, "person"), "run")]
    assert ids == [WOMAN_ID, "keys.xlsx:2", WOMAN_ID]
