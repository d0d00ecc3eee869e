"""What a replay makes of each kind of reject: the record its door would publish, a refusal, or advice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.approvals_mapping import ApprovalsMapping, load_mapping
from connectors.approvals_sql import ApprovalsConnector
from connectors.patrol_http import PatrolGateway
from foundation import packaged
from gridhub.reject_replay import NotReplayable, Refusal, Resend, plan, replay
from schemas.topics import DOOR_TOPICS, RAW_APPROVALS, RAW_EXPORTS, RAW_PATROL

ROW = {
    "change_seq": 41,
    "application_id": "A1",
    "item_code": "320411-XK-001",
    "item_name": "个体工商户营业执照",
    "applicant_id_number": None,
    "applicant_uscc": "91320411MA1XXXXX0A",
    "status": "submitted",
    "submitted_at": "2026-11-25T09:00:00+08:00",
    "updated_at": "2026-11-25T10:00:00+08:00",
    "window_no": None,
    "channel": "网上",
}


def reject(**fields: Any) -> dict[str, Any]:
    return {
        "record_uid": "r1",
        "source": "civil-affairs",
        "source_record_id": "c1",
        "entity": "person",
        "stage": "validate",
        "reason_code": "invalid_id_number",
        "payload": json.dumps({"name": "王芳", "id_number": "320411198002030021"}, ensure_ascii=False),
        **fields,
    }


def mapping_with(tmp_path: Path, channel_values: dict[str, str]) -> ApprovalsMapping:
    document = yaml.safe_load(packaged.APPROVALS_MAPPING.read_text(encoding="utf-8"))
    document["channel_values"] = channel_values
    path = tmp_path / "approvals_mapping.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return load_mapping(path)


def no_mapping() -> ApprovalsMapping:
    raise AssertionError("the mapping is read only for change rows its door refused")


def test_the_doors_own_sources_name_the_topics_a_replay_uses() -> None:
    assert {PatrolGateway.source: RAW_PATROL, ApprovalsConnector.source: RAW_APPROVALS} == DOOR_TOPICS


def test_a_record_the_worker_refused_goes_back_as_a_raw_record_of_its_source() -> None:
    step = plan(reject(), "run1", no_mapping)

    assert isinstance(step, Resend)
    assert step.topic == RAW_EXPORTS
    envelope = step.envelope
    assert (envelope.source, envelope.source_record_id, envelope.entity, envelope.run_id) == (
        "civil-affairs",
        "c1",
        "person",
        "run1",
    )
    assert envelope.payload == {"name": "王芳", "id_number": "320411198002030021"}
    assert envelope.record_uid != "r1"


def test_a_row_the_warehouse_refused_goes_back_without_the_provenance_the_sink_added() -> None:
    row = {"event_id": "E1", "category": "0101", "record_uid": "u", "received_at": "x", "topic": "t", "run_id": "r"}
    step = plan(reject(stage="warehouse", entity="event", source="patrol", payload=json.dumps(row)), "run1", no_mapping)

    assert isinstance(step, Resend)
    assert step.topic == RAW_PATROL
    assert step.envelope.payload == {"event_id": "E1", "category": "0101"}


def test_a_change_row_is_mapped_again_with_the_fixed_mapping(tmp_path: Path) -> None:
    refused = reject(source="approvals", entity="application", reason_code="unmapped_channel", payload=json.dumps(ROW))

    step = plan(refused, "run1", lambda: mapping_with(tmp_path, {"网上": "online"}))

    assert isinstance(step, Resend)
    assert step.topic == RAW_APPROVALS
    assert step.envelope.payload["channel"] == "online"
    assert step.envelope.payload["change_seq"] == 41
    assert step.envelope.source_record_id == "c1"


def test_a_change_row_the_mapping_still_cannot_map_is_refused_again_with_the_reason(tmp_path: Path) -> None:
    refused = reject(source="approvals", entity="application", reason_code="unmapped_channel", payload=json.dumps(ROW))

    step = plan(refused, "run1", lambda: mapping_with(tmp_path, {"窗口": "window"}))

    assert isinstance(step, Refusal)
    assert step.reject.reason_code == "unmapped_channel"
    assert "网上" in step.reject.reason
    assert (step.reject.source, step.reject.source_record_id, step.reject.run_id) == ("approvals", "c1", "run1")


@pytest.mark.parametrize(
    ("fields", "advice"),
    [
        ({"payload": None}, "hash"),
        ({"stage": "decode", "reason_code": "unreadable_line", "payload": "a,b,,"}, "never read it as a record"),
        ({"stage": "decode", "payload": json.dumps({"a": 1})}, "stage decode"),
        ({"source_record_id": "unknown"}, "names no record"),
        ({"entity": "unknown"}, "names no record"),
    ],
)
def test_what_the_hub_never_read_as_a_record_is_not_replayable(fields: dict[str, Any], advice: str) -> None:
    step = plan(reject(**fields), "run1", no_mapping)

    assert isinstance(step, NotReplayable)
    assert advice in step.reason


def test_a_dry_run_counts_without_sending(tmp_path: Path) -> None:
    report = replay([reject(), reject(payload=None), reject(record_uid="r2")], None, tmp_path / "unused.yaml")

    assert (report.sent, report.refused_at_door, report.published) == (2, 0, 2)
    assert sum(report.not_replayable.values()) == 1
