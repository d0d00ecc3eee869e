"""``gridhub check``: each row of a real export becomes the worker's record or reject, and nothing is published."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.exports import ExportFile, column_block
from connectors.exports.columns import load_mappings
from connectors.exports.errors import ExportRejected
from foundation.settings import Settings
from gridhub.cli_common import UsageError
from gridhub.mapping_check import describe_mapping, open_check
from schemas.batches import RecordBatch
from streams.bulk import normalise_batch
from streams.normalise import ReferenceData
from tests.support.files import write_csv
from tests.support.identities import resident_id

WOMAN_ID = "11010519491231002X"


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    return ReferenceData.load(Settings())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def register(tmp_path: Path) -> Path:
    """A household register with a good row, a mistyped ID, a row without a name, one without an ID, a note."""
    return write_csv(
        tmp_path / "households.csv",
        ["姓名", "公民身份号码", "联系电话", "住址", "备注"],
        [
            ["张三", WOMAN_ID.lower(), "13900000001", "孟河镇万绥村1号", "户主"],
            ["李四", WOMAN_ID[:-1] + "1", "13900000002", "孟河镇", ""],
            ["", resident_id(), "", "", ""],
            ["王五", "", "13900000003", "孟河镇小河村2号", ""],
        ],
    )


def test_each_row_becomes_its_record_or_its_reject(
    tmp_path: Path, settings: Settings, reference: ReferenceData
) -> None:
    check = open_check(settings, register(tmp_path), "civil-affairs", "person", reference=reference)
    rows = list(check.results())

    assert [(row.row, row.outcome) for row in rows] == [
        (1, "accepted"),
        (2, "rejected"),
        (3, "rejected"),
        (4, "accepted"),
    ]
    first = rows[0].record
    assert first is not None
    assert (first["id_number"], first["gender"], first["birth_date"], first["phone"]) == (
        WOMAN_ID,
        "F",
        "1949-12-31",
        "+8613900000001",
    )
    assert [(row.reject.stage, row.reject.reason_code) for row in rows[1:3] if row.reject] == [
        ("validate", "invalid_id_number"),
        ("validate", "missing_name"),
    ]
    assert "check character" in rows[1].reject.reason  # type: ignore[union-attr]
    assert rows[3].source_record_id == "households.csv:4"  # no key: known by its place in the file, as ingest does
    assert check.ignored_headers == ["备注"]
    assert check.tally.empty_fields == {"id_number": 1, "gender": 1, "birth_date": 1, "employer_uscc": 2}
    assert check.tally.counts() == {
        "rows": 4,
        "accepted": 2,
        "rejected": 2,
        "by_reason": {"invalid_id_number": 1, "missing_name": 1},
    }


def test_check_gives_what_the_worker_s_bulk_lane_gives(
    tmp_path: Path, settings: Settings, reference: ReferenceData
) -> None:
    """The register as the connector batches it and the worker validates it a batch at a time: the same answers."""
    path = register(tmp_path)
    check = open_check(settings, path, "civil-affairs", "person", reference=reference)
    checked = {row.source_record_id: row for row in check.results()}

    export = ExportFile(path, "person")
    blocks = export.blocks()
    assert blocks is not None
    raw = column_block(next(blocks), export, 1)
    batch = RecordBatch(kind="person", source="civil-affairs", run_id="r", received_at=datetime.now(UTC), rows=raw)
    outcome = normalise_batch(batch, reference.rules, reference.grid, reference.catalogue)

    assert outcome.accepted is not None
    for row in outcome.accepted.rows.to_pylist():
        record = checked[row["source_record_id"]].record
        assert record == {name: value for name, value in row.items() if name in record}
    assert {reject.source_record_id: reject.reason_code for reject in outcome.rejects} == {
        key: row.reject.reason_code for key, row in checked.items() if row.reject
    }


def test_a_line_no_reader_can_read_is_the_connector_s_reject(
    tmp_path: Path, settings: Settings, reference: ReferenceData
) -> None:
    path = tmp_path / "people.jsonl"
    good = {"姓名": "张三", "公民身份号码": WOMAN_ID}
    path.write_text(json.dumps(good, ensure_ascii=False) + '\n{"姓名": "李\n[1, 2]\n', encoding="utf-8")
    rows = list(open_check(settings, path, "civil-affairs", "person", reference=reference).results())
    assert [(row.row, row.line, row.outcome) for row in rows] == [
        (1, None, "accepted"),
        (2, 2, "rejected"),
        (3, 3, "rejected"),
    ]
    assert {(row.reject.stage, row.reject.reason_code) for row in rows[1:] if row.reject} == {
        ("decode", "unreadable_line")
    }
    assert rows[1].source_record_id == "people.jsonl:2"
    assert rows[1].to_json()["reject"]["reason"].startswith("people.jsonl line 2: not valid JSON")


def test_an_incident_shows_the_desk_its_work_order_goes_to(
    tmp_path: Path, settings: Settings, reference: ReferenceData
) -> None:
    cell = next(cell for cell in reference.grid.cells.values() if cell.kind == "basic" and cell.squad)
    point = cell.polygon.representative_point()
    path = write_csv(
        tmp_path / "incidents.csv",
        ["事件编号", "事件类别", "事件描述", "上报时间", "上报人", "经度", "纬度"],
        [
            ["E1", "文明城市创建", "公益广告牌破损", "2026-11-25 09:30", "GW001", point.x, point.y],
            ["E2", "0102", "垃圾堆放", "2026-11-25 09:40", "GW001", point.x, point.y],
            ["E3", "不存在的类别", "?", "2026-11-25 09:50", "GW001", point.x, point.y],
        ],
    )
    rows = list(open_check(settings, path, "grid", "event", reference=reference).results())
    # The bureau dispatches by squad: its work order goes to the squad desk of the cell.
    assert [(row.desk, row.verify_on_site) for row in rows[:2]] == [
        (f"enforcement.{cell.squad}", False),
        ("sanitation", False),
    ]
    assert rows[0].record is not None and rows[0].record["grid_code"] == cell.code
    assert rows[2].reject is not None and (rows[2].reject.stage, rows[2].reject.reason_code) == (
        "route",
        "unknown_category",
    )
    assert rows[0].to_json()["desk"] == f"enforcement.{cell.squad}"


def test_which_mapping_applies_and_a_mistyped_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mappings.yaml"
    path.write_text("police:\n  event:\n    defaults: {category: '0704'}\n", encoding="utf-8")
    mappings = load_mappings(path)
    assert describe_mapping(mappings, path, "police", "event").startswith("police.event in ")
    assert describe_mapping(mappings, path, "police", "person").startswith("standard headers")
    assert describe_mapping(mappings, path, "civil-affairs", "person").startswith("standard headers")
    with pytest.raises(UsageError, match="did you mean 'police'"):
        describe_mapping(mappings, path, "polise", "event")
    with pytest.raises(UsageError, match="--source"):
        describe_mapping(mappings, path, " ", "event")


@pytest.mark.parametrize(
    ("name", "content", "entity", "error", "code"),
    [
        ("people.csv", "姓名\n张三\n", "people", UsageError, "bad_argument"),
        ("missing.csv", None, "person", ExportRejected, "no_such_file"),
        ("people.csv", "公民身份号码\n" + WOMAN_ID + "\n", "person", ExportRejected, "missing_columns"),
        ("people.txt", "姓名\n张三\n", "person", ExportRejected, "unsupported_format"),
    ],
)
def test_a_file_ingest_would_refuse_whole_is_refused_before_any_row(
    tmp_path: Path, settings: Settings, name: str, content: Any, entity: str, error: type[Exception], code: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(error) as refused:
        open_check(settings, path, "civil-affairs", entity)
    assert refused.value.reason_code == code  # type: ignore[attr-defined]
