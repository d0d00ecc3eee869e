"""A hub started again (a new embedded broker) still knows its open cases: the warehouse hands them back."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from foundation import runfiles
from foundation.settings import Settings
from tests.support.hub import post_as_a_phone, report, sender_token, spot, wait_until
from tests.support.up import as_commander, start_up, town_tokens
from warehouse.reader import query

pytestmark = pytest.mark.integration


def _post(settings: Settings, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    token = sender_token(town_tokens(settings.data_dir), path, body)
    return post_as_a_phone(runfiles.discover(settings, "patrol")["url"] + path, body, token=token)


def _rows(settings: Settings, statement: str) -> list[list[Any]]:
    return query(as_commander(settings), statement)["rows"]


def _stop(up: subprocess.Popen[bytes]) -> str:
    up.send_signal(signal.SIGINT)
    output = up.communicate(timeout=300)[0].decode()
    assert up.returncode == 0, output
    return output


def test_an_open_case_survives_a_restart_for_updates_and_second_reports(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    where = spot()
    first = report(
        "R-RESTART-1",
        category="0401",
        description="路面塌陷",
        reported_at="2026-11-25T10:00:00+08:00",
        reporter_id="GW002",
        **where,
    )
    up, _ = start_up(tmp_path)
    try:
        assert _post(settings, "/v1/reports", first)[0] == 202
        wait_until(
            lambda: _rows(settings, "SELECT status FROM cases WHERE case_id = 'R-RESTART-1'") == [["dispatched"]],
            what="the case, dispatched, in the warehouse",
        )
    finally:
        assert "gridhub stopped cleanly" in _stop(up)

    again, _ = start_up(tmp_path)
    try:
        update = {
            "update_id": "U-RESTART-1",
            "event_id": "R-RESTART-1",
            "status": "in_handling",
            "at": "2026-11-25T10:30:00+08:00",
            "actor": "desk-emergency",
        }
        status, answer = _post(settings, "/v1/updates", update)
        assert status == 202, answer
        second = {
            **first,
            "report_id": "R-RESTART-2",
            "reporter_id": "GW003",
            "reported_at": "2026-11-25T10:40:00+08:00",
        }
        assert _post(settings, "/v1/reports", second)[0] == 202
        wait_until(
            lambda: (
                _rows(settings, "SELECT status, report_count FROM cases WHERE case_id = 'R-RESTART-1'")
                == [["in_handling", 2]]
            ),
            what="the update applied and the second report joined, after the restart",
        )
        assert _rows(settings, "SELECT case_id FROM events WHERE event_id = 'R-RESTART-2'") == [["R-RESTART-1"]]
        assert _rows(settings, "SELECT count(*) FROM rejects") == [[0]]
    finally:
        assert "gridhub stopped cleanly" in _stop(again)
