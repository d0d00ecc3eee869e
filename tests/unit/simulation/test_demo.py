"""``gridhub demo``'s pure parts: its own settings, what ``--serve`` prints and how the tests read it back."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundation.settings import Settings
from gridhub.supervisor import StopReport
from simulation.demo import _demo_settings, serve_lines, served_line
from simulation.town import DAY


def test_the_demo_takes_free_ports_in_its_own_folder(tmp_path: Path) -> None:
    settings = _demo_settings(Settings(data_dir=tmp_path, http_port=8088, screen_port=8090))
    assert settings.data_dir == tmp_path / "demo"
    assert (settings.http_port, settings.sink_query_port, settings.screen_port) == (0, 0, 0)


def test_serving_keeps_the_screen_port_the_user_set_and_only_that(tmp_path: Path) -> None:
    settings = _demo_settings(Settings(data_dir=tmp_path, http_port=8088, screen_port=8123), serve=True)
    assert settings.screen_port == 8123
    assert (settings.http_port, settings.sink_query_port) == (0, 0)


def test_serving_takes_a_free_screen_port_when_none_was_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDHUB_SCREEN_PORT", raising=False)
    assert _demo_settings(Settings(data_dir=tmp_path), serve=True).screen_port == 0


def test_the_screen_port_set_in_the_environment_counts_as_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDHUB_SCREEN_PORT", "8124")
    assert _demo_settings(Settings(data_dir=tmp_path), serve=True).screen_port == 8124
    assert _demo_settings(Settings(data_dir=tmp_path)).screen_port == 0


def test_serve_lines_name_every_door_and_open_the_screen_on_the_simulated_day(tmp_path: Path) -> None:
    lines = serve_lines("http://127.0.0.1:8090", "http://127.0.0.1:41234", "127.0.0.1:9092", tmp_path)
    assert dict(lines) == {
        "patrol gateway": "http://127.0.0.1:41234",
        "kafka bootstrap": "127.0.0.1:9092",
        "commander token": str(tmp_path.resolve() / "commander.token"),
        "analyst token": str(tmp_path.resolve() / "analyst.token"),
        "screen": "http://127.0.0.1:8090/?date=2026-11-25",
    }
    assert DAY.isoformat() == "2026-11-25"
    assert lines[-1][0] == "screen", "the screen comes last: once it is printed, every other line is"


def test_what_serve_prints_reads_back_line_by_line(tmp_path: Path) -> None:
    folder = tmp_path / "a folder with spaces"
    lines = serve_lines("http://127.0.0.1:8090", "http://127.0.0.1:41234", "127.0.0.1:9092", folder)
    printed = [f"  {name}: {value}\n" for name, value in lines]
    assert [served_line(line) for line in printed] == lines
    for other in ("gridhub demo --serve", "│ events │ 200 │", "  screen:", "screen: http://x", "Press Ctrl-C to stop."):
        assert served_line(other) is None, other


def test_a_stop_says_whether_it_was_clean(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert StopReport().describe("gridhub demo", settings) == "gridhub demo stopped cleanly."
    unclean = StopReport(left=3, killed=["sink"]).describe("gridhub demo", settings)
    assert unclean.startswith("gridhub demo stopped, not cleanly: 3 accepted messages had not reached the warehouse")
    assert str(settings.journal_dir) in unclean and "sink did not stop in time" in unclean
    cut = StopReport(cut_short=True).describe("gridhub demo", settings)
    assert "cut short, but everything accepted had landed" in cut
