"""`gridhub up` as an operator runs it, from a test: its environment, Ctrl-C at its default, ready when announced."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from foundation import runfiles
from foundation.access import TokenBook
from foundation.settings import Settings
from gridhub.services import enabled_services
from schemas.grid import Grid
from simulation.senders import TownTokens
from streams.routing import load_rules
from tests.support.hub import ROOT


@functools.cache
def town_tokens(data_dir: Path) -> TownTokens:
    """The simulated town's tokens in this hub's token book (made once per folder, before or after `up`)."""
    settings = Settings(data_dir=data_dir)
    return TownTokens.make(settings, Grid.load(settings.grid_path), load_rules(settings.routing_rules))


@functools.cache
def admin_token(data_dir: Path) -> str:
    """A test operator's admin token in this hub's token book."""
    return TokenBook(Settings(data_dir=data_dir).tokens_file).add("test-operator", "admin")


def as_commander(settings: Settings) -> Settings:
    """These settings, calling as the town's command-centre staff (who see the warehouse whole)."""
    return settings.model_copy(update={"token": SecretStr(town_tokens(settings.data_dir).commander)})


def up_env(data_dir: Path) -> dict[str, str]:
    """The environment of an operator's ``gridhub`` commands on this folder, as its admin."""
    return {
        **os.environ,
        "GRIDHUB_TOKEN": admin_token(data_dir),
        "GRIDHUB_DATA_DIR": str(data_dir),
        "GRIDHUB_HTTP_PORT": "0",
        "GRIDHUB_SINK_QUERY_PORT": "0",
        "GRIDHUB_SCREEN_PORT": "0",
        "GRIDHUB_SINK_BATCH_WAIT_MS": "100",
    }


def broker_running(port: str) -> bool:
    """Whether an embedded broker still listens on this port."""
    return subprocess.run(["pgrep", "-f", f"listener-url tcp://127.0.0.1:{port}"], check=False).returncode == 0


AT_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'gridhub', *sys.argv[1:]])"
)
"""Starts ``gridhub ARGS`` with Ctrl-C (SIGINT) at its default, as at a terminal.

A test runner started as a background job inherits SIGINT ignored (POSIX shells do that) and
passes it on; Python then turns no SIGINT into Ctrl-C, and a test that presses Ctrl-C would
depend on how it was launched.
"""


def at_a_terminal(*args: str) -> list[str]:
    """The command line of ``gridhub ARGS`` that reacts to SIGINT as an operator's Ctrl-C."""
    return [sys.executable, "-c", AT_A_TERMINAL, *args]


def start_up(data_dir: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    """Run `gridhub up` as an operator would and wait until it says "Press Ctrl-C to stop."

    Not merely until every service has announced itself: the supervisor notices that a moment
    later, and a Ctrl-C before then interrupts the start instead of stopping a running hub.
    """
    settings = Settings(data_dir=data_dir)
    up = subprocess.Popen(
        at_a_terminal("up"),
        env=up_env(data_dir),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert up.stdout is not None
    said = b""
    while b"Press Ctrl-C to stop." not in said and (line := up.stdout.readline()):
        said += line
    assert up.poll() is None, (said + up.communicate()[0]).decode()
    return up, [runfiles.discover(settings, name)["pid"] for name in enabled_services(settings)]
