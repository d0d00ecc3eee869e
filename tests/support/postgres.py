"""A throwaway PostgreSQL server for tests, started from the pgserver wheel (no system install)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pgserver
import psutil


def sqlalchemy_url(uri: str) -> str:
    """pgserver's libpq URI (a unix socket in the data folder) as a SQLAlchemy URL for psycopg 3."""
    return uri.replace("postgresql://", "postgresql+psycopg://", 1)


def _running(pid: int | None) -> bool:
    if pid is None or not psutil.pid_exists(pid):
        return False
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    return False


@contextlib.contextmanager
def throwaway_postgres(folder: Path) -> Iterator[str]:
    """Start a server on ``folder``, yield its SQLAlchemy URL, and stop it (checked) afterwards."""
    server = pgserver.get_server(folder, cleanup_mode="stop")
    pid = server.get_pid()
    try:
        yield sqlalchemy_url(server.get_uri())
    finally:
        server.cleanup()
    assert not _running(pid), f"PostgreSQL (pid {pid}) still runs after cleanup"
    assert not (folder / "postmaster.pid").exists(), "PostgreSQL left its postmaster.pid behind"
