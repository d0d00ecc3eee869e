"""`gridhub up` as an operator runs it: start, take records, Ctrl-C, and the warehouse stays readable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from foundation import runfiles
from foundation.settings import Settings
from tests.support.hub import ROOT, report, wait_until
from tests.support.up import at_a_terminal, broker_running, start_up, town_tokens, up_env


def test_up_serves_until_ctrl_c_then_stops_everything_and_sql_reads_the_file(tmp_path: Path) -> None:
    env = up_env(tmp_path)
    settings = Settings(data_dir=tmp_path)

    def sql(statement: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gridhub", "sql", statement, "--output", "json"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    phone = town_tokens(tmp_path).phones["GW002"]
    up, pids = start_up(tmp_path)
    try:
        body = report(
            "R-UP-1",
            category="0401",
            description="路面塌陷",
            reported_at="2026-11-25T10:00:00+08:00",
            reporter_id="GW002",
        )
        request = urllib.request.Request(
            runfiles.discover(settings, "patrol")["url"] + "/v1/reports",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {phone}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202

        wait_until(lambda: "R-UP-1" in sql("SELECT event_id FROM events").stdout, what="the event, via the sink")
    finally:
        up.send_signal(signal.SIGINT)
        output = up.communicate(timeout=120)[0].decode()

    assert up.returncode == 0, output
    assert "gridhub stopped cleanly" in output
    assert "Traceback" not in output
    assert all(not runfiles.pid_alive(pid) for pid in pids)
    assert not list((tmp_path / "run").glob("*.json"))
    after = sql("SELECT event_id, department, status FROM events")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == [{"event_id": "R-UP-1", "department": "emergency", "status": "dispatched"}]


def test_ctrl_c_during_the_demo_stops_every_process_it_started(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    settings = Settings(data_dir=demo_dir)
    demo = subprocess.Popen(
        at_a_terminal("demo", "--data-dir", str(tmp_path)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: runfiles.discover(settings, "sink") or demo.poll() is not None, timeout_s=240, what="sink")
        assert demo.poll() is None, demo.communicate()[0].decode()
        pids = [info["pid"] for name in ("sink", "broker") if (info := runfiles.discover(settings, name))]
        broker_log = (demo_dir / "logs" / "broker.log").read_text()
    finally:
        demo.send_signal(signal.SIGINT)
        demo.send_signal(signal.SIGINT)
        output = demo.communicate(timeout=120)[0].decode()

    assert demo.returncode == 130, output
    assert "interrupted" in output
    assert "Traceback" not in output
    assert all(not runfiles.pid_alive(pid) for pid in pids)
    port = broker_log.split("listening on: tcp://127.0.0.1:")[1].split()[0]
    assert not broker_running(port)


def test_services_and_broker_stop_when_up_is_killed_outright(tmp_path: Path) -> None:
    up, pids = start_up(tmp_path)
    port = (tmp_path / "logs" / "broker.log").read_text().split("listening on: tcp://127.0.0.1:")[1].split()[0]

    up.kill()
    up.communicate(timeout=30)

    wait_until(lambda: not any(runfiles.pid_alive(pid) for pid in pids), timeout_s=60, what="the services to stop")
    # The broker is told to stop (by its parent-death signal) when gridhub up dies, as the services are,
    # and shuts down in its own time: that it has not stopped by the time they have proves nothing yet.
    wait_until(lambda: not broker_running(port), timeout_s=60, what="the embedded broker to stop after gridhub up")
