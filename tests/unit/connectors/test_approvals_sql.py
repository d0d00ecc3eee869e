"""The approvals connector's mapping, its gap guard and one poll, on SQLite with a stand-in publisher."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.approvals_mapping import (
    ApprovalsMapping,
    MappingError,
    UnmappedChannel,
    UnmappedStatus,
    load_mapping,
)
from connectors.approvals_sql import ApprovalsConnector, GapGuard
from connectors.publisher import RawPublisher
from foundation.packaged import APPROVALS_MAPPING
from foundation.settings import Settings
from schemas.approvals import CHANGE_SEQ_FIELD
from schemas.records import Application, RawEnvelope
from schemas.rejects import Reject
from schemas.runs import RunNotice
from simulation.demo import APPROVALS_DDL

CUSTOM = """
table: sp_bj_change
cursor_column: xh
columns:
  application_id: bjbh
  item_code: sxbm
  applicant_id_number: sqrzjhm
  applicant_uscc: tyshxydm
  status: bjzt
  submitted_at: sqsj
  updated_at: gxsj
status_values: {0: submitted, 受理: accepted, 办结: approved, 不予受理: refused}
"""
CUSTOM_DDL = """
CREATE TABLE sp_bj_change (
    xh INTEGER PRIMARY KEY, bjbh TEXT, sxbm TEXT, sqrzjhm TEXT, tyshxydm TEXT,
    bjzt TEXT, sqsj TEXT, gxsj TEXT
)
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_mapping_fits_the_simulated_days_table() -> None:
    mapping = load_mapping(APPROVALS_MAPPING)
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.exec_driver_sql(APPROVALS_DDL)
    mapping.check_columns(column["name"] for column in sa.inspect(engine).get_columns(mapping.table))
    assert (mapping.table, mapping.cursor_column, mapping.status_values) == ("applications", "change_seq", {})


def test_custom_mapping_renames_columns_and_translates_status_codes(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, CUSTOM))
    row = {
        "xh": 7,
        "bjbh": "BJ1",
        "sxbm": "320411-XK-001",
        "sqrzjhm": None,
        "tyshxydm": "91350100M000100Y43",
        "bjzt": "受理",
        "sqsj": "2026-11-25 09:00:00",
        "gxsj": "2026-11-25 10:00:00",
    }
    payload = mapping.payload(row)
    assert payload == {
        "application_id": "BJ1",
        "item_code": "320411-XK-001",
        "applicant_id_number": None,
        "applicant_uscc": "91350100M000100Y43",
        "status": "accepted",
        "submitted_at": "2026-11-25 09:00:00",
        "updated_at": "2026-11-25 10:00:00",
    }
    assert Application.model_validate(payload).status == "accepted"
    assert mapping.status(0) == "submitted", "numeric codes match their YAML keys"
    assert mapping.status("approved") == "approved", "canonical statuses pass as they are"


def test_an_unmapped_status_code_says_which_column_and_file_to_fix(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, CUSTOM))
    with pytest.raises(UnmappedStatus, match="status '补正' in column bjzt") as caught:
        mapping.status("补正")
    assert str(mapping.path) in str(caught.value)


def test_window_and_channel_columns_are_mapped_and_channel_codes_translated(tmp_path: Path) -> None:
    text = CUSTOM.replace("  updated_at: gxsj\n", "  updated_at: gxsj\n  window_no: ckh\n  channel: sllx\n")
    mapping = load_mapping(write(tmp_path, f"{text}channel_values: {{1: window, 网办: online}}\n"))
    row = {"bjbh": "BJ1", "sxbm": "X", "sqrzjhm": None, "tyshxydm": None, "bjzt": "0", "sqsj": "", "gxsj": ""}
    at_window = mapping.payload({**row, "ckh": 12, "sllx": 1})
    assert (at_window["window_no"], at_window["channel"]) == (12, "window")
    online = mapping.payload({**row, "ckh": None, "sllx": "网办"})
    assert (online["window_no"], online["channel"]) == (None, "online")
    assert mapping.payload({**row, "ckh": None, "sllx": " "})["channel"] is None, "an empty cell says nothing"
    assert mapping.channel("online") == "online", "canonical channels pass as they are"
    with pytest.raises(UnmappedChannel, match="channel '自助机' in column sllx") as caught:
        mapping.payload({**row, "ckh": None, "sllx": "自助机"})
    assert caught.value.reason_code == "unmapped_channel"


