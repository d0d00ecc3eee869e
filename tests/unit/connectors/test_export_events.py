"""Incident feeds through the export doors: event rows, fields composed from several columns, the per-record lane."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from kafka.future import Future

from connectors.exports import ExportFile, ExportPublisher
from connectors.exports.columnar import mapped
from connectors.exports.columns import ColumnMap, load_mappings
from connectors.exports.errors import ExportRejected, MappingsError
from foundation.packaged import EXPORT_MAPPINGS
from schemas.records import Event, RawEnvelope
from schemas.rejects import Reject
from schemas.topics import RAW_EXPORTS

ALARMS = """
monitor:
  event:
    columns: {报警编号: event_id, 报警时间: reported_at}
    compose:
      description: "{站点名称}{监测因子}监测值{监测值}，超过限值{标准限值}{{超标}}"
    defaults: {category: "0603", reporter_id: monitor}
"""
HEADER = ["报警编号", "站点名称", "监测因子", "监测值", "标准限值", "报警时间", "经度", "纬度"]
ROW = ["A1", "孟河水站", "氨氮", "2.31", "1.5", "2026-11-25 10:00:00", "119.86", "31.99"]


def alarms(tmp_path: Path, text: str = ALARMS) -> ColumnMap:
    path = tmp_path / "mappings.yaml"
    path.write_text(text, encoding="utf-8")
    return load_mappings(path).columns_for("monitor", "event")


def test_a_template_composes_a_field_from_several_columns(tmp_path: Path) -> None:
    columns = alarms(tmp_path)
    payload = columns.apply(dict(zip(HEADER, ROW, strict=True)))
    assert payload["description"] == "孟河水站氨氮监测值2.31，超过限值1.5{超标}"
    event = Event.model_validate(payload)
    assert (event.event_id, event.category, event.reporter_id) == ("A1", "0603", "monitor")


def test_template_headers_match_as_headers_do_and_a_blank_cell_leaves_its_placeholder_empty(tmp_path: Path) -> None:
    columns = alarms(tmp_path)
    row = {**dict(zip(HEADER, ROW, strict=True)), "监测因子": "  ", "站点名称": None}
    assert columns.apply(row)["description"] == "监测值2.31，超过限值1.5{超标}"
    assert (
        alarms(tmp_path, ALARMS.replace("{站点名称}", "{ 站点 名称 }"))
        .apply(dict(zip(HEADER, ROW, strict=True)))["description"]
        .startswith("孟河水站")
    )


def test_a_template_wins_over_a_column_mapped_to_the_same_field(tmp_path: Path) -> None:
    columns = alarms(tmp_path, ALARMS.replace("报警时间: reported_at}", "报警时间: reported_at, 备注: description}"))
    payload = columns.apply({**dict(zip(HEADER, ROW, strict=True)), "备注": "ignored"})
    assert payload["description"].startswith("孟河水站氨氮")


def test_the_columnar_path_composes_exactly_as_the_row_path(tmp_path: Path) -> None:
    columns = alarms(tmp_path)
    rows = [ROW, ["A2", "", "总磷", "0.5", "0.3", "2026-11-25 11:00:00", "119.8", "32.0"]]
    block = pa.table({name: pa.array([row[index] for row in rows], pa.string()) for index, name in enumerate(HEADER)})
    assert mapped(block, columns).to_pylist() == [columns.apply(dict(zip(HEADER, row, strict=True))) for row in rows]


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{站点名称", "malformed"),
        ("{}超标", "is not a column header"),
        ("{监测值:>8}", "no format or conversion"),
        ("{监测值!r}", "no format or conversion"),
        ("超标报警", "names no column; a fixed value belongs in defaults"),
    ],
)
def test_a_template_that_cannot_be_read_is_refused_with_the_file(tmp_path: Path, template: str, problem: str) -> None:
    text = ALARMS.replace('"{站点名称}{监测因子}监测值{监测值}，超过限值{标准限值}{{超标}}"', f'"{template}"')
    with pytest.raises(MappingsError) as refused:
        alarms(tmp_path, text)
    assert "monitor.event.compose" in str(refused.value)
    assert problem in str(refused.value)


def test_composing_an_unknown_field_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingsError, match=r"monitor\.event names unknown field.*summary"):
        alarms(tmp_path, ALARMS.replace("description:", "summary:"))


def test_an_export_without_a_column_a_template_names_is_refused_before_publishing(tmp_path: Path) -> None:
    path = tmp_path / "alarms.csv"
    path.write_text(",".join(h for h in HEADER if h != "标准限值") + "\n", encoding="utf-8")
    with pytest.raises(ExportRejected) as refused:
        ExportFile(path, "event", alarms(tmp_path))
    assert refused.value.reason_code == "missing_columns"
    assert "lacks column(s) 标准限值 that the mapping composes description from" in str(refused.value)


def test_an_event_export_without_a_required_column_names_it() -> None:
    with pytest.raises(ExportRejected, match=r"for event: reported_at \(上报时间"):
        ColumnMap("event").require(["事件编号", "事件类别", "事件描述", "上报人", "经度", "纬度"], "export")


def test_every_packaged_feed_mapping_loads_with_defaults_for_reporter_and_datum() -> None:
    mappings = load_mappings(EXPORT_MAPPINGS)
    for source in ("environment-monitoring", "police", "land-resources", "hotline-12345"):
        columns = mappings.columns_for(source, "event")
        assert columns.defaults["reporter_id"] == source
        assert columns.defaults["coord_system"] in ("wgs84", "gcj02", "bd09")


class RecordingPublisher:
    """Stands in for Kafka: keeps what would have been sent, by lane."""

    batch_rows = 1000

    def __init__(self) -> None:
        self.records: list[tuple[str, RawEnvelope]] = []
        self.batches = 0

    def partitions(self, topic: str) -> int:
        return 1

    def publish(self, topic: str, envelope: RawEnvelope) -> Future:
        self.records.append((topic, envelope))
        return Future().success(None)

    def publish_batch(self, topic: str, partition: int, value: bytes, uids: object) -> Future:
        self.batches += 1
        return Future().success(None)

    def reject(self, reject: Reject) -> Future:
        raise AssertionError(f"nothing here is unreadable: {reject}")

    def acknowledged(self, sent: list[Future], what: str) -> None:
        assert all(future.succeeded() for future in sent)


def test_event_rows_take_the_per_record_lane_even_from_a_clean_csv(tmp_path: Path) -> None:
    path = tmp_path / "alarms.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join(ROW) + "\n" + ",".join(["A2", *ROW[1:]]) + "\n", "utf-8")
    publisher = RecordingPublisher()
    report = ExportPublisher(publisher, "monitor").publish(  # type: ignore[arg-type]
        ExportFile(path, "event", alarms(tmp_path)), "run-1"
    )
    assert report.records == 2
    assert publisher.batches == 0
    assert [(topic, envelope.entity, envelope.source_record_id) for topic, envelope in publisher.records] == [
        (RAW_EXPORTS, "event", "A1"),
        (RAW_EXPORTS, "event", "A2"),
    ]
    assert publisher.records[0][1].payload["description"].startswith("孟河水站氨氮监测值2.31")
