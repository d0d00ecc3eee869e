"""`gridhub status`'s pure parts: the services from the run files, the tables, the ages an operator reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from foundation import runfiles
from foundation.settings import Settings
from gridhub.lag import StageLag
from gridhub.status import HubStatus, ServiceState, age, consumer_table, hub_status, service_states, service_table
from gridhub.supervisor import SUPERVISOR


def test_ages_read_like_a_clock() -> None:
    assert [age(None), age(0.4), age(59), age(61), age(3 * 3600 + 20 * 60), age(2 * 86400 + 4 * 3600)] == [
        "-",
        "0s",
        "59s",
        "1m 01s",
        "3h 20m",
        "2d 04h",
    ]


def test_the_tables_show_what_the_operator_asks() -> None:
    status = HubStatus(
        "/data",
        41,
        [ServiceState("sink", "down", 42, 2, "last exit -9 at 2026-01-01 10:00:00: killed", None)],
        [StageLag("sink", "warehouse", 120, 3, 75.0), StageLag("gridhub-streams", "integrate", None, 0, None)],
    )
    assert service_table(status)["rows"] == [["sink", "down", 42, 2, "last exit -9 at 2026-01-01 10:00:00: killed", ""]]
    assert consumer_table(status)["rows"] == [
        ["sink", "warehouse", 120, 3, "1m 15s"],
        ["gridhub-streams", "integrate", "?", 0, "-"],
    ]


def test_nothing_running_is_no_status(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert hub_status(settings) is None
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    runfiles.announce(settings, "sink", url="http://127.0.0.1:1")
    path = tmp_path / "run" / "sink.json"
    path.write_text(path.read_text().replace(str(os.getpid()), gone.stdout.strip()))
    assert hub_status(settings) is None, "a run file whose process is gone is stale"


def test_services_as_the_supervisor_knows_them(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    me = os.getpid()
    runfiles.announce(
        settings,
        SUPERVISOR,
        services={
            "sink": {"pid": me, "restarts": 1, "last_error": "last exit 1 at 2026-01-01 10:00:00: boom"},
            "worker": {"pid": me, "restarts": 0, "last_error": None},
            "patrol": {"pid": 2**22 + 7, "restarts": 0, "last_error": None},
        },
    )
    runfiles.announce(settings, "sink", url="http://127.0.0.1:1", ops_url="http://127.0.0.1:2")
    supervisor, states = service_states(settings)
    assert supervisor == me
    assert states == [
        ServiceState("sink", "up", me, 1, "last exit 1 at 2026-01-01 10:00:00: boom", "http://127.0.0.1:2"),
        ServiceState("worker", "starting", me, 0, None, None),
        ServiceState("patrol", "down", 2**22 + 7, 0, None, None),
    ]


def test_without_a_supervisor_the_announced_services_are_listed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    runfiles.announce(settings, "approvals", ops_url="http://127.0.0.1:3")
    assert service_states(settings) == (
        None,
        [ServiceState("approvals", "up", os.getpid(), None, None, "http://127.0.0.1:3")],
    )
