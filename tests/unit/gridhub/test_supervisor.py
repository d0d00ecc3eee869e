"""The supervisor's restart budget counts crashes within a window, not since the start."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from foundation.settings import Settings
from gridhub.supervisor import Stack, StopReport, SupervisorError


def _stack(tmp_path: Path, window_s: float) -> Stack:
    return Stack(Settings(data_dir=tmp_path, restart_limit=2, restart_window_s=window_s), services=("sink",))


def test_crashes_beyond_the_limit_within_the_window_end_the_hub(tmp_path: Path) -> None:
    stack = _stack(tmp_path, window_s=600)
    assert [stack._crashed("worker", "exit 1"), stack._crashed("worker", "exit 1")] == [1, 2]
    with pytest.raises(SupervisorError, match="worker died 3 times within 600s"):
        stack._crashed("worker", "exit 1")


def test_crashes_spread_wider_than_the_window_never_end_it(tmp_path: Path) -> None:
    stack = _stack(tmp_path, window_s=0.05)
    for _ in range(6):
        assert stack._crashed("worker", "exit 1") == 1
        time.sleep(0.06)


def test_each_service_has_its_own_budget(tmp_path: Path) -> None:
    stack = _stack(tmp_path, window_s=600)
    for name in ("worker", "sink", "broker"):
        assert stack._crashed(name, "exit 1") == 1
        assert stack._crashed(name, "exit 1") == 2


def test_a_stop_is_clean_only_when_nothing_was_left_cut_or_killed() -> None:
    assert StopReport().clean
    assert not StopReport(left=3).clean
    assert not StopReport(cut_short=True).clean
    assert not StopReport(killed=["worker"]).clean


def test_stopping_a_stack_that_never_started_does_nothing(tmp_path: Path) -> None:
    report = _stack(tmp_path, window_s=600).stop()
    assert report.clean
