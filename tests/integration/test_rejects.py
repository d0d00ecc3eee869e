"""Rejects an operator acts on: list them, show one, fix the mapping, replay, and each fixed record lands once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from foundation import packaged
from tests.integration.test_approval_system import add_rows, application
from tests.support.hub import Hub, unique, wait_until
from tests.support.identities import resident_id


def reject_of(hub: Hub, record_id: str) -> list[list[object]]:
    return hub.sql(
        "SELECT record_uid, reason_code, resolution, resolved_by FROM rejects "
        f"WHERE source_record_id = '{record_id}' ORDER BY rejected_at"
    )


def listed(hub: Hub, *options: str) -> list[dict[str, object]]:
    done = hub.cli("rejects", "list", "--source", "approvals", *options, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fixed_mapping(folder: Path) -> Path:
    document = yaml.safe_load(packaged.APPROVALS_MAPPING.read_text(encoding="utf-8"))
    document["channel_values"] = {"网上": "online"}
    path = folder / "approvals_mapping.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def replay_unmapped_channels(hub: Hub, folder: Path) -> subprocess.CompletedProcess[str]:
    """``gridhub rejects replay`` of the approvals' unmapped channels, as an admin, with the fixed mapping."""
    mapping = {"GRIDHUB_APPROVALS_MAPPING": str(fixed_mapping(folder))}
    return hub.cli(
        "rejects", "replay", "--source", "approvals", "--reason", "unmapped_channel", token=hub.admin, env=mapping
    )


def test_fix_the_mapping_replay_and_the_warehouse_gains_exactly_the_fixed_records_once(
    hub: Hub, tmp_path: Path
) -> None:
    fixable, broken = unique("A"), unique("A")
    person = resident_id()
    wrong_id = person[:17] + ("1" if person[17] != "1" else "2")
    add_rows(
        hub,
        [
            {**application(fixable, "submitted", person=person), "channel": "网上"},
            {**application(broken, "submitted", person=wrong_id), "channel": "网上"},
        ],
    )
    wait_until(lambda: len(reject_of(hub, fixable)) == 1 and len(reject_of(hub, broken)) == 1, what="both rejects")
    assert [row[1] for row in reject_of(hub, fixable)] == ["unmapped_channel"]
    open_ids = {row["source_record_id"] for row in listed(hub, "--reason", "unmapped_channel")}
    assert {fixable, broken} <= open_ids
    uid = reject_of(hub, fixable)[0][0]
    shown = hub.cli("rejects", "show", str(uid))
    assert shown.returncode == 0, shown.stderr
    assert "unmapped_channel" in shown.stdout and "网上" in shown.stdout

    refused = hub.cli("rejects", "replay", "--source", "approvals")  # a commander may read, not replay
    assert refused.returncode != 0
    assert "admin or publisher" in refused.stderr + refused.stdout

    replayed = replay_unmapped_channels(hub, tmp_path)
    assert replayed.returncode == 0, replayed.stderr + replayed.stdout

    # The fixed one landed once and closed its reject; the other was refused again, for its ID this time.
    assert hub.sql(f"SELECT channel FROM applications WHERE application_id = '{fixable}'") == [["online"]]
    assert [row[2] for row in reject_of(hub, fixable)] == ["landed"]
    after = reject_of(hub, broken)
    assert [(row[1], row[2]) for row in after] == [
        ("unmapped_channel", "rejected_again"),
        ("invalid_applicant_id_number", None),
    ]
    assert after[0][3] == after[1][0]
    still_open = {row["source_record_id"]: row["reason_code"] for row in listed(hub)}
    assert fixable not in still_open
    assert still_open[broken] == "invalid_applicant_id_number"

    again = replay_unmapped_channels(hub, tmp_path)
    assert again.returncode == 0, again.stderr
    hub.settled()
    assert hub.scalar(f"SELECT count(*) FROM applications WHERE application_id = '{fixable}'") == 1
    assert hub.scalar(f"SELECT count(*) FROM intake WHERE source_record_id = '{fixable}' AND outcome = 'new'") == 1
