"""Run the whole hub on one machine: the broker (if embedded) and one process per service.

Services start after their topics exist and are stopped in the reverse order of
the data flow (connectors, then the worker, then the sink), so the sink drains
what the others produced before it closes the warehouse.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from foundation import runfiles
from foundation.errors import ConfigurationError
from foundation.logs import get_logger
from foundation.settings import Settings
from gridhub.broker import EmbeddedBroker, ensure_topics
from gridhub.services import ServiceName, enabled_services

log = get_logger(__name__)
STOP_ORDER: tuple[ServiceName, ...] = ("patrol", "approvals", "watch", "pull", "worker", "sink")


class SupervisorError(ConfigurationError):
    """The stack could not start; the message points at the log to read."""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def settings_env(settings: Settings, bootstrap: str) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"GRIDHUB_{name.upper()}"] = str(Path(value).resolve()) if isinstance(value, Path) else str(value)
    env["GRIDHUB_KAFKA_BOOTSTRAP"] = bootstrap
    env["GRIDHUB_SUPERVISOR_PID"] = str(os.getpid())
    return env


class Stack:
    """The running hub; use as a context manager so it always stops cleanly."""

    def __init__(self, settings: Settings, services: tuple[ServiceName, ...] | None = None) -> None:
        self.settings = settings
        self.services = services or enabled_services(settings)
        self.log_dir = settings.data_dir / "logs"
        self.broker: EmbeddedBroker | None = None
        self.bootstrap = settings.kafka_bootstrap or ""
        self.processes: dict[ServiceName, subprocess.Popen[bytes]] = {}
        self.restarts: dict[ServiceName, int] = {}

    def start(self, timeout_s: float = 120) -> None:
        """Start the broker and services and wait until each announces itself ready."""
        running = runfiles.discover(self.settings, "sink")
        if running:
            raise SupervisorError(
                f"gridhub already runs on {self.settings.data_dir} (sink pid {running['pid']}); "
                "stop it or use another GRIDHUB_DATA_DIR"
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.bootstrap:
            self.broker = EmbeddedBroker(self.log_dir / "broker.log")
            self.bootstrap = self.broker.start()
        runfiles.announce(self.settings, "broker", bootstrap=self.bootstrap, embedded=self.broker is not None)
        ensure_topics(self.settings, self.bootstrap)
        for name in self.services:
            self._spawn(name)
        self.wait_ready(self.services, timeout_s)

    def _spawn(self, name: ServiceName) -> None:
        with (self.log_dir / f"{name}.log").open("ab") as log_file:
            self.processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "gridhub", "service", name],
                env=settings_env(self.settings, self.bootstrap),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, names: tuple[ServiceName, ...], timeout_s: float) -> None:
        """Block until every named service has announced itself; fail fast if one dies."""
        deadline = time.monotonic() + timeout_s
        pending = set(names)
        while pending:
            for name in list(pending):
                info = runfiles.discover(self.settings, name)
                if info and info["pid"] == self.processes[name].pid:
                    pending.discard(name)
                elif self.processes[name].poll() is not None:
                    log_path = self.log_dir / f"{name}.log"
                    raise SupervisorError(
                        f"service {name} exited while starting; {log_path} ends with:\n{_tail(log_path)}"
                    )
            if pending and time.monotonic() > deadline:
                raise SupervisorError(
                    f"services not ready after {timeout_s:.0f}s: {', '.join(sorted(pending))}; "
                    f"see the logs in {self.log_dir}"
                )
            time.sleep(0.2)

    def url(self, name: ServiceName) -> str:
        """The announced URL of a running service."""
        info = runfiles.discover(self.settings, name)
        if not info or "url" not in info:
            raise SupervisorError(f"service {name} is not running")
        return str(info["url"])

    def watch(self, max_restarts: int = 5) -> None:
        """Restart any service that died, with growing back-off; give up after ``max_restarts``."""
        for name, process in list(self.processes.items()):
            code = process.poll()
            if code is None:
                continue
            count = self.restarts.get(name, 0) + 1
            if count > max_restarts:
                raise SupervisorError(f"service {name} keeps dying (exit {code}); see {self.log_dir / name}.log")
            self.restarts[name] = count
            log.warning("service died; restarting", service=name, exit_code=code, attempt=count)
            time.sleep(min(2**count, 30))
            self.restart(name)

    def restart(self, name: ServiceName, timeout_s: float = 120) -> None:
        """Start a service whose process has ended again, and wait until it is ready."""
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            raise SupervisorError(f"service {name} is still running (pid {process.pid})")
        self._spawn(name)
        self.wait_ready((name,), timeout_s)

    def stop(self) -> None:
        """Stop services in drain order, then the embedded broker; a second Ctrl-C cannot cut this short."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for name in STOP_ORDER:
                process = self.processes.get(name)
                if process is None or process.poll() is not None:
                    continue
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    log.error("service did not stop in time; killing it", service=name)
                    process.kill()
                    process.wait()
            if self.processes:
                runfiles.withdraw(self.settings, "broker")
            if self.broker:
                self.broker.stop()
        finally:
            signal.signal(signal.SIGINT, previous)

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
