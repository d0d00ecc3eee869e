"""The fault suite: one fault mid-stream on a running ``gridhub up``, then nothing acknowledged is lost.

Each test starts its own hub, sends 300 HTTP reports, a 100,000-row export through
``gridhub ingest`` and 200 approval rows at once, strikes once the gateway has acknowledged
100 reports, and waits until the warehouse accounts for everything acknowledged. The test
never re-sends. The table it prints (run with ``-s``) is the one in the closing note.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from bench.data import person_export
from foundation import runfiles
from foundation.settings import Settings
from tests.support.faults import Traffic, settled_account
from tests.support.hub import wait_until
from tests.support.up import start_up

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EXPORT_ROWS = 100_000


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return person_export(tmp_path_factory.mktemp("exports"), EXPORT_ROWS, seed=11).path


def _broker(up: subprocess.Popen[bytes]) -> psutil.Process:
    [broker] = [child for child in psutil.Process(up.pid).children(recursive=True) if "tansu" in child.name()]
    return broker


def _kill_service(name: str) -> Callable[[subprocess.Popen[bytes], Settings, Traffic], None]:
    def strike(up: subprocess.Popen[bytes], settings: Settings, traffic: Traffic) -> None:
        os.kill(runfiles.discover(settings, name)["pid"], signal.SIGKILL)

    return strike


def _kill_broker(up: subprocess.Popen[bytes], settings: Settings, traffic: Traffic) -> None:
    _broker(up).kill()


def _pause_broker(up: subprocess.Popen[bytes], settings: Settings, traffic: Traffic) -> None:
    broker = _broker(up)
    broker.suspend()
    time.sleep(30)  # the fault itself: the broker answers nothing for 30 s
    broker.resume()


def _kill_ingest(up: subprocess.Popen[bytes], settings: Settings, traffic: Traffic) -> None:
    """Kill ``gridhub ingest`` while it publishes: once its journal's open transaction has spilled 4 MB to disk."""

    def publishing() -> bool:
        spilled = sum(path.stat().st_size for path in settings.journal_dir.glob("ingest-*.journal-wal"))
        return spilled > 4_000_000 or (traffic.ingest is not None and traffic.ingest.poll() is not None)

    wait_until(publishing, what="the ingest client half-way")
    assert traffic.ingest is not None
    traffic.ingest.kill()


FAULTS = {
    "worker SIGKILL": _kill_service("worker"),
    "sink SIGKILL": _kill_service("sink"),
    "gateway SIGKILL": _kill_service("patrol"),
    "approvals poller SIGKILL": _kill_service("approvals"),
    "ingest client SIGKILL": _kill_ingest,
    "broker SIGKILL": _kill_broker,
    "broker SIGSTOP 30 s": _pause_broker,
}


@pytest.fixture
def up(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    process, _ = start_up(tmp_path)
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=300)


def _report(fault: str, traffic: Traffic, settings: Settings) -> None:
    account = settled_account(settings, traffic.ledger)
    print(
        f"\n| {fault} | {account.acknowledged} | {account.in_warehouse} | {account.in_rejects} "
        f"| {account.lost} | {account.duplicated} | {account.unexpected} |"
    )
    assert (account.lost, account.duplicated, account.unexpected) == (0, 0, 0), account
    assert account.acknowledged > 0


@pytest.mark.parametrize("fault", list(FAULTS))
def test_nothing_acknowledged_is_lost_or_duplicated(
    fault: str, up: subprocess.Popen[bytes], tmp_path: Path, export: Path
) -> None:
    settings = Settings(data_dir=tmp_path)
    traffic = Traffic(tmp_path, export, EXPORT_ROWS).start()
    if fault != "ingest client SIGKILL":
        wait_until(lambda: len(traffic.ledger.reports_acknowledged) >= 100, timeout_s=120, what="100 reports answered")
    FAULTS[fault](up, settings, traffic)
    traffic.join()
    assert up.poll() is None, "the hub survived the fault"
    _report(fault, traffic, settings)


def _ctrl_c(up: subprocess.Popen[bytes]) -> None:
    up.send_signal(signal.SIGINT)
    output = up.communicate(timeout=300)[0].decode()
    assert up.returncode == 0, output
    assert "Traceback" not in output


def _kill_everything(up: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``gridhub up``, the broker and every service at once: nothing gets to flush or drain."""
    processes = [psutil.Process(up.pid), *psutil.Process(up.pid).children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    up.communicate(timeout=60)


RESTARTS = {"Ctrl-C of gridhub up, then up again": _ctrl_c, "every process SIGKILLed, then up again": _kill_everything}


@pytest.mark.parametrize("fault", list(RESTARTS))
def test_a_stop_mid_stream_then_a_restart_loses_nothing(fault: str, tmp_path: Path, export: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    up, _ = start_up(tmp_path)
    traffic = Traffic(tmp_path, export, EXPORT_ROWS).start()
    wait_until(lambda: len(traffic.ledger.reports_acknowledged) >= 100, timeout_s=120, what="100 reports answered")
    RESTARTS[fault](up)
    traffic.join()
    again, _ = start_up(tmp_path)
    try:
        _report(fault, traffic, settings)
    finally:
        again.send_signal(signal.SIGINT)
        stopped = again.communicate(timeout=300)[0].decode()
    assert "gridhub stopped cleanly" in stopped, stopped
