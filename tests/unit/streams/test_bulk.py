"""The bulk lane: exports read column-wise, batched per partition, validated a batch at a time.

Column-wise reading must give exactly what the row-by-row path gives (payloads, record ids,
content hashes), a batch must survive the wire, and a batch's rows must each end accepted or
rejected with the same reason the per-record lane would give them.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from kafka.errors import KafkaTimeoutError
from kafka.future import Future

from connectors.exports import ExportFile, ExportPublisher, export_records
from connectors.exports.columns import ColumnMap, DepartmentMapping
from connectors.publisher import RawPublisher
from foundation.errors import BrokerUnavailable
from foundation.settings import Settings
from schemas.batches import BatchFormatError, RecordBatch, decode_batch, encode_batch, encode_within
from schemas.grid import Grid
from schemas.records import RawEnvelope
from streams.bulk import failed_batch, normalise_batch
from streams.routing import load_rules

WOMAN_ID = "11010519491231002X"
MAN_ID = "320411199007058931"


class RecordingPublisher:
    """Stands in for Kafka: keeps each batch with the partition it was sent to."""

    def __init__(self, batch_rows: int = 1000, partitions: int = 3, refuse: bool = False) -> None:
        self.batch_rows = batch_rows
        self.partition_count = partitions
        self.refuse = refuse
        self.sent: list[tuple[int, RecordBatch]] = []
        self.singles: list[RawEnvelope] = []

    def partitions(self, topic: str) -> int:
        return self.partition_count

    def publish_batch(self, topic: str, partition: int, value: bytes, uids: object) -> Future:
        self.sent.append((partition, decode_batch(value)))
        return Future().failure(KafkaTimeoutError("Batch expired")) if self.refuse else Future().success(None)

    def publish(self, topic: str, envelope: RawEnvelope) -> Future:
        self.singles.append(envelope)
        return Future().success(None)

    def reject(self, reject: Any) -> None:
        raise AssertionError(f"unexpected reject {reject}")

    timeout_s = 1.0
    journal = None
    acknowledged = RawPublisher.acknowledged
    make_durable = RawPublisher.make_durable

    def flush(self, what: str = "") -> None:
        pass

    def rows(self) -> list[dict[str, Any]]:
        return [row for _, batch in self.sent for row in batch.rows.to_pylist()]


def write_csv(path: Path, headers: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def published(path: Path, columns: ColumnMap | None = None, **publisher: Any) -> RecordingPublisher:
    recording = RecordingPublisher(**publisher)
    ExportPublisher(recording, "civil-affairs").publish(ExportFile(path, "person", columns), "run-1")  # type: ignore[arg-type]
    return recording


def assert_same_as_row_by_row(path: Path, columns: ColumnMap | None = None) -> list[dict[str, Any]]:
    """What went out in batches equals the envelopes the per-record path makes of the same file."""
    batched = {row["source_record_id"]: row for row in published(path, columns).rows()}
    envelopes = [item for item in export_records("civil-affairs", ExportFile(path, "person", columns), "r")]
    assert all(isinstance(item, RawEnvelope) for item in envelopes)
    assert set(batched) == {envelope.source_record_id for envelope in envelopes}  # type: ignore[union-attr]
    for envelope in envelopes:
        row = batched[envelope.source_record_id]  # type: ignore[union-attr]
        payload = {name: value for name, value in row.items() if name not in ("record_uid", "source_record_id")}
        assert payload.pop("content_hash") == envelope.content_hash  # type: ignore[union-attr]
        assert {name: value for name, value in payload.items() if value is not None} == envelope.payload  # type: ignore[union-attr]
    return list(batched.values())


def test_a_clean_csv_read_column_wise_equals_the_row_by_row_path(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "people.csv",
        ["姓名", "公民身份号码", "出生日期", "联系电话", "住址"],
        [
            ["张三", WOMAN_ID.lower(), "1949-12-31", "13900000001", '孟河镇"万绥"村1号'],
            ["李四", f"  {MAN_ID} ", "", "", "孟河镇\\小河村\n2号"],
            ["王五", "", "1980-01-01", "13900000003", "孟河镇\t通江路3号"],
            ["赵六", "", "", "", "孟河镇\x01通江路4号"],
        ],
    )
    rows = assert_same_as_row_by_row(path)
    assert sorted(row["source_record_id"] for row in rows) == sorted([WOMAN_ID, MAN_ID, "people.csv:3", "people.csv:4"])


@pytest.mark.parametrize("escaped", ['"', "\\", "\n", "\r", "\t"], ids=["quote", "backslash", "lf", "cr", "tab"])
def test_a_column_with_one_character_json_escapes_is_hashed_column_wise_as_row_by_row(
    tmp_path: Path, escaped: str
) -> None:
    path = write_csv(
        tmp_path / "escapes.csv",
        ["姓名", "公民身份号码", "住址"],
        [["张三", WOMAN_ID, f"孟河镇{escaped}万绥村1号"], ["李四", MAN_ID, "孟河镇小河村2号"]],
    )
    assert ExportFile(path, "person").blocks() is not None
    rows = assert_same_as_row_by_row(path)
    assert sorted(row["address"] for row in rows) == sorted([f"孟河镇{escaped}万绥村1号", "孟河镇小河村2号"])


def test_department_columns_defaults_and_row_ids_apply_column_wise_too(tmp_path: Path) -> None:
    mapping = DepartmentMapping(
        columns={"户主姓名": "name", "现住址": "address"}, defaults={"address": "孟河镇"}, record_id="档案编号"
    )
    path = write_csv(
        tmp_path / "community.csv",
        ["户主姓名", "档案编号", "现住址", "住址", "联系电话"],
        [["钱一", " A-1 ", "", "孟河镇富民村1号", "13900000001"], ["钱二", "A-2", "", "", "13900000002"]],
        encoding="gb18030",
    )
    rows = assert_same_as_row_by_row(path, ColumnMap("person", mapping))
    assert sorted((row["source_record_id"], row["address"]) for row in rows) == [
        ("A-1", "孟河镇富民村1号"),
        ("A-2", "孟河镇"),
    ]


def test_a_csv_with_a_short_row_goes_row_by_row_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text(f"姓名,公民身份号码,联系电话\n张三,{WOMAN_ID},13900000001\n李四,{MAN_ID}\n", encoding="utf-8")
    assert ExportFile(path, "person").blocks() is None
    assert sorted(row["name"] for row in published(path).rows()) == ["张三", "李四"]


def test_every_version_of_a_record_travels_one_partition_in_order(tmp_path: Path) -> None:
    people = [[f"人{number}", f"A{number}", f"1390000{number:04d}", f"孟河镇{number}号"] for number in range(40)]
    rows = [*people, *[[name, row_id, phone, address + "之一"] for name, row_id, phone, address in people]]
    mapping = DepartmentMapping(record_id="档案编号")
    headers = ["姓名", "档案编号", "联系电话", "住址"]
    recording = published(write_csv(tmp_path / "twice.csv", headers, rows), ColumnMap("person", mapping), batch_rows=7)

    assert all(len(batch) <= 7 for _, batch in recording.sent)
    partitions_of: dict[str, set[int]] = {}
    order: dict[str, list[str]] = {}
    for partition, batch in recording.sent:
        for row in batch.rows.to_pylist():
            partitions_of.setdefault(row["source_record_id"], set()).add(partition)
            order.setdefault(row["source_record_id"], []).append(row["address"])
    assert len(order) == 40 and all(len(found) == 1 for found in partitions_of.values())
    assert all(addresses[1] == addresses[0] + "之一" for addresses in order.values())
    assert len({partition for found in partitions_of.values() for partition in found}) > 1


def test_batches_kafka_refuses_fail_the_ingest_loudly(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", ["姓名", "公民身份号码"], [["张三", WOMAN_ID]])
    with pytest.raises(BrokerUnavailable, match="1 of 1 messages failed"):
        published(path, refuse=True)


def batch_of(kind: str, rows: list[dict[str, Any]]) -> RecordBatch:
    fields = list(dict.fromkeys(name for row in rows for name in row))
    table = pa.table(
        {
            "record_uid": [f"u{index}" for index in range(len(rows))],
            "source_record_id": [f"r{index}" for index in range(len(rows))],
            **{name: pa.array([row.get(name) for row in rows], pa.string()) for name in fields},
        }
    )
    return RecordBatch(kind, "civil-affairs", "run-1", datetime(2026, 11, 26, tzinfo=UTC), table)


def test_a_batch_survives_the_wire_and_splits_to_fit_a_message() -> None:
    batch = batch_of("person", [{"name": f"人{number}", "address": "孟河镇" * 50} for number in range(300)])
    decoded = decode_batch(encode_batch(batch))
    assert (decoded.kind, decoded.source, decoded.run_id, decoded.received_at) == (
        "person",
        "civil-affairs",
        "run-1",
        batch.received_at,
    )
    assert decoded.rows.equals(batch.rows)
    parts = [decode_batch(value) for value in encode_within(batch, max_bytes=3000)]
    assert len(parts) > 1
    assert pa.concat_tables([part.rows for part in parts]).equals(batch.rows)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"not arrow at all", "not an Arrow IPC stream"),
        (encode_batch(batch_of("person", [{"name": "x"}])).replace(b"person", b"persen"), "unknown kind 'persen'"),
    ],
)
def test_a_message_that_is_no_batch_is_refused_with_the_reason(value: bytes, problem: str) -> None:
    with pytest.raises(BatchFormatError, match=problem):
        decode_batch(value)


@pytest.fixture(scope="module")
def town() -> tuple[Any, Grid]:
    settings = Settings()
    return load_rules(settings.routing_rules), Grid.load(settings.grid_path)


def test_a_person_batch_keeps_row_order_and_rejects_each_bad_row_with_its_reason(town: tuple[Any, Grid]) -> None:
    rules, grid = town
    batch = batch_of(
        "person",
        [
            {"name": "张三", "id_number": WOMAN_ID, "gender": "女"},
            {"name": "王  芳", "id_number": MAN_ID},
            {"name": "李四", "id_number": MAN_ID[:-1] + "2"},
            {"name": "赵六", "phone": "13900000001", "birth_date": "1980/5/3"},
        ],
    )

    outcome = normalise_batch(batch, rules, grid)

    assert outcome.accepted is not None
    accepted = outcome.accepted.rows.to_pylist()
    assert [(row["record_uid"], row["name"], row["match_key"]) for row in accepted] == [
        ("u0", "张三", WOMAN_ID),
        ("u1", "王芳", MAN_ID),
        ("u3", "赵六", None),
    ]
    assert accepted[2]["birth_date"] == "1980-05-03"
    assert [(reject.record_uid, reject.reason_code) for reject in outcome.rejects] == [("u2", "invalid_id_number")]
    assert "check character" in outcome.rejects[0].reason


def test_places_in_a_batch_are_put_in_their_grid_cell(town: tuple[Any, Grid]) -> None:
    rules, grid = town
    cell = next(iter(grid.cells.values()))
    point = cell.polygon.representative_point()
    batch = batch_of("place", [{"place_id": "H1", "address": "孟河镇1号", "lat": str(point.y), "lon": str(point.x)}])
    outcome = normalise_batch(batch, rules, grid)
    assert outcome.accepted is not None
    assert outcome.accepted.rows.column("grid_code").to_pylist() == [cell.code]


def test_reports_cannot_travel_in_batches_and_a_crashed_batch_keeps_every_row(town: tuple[Any, Grid]) -> None:
    rules, grid = town
    reports = batch_of("event", [{"event_id": "e1"}, {"event_id": "e2"}])
    outcome = normalise_batch(reports, rules, grid)
    assert outcome.accepted is None
    assert [(reject.reason_code, reject.record_uid) for reject in outcome.rejects] == [
        ("bad_envelope", "u0"),
        ("bad_envelope", "u1"),
    ]
    assert "cannot travel in batches" in outcome.rejects[0].reason

    crashed = failed_batch(batch_of("person", [{"name": "张三"}]), KeyError("boom"))
    assert [(reject.reason_code, reject.stage) for reject in crashed.rejects] == [("internal_error", "internal")]
    assert "report it as a bug" in crashed.rejects[0].reason