def test_a_column_the_table_lacks_is_one_error_naming_the_column_and_the_file(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, CUSTOM.replace("sxbm", "sx_bm")))
    with pytest.raises(MappingError) as caught:
        mapping.check_columns(["xh", "bjbh", "sxbm", "sqrzjhm", "tyshxydm", "bjzt", "sqsj", "gxsj"])
    message = str(caught.value)
    assert "'sx_bm' (columns.item_code)" in message
    assert str(mapping.path) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (CUSTOM.replace("  status: bjzt\n", ""), "lacks the source column of status"),
        (CUSTOM.replace("  applicant_id_number: sqrzjhm\n  applicant_uscc: tyshxydm\n", ""), "applicant"),
        (CUSTOM.replace("application_id: bjbh", "application_no: bjbh"), "unknown field"),
        (CUSTOM.replace("办结: approved", "办结: done"), "not canonical status values"),
        (f"{CUSTOM}channel_values: {{网办: web}}\n", "channel_values maps to web, which are not canonical channel"),
        (CUSTOM.replace("cursor_column: xh", "cursor_column: ''"), "'cursor_column' must name"),
        ("table: [unclosed", "is not valid YAML"),
        ("just text", "must have 'table'"),
    ],
)
def test_a_wrong_mapping_file_is_refused_with_one_error_naming_it(tmp_path: Path, text: str, complaint: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MappingError, match=complaint) as caught:
        load_mapping(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_gap_guard_holds_at_a_missing_number_until_it_appears() -> None:
    guard = GapGuard(wait_s=10)
    assert guard.publishable(0, [1, 2, 4, 5], now=100.0) == 2
    assert guard.publishable(2, [4, 5], now=105.0) == 0
    assert guard.publishable(2, [3, 4, 5], now=106.0) == 3


def test_gap_guard_skips_a_number_that_never_appears_after_the_wait() -> None:
    guard = GapGuard(wait_s=10)
    assert guard.publishable(2, [4, 5], now=100.0) == 0
    assert guard.publishable(2, [4, 5], now=109.9) == 0
    assert guard.publishable(2, [4, 5, 7], now=110.0) == 2, "a second hole waits its own time"
    assert guard.publishable(5, [7], now=120.0) == 1


def test_gap_guard_without_wait_publishes_everything() -> None:
    assert GapGuard(wait_s=0).publishable(0, [3, 9, 10], now=0.0) == 3


@dataclass
class Acked:
    def get(self, timeout: float) -> None:
        return None


@dataclass
class FakePublisher:
    """Acknowledges everything at once and remembers what it was given."""

    sent: list[RawEnvelope] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    notices: list[RunNotice] = field(default_factory=list)
    announcing = RawPublisher.announcing

    def announce(self, notice: RunNotice) -> Acked:
        self.notices.append(notice)
        return Acked()

    def publish(self, topic: str, envelope: RawEnvelope) -> Acked:
        self.sent.append(envelope)
        return Acked()

    def reject(self, reject: Reject) -> Acked:
        self.rejects.append(reject)
        return Acked()

    def acknowledged(self, sent: list[Acked], what: str) -> None:
        """Everything it is given is acknowledged at once."""


def connector(tmp_path: Path, mapping: ApprovalsMapping, publisher: FakePublisher, **extra: Any) -> ApprovalsConnector:
    settings = Settings(
        data_dir=tmp_path / "data", approvals_db_url=f"sqlite:///{tmp_path / 'approvals.sqlite'}", **extra
    )
    return ApprovalsConnector(publisher, settings, mapping, topic_id="topic-1")  # type: ignore[arg-type]


def insert(tmp_path: Path, rows: list[tuple[Any, ...]]) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'approvals.sqlite'}")
    with engine.begin() as connection:
        if not sa.inspect(connection).has_table("sp_bj_change"):
            connection.exec_driver_sql(CUSTOM_DDL)
        connection.exec_driver_sql("INSERT INTO sp_bj_change VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    engine.dispose()


def row(number: int, status: str) -> tuple[Any, ...]:
    return (number, f"BJ{number}", "320411-XK-001", None, "91350100M000100Y43", status, "2026-11-25", "2026-11-25")


def test_poll_publishes_mapped_rows_with_their_change_number_and_saves_the_cursor(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, CUSTOM))
    publisher = FakePublisher()
    poller = connector(tmp_path, mapping, publisher)
    assert poller.poll_once() == 0, "no table yet: nothing to do, no error"
    insert(tmp_path, [row(1, "0"), row(2, "受理"), row(3, "补正")])
    assert poller.poll_once() == 3
    assert [(e.source_record_id, e.payload["status"], e.payload[CHANGE_SEQ_FIELD]) for e in publisher.sent] == [
        ("BJ1", "submitted", 1),
        ("BJ2", "accepted", 2),
    ]
    assert [(r.source_record_id, r.reason_code) for r in publisher.rejects] == [("BJ3", "unmapped_status")]
    assert json.loads(publisher.rejects[0].payload)["bjzt"] == "补正"
    saved = json.loads((tmp_path / "data" / "state" / "approvals.cursor.json").read_text())
    assert saved == {"position": 3, "topic_id": "topic-1"}
    assert connector(tmp_path, mapping, FakePublisher()).poll_once() == 0, "a restart resumes after the cursor"
    start, end = publisher.notices  # the poll that found no table yet was no run
    assert (start.state, end.state, end.published, end.refused) == ("running", "published", 2, 1)
    assert (end.kind, end.source, end.origin) == ("approvals", "approvals", "sp_bj_change")
    assert {e.run_id for e in publisher.sent} == {r.run_id for r in publisher.rejects} == {end.run_id}


def test_poll_holds_the_cursor_before_a_missing_change_number(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, CUSTOM))
    publisher = FakePublisher()
    poller = connector(tmp_path, mapping, publisher, approvals_gap_wait_seconds=60)
    insert(tmp_path, [row(1, "0"), row(3, "0")])
    assert poller.poll_once() == 1
    assert poller.poll_once() == 0
    insert(tmp_path, [row(2, "0")])
    assert poller.poll_once() == 2
    assert [e.payload[CHANGE_SEQ_FIELD] for e in publisher.sent] == [1, 2, 3]


def test_a_mapping_that_does_not_fit_the_table_stops_the_poll_with_the_column_named(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, CUSTOM.replace("gxsj", "update_time")))
    insert(tmp_path, [row(1, "0")])
    with pytest.raises(MappingError, match=r"'update_time' \(columns.updated_at\)"):
        connector(tmp_path, mapping, FakePublisher()).prepare()


def test_a_text_cursor_column_is_refused(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, CUSTOM.replace("cursor_column: xh", "cursor_column: gxsj")))
    insert(tmp_path, [row(1, "0")])
    with pytest.raises(MappingError, match="must be an integer"):
        connector(tmp_path, mapping, FakePublisher()).prepare()
