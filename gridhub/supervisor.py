"""Run the whole hub on one machine: the broker (if embedded) and one process per service.

The sink and the worker start first; then, on a new embedded broker, the open cases go back
from the warehouse to the case agent (:mod:`gridhub.restore`), and the doors' journals are sent
again (whatever a crash, a Ctrl-C cut short or a dead broker left unlanded); only then do the
doors open, so a replayed record never overtakes a newer one from the same sender. Stopping runs the other
way: the doors close, the supervisor waits until every record they accepted has landed (their
journals are empty: acknowledged records, not the broker's end offsets, which the embedded
broker reports wrongly), then the worker stops, then the sink, which reads its topics to the
end before it closes the warehouse, then the broker. A dead broker is restarted on the same
address, with every service after it, and the journals are replayed.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from foundation import runfiles
from foundation.errors import ConfigurationError
from foundation.journal import pending_records
from foundation.logs import get_logger
from foundation.settings import Settings
from gridhub.broker import EmbeddedBroker, ensure_topics
from gridhub.replay import replay_journals
from gridhub.restore import restore_open_cases
from gridhub.services import ServiceName, enabled_services, ops_port

log = get_logger(__name__)
SUPERVISOR = "supervisor"
"""The run file in which `gridhub up` keeps its services' records (:class:`ServiceRecord`) while it runs."""
CORE: tuple[ServiceName, ...] = ("sink", "worker")
"""Services that carry records from the raw topics into the warehouse; every other one is a door."""


@dataclass
class StopReport:
    """How a stop went: ``clean`` only if every accepted record landed and every service stopped by itself."""

    left: int = 0
    """Journal entries not yet landed when the broker stopped (sent again at the next start)."""
    cut_short: bool = False
    killed: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Whether "stopped cleanly" is true."""
        return self.left == 0 and not self.cut_short and not self.killed

    def describe(self, what: str, settings: Settings) -> str:
        """One line for the operator: stopped cleanly, or what the stop left undone and what happens to it."""
        if self.clean:
            return f"{what} stopped cleanly."
        parts = []
        if self.left:
            parts.append(
                f"{self.left} accepted messages had not reached the warehouse; they are kept in "
                f"{settings.journal_dir} and sent again when gridhub starts next"
            )
        if self.killed:
            parts.append(
                f"{', '.join(self.killed)} did not stop in time and was killed (see {settings.data_dir / 'logs'})"
            )
        if self.cut_short and not self.left:
            parts.append("the drain was cut short, but everything accepted had landed")
        return f"{what} stopped, not cleanly: " + "; ".join(parts) + "."


@dataclass
class ServiceRecord:
    """What the supervisor knows of one process it runs, for `gridhub status` (written to its run file)."""

    pid: int | None = None
    restarts: int = 0
    last_error: str | None = None


class SupervisorError(ConfigurationError):
    """The stack could not start; the message points at the log to read."""


class ServiceExited(SupervisorError):
    """A service ended while it was starting."""

    def __init__(self, name: ServiceName, message: str) -> None:
        super().__init__(message)
        self.name = name


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def settings_env(settings: Settings, bootstrap: str) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            env[f"GRIDHUB_{name.upper()}"] = value.get_secret_value()
        elif value is not None:
            env[f"GRIDHUB_{name.upper()}"] = str(Path(value).resolve()) if isinstance(value, Path) else str(value)
    env["GRIDHUB_KAFKA_BOOTSTRAP"] = bootstrap
    env["GRIDHUB_SUPERVISOR_PID"] = str(os.getpid())
    return env


class Stack:
    """The running hub; use as a context manager so it always stops."""

    def __init__(self, settings: Settings, services: tuple[ServiceName, ...] | None = None) -> None:
        self.settings = settings.model_copy(update={"service_token": SecretStr(secrets.token_urlsafe(32))})
        """The settings, with a secret made for this run that the hub's own processes show each other's doors."""
        self.services = services or enabled_services(settings)
        self.log_dir = settings.data_dir / "logs"
        self.broker: EmbeddedBroker | None = None
        self.bootstrap = settings.kafka_bootstrap or ""
        self.processes: dict[ServiceName, subprocess.Popen[bytes]] = {}
        self.crashes: dict[str, deque[float]] = {}
        """Recent crash times per service (and of the broker), within the restart window."""
        self.replayed = 0
        """Journal messages sent again at the last start or broker restart."""
        self.restored = 0
        """Open cases handed back from the warehouse to the last new embedded broker."""
        self.records: dict[str, ServiceRecord] = {}
        """Each service's (and the embedded broker's) process, restarts and last error, as `gridhub status` shows."""

    @property
    def core(self) -> tuple[ServiceName, ...]:
        """The worker and sink among this stack's services."""
        return tuple(name for name in self.services if name in CORE)

    @property
    def doors(self) -> tuple[ServiceName, ...]:
        """The connectors among this stack's services."""
        return tuple(name for name in self.services if name not in CORE)

    def start(self, timeout_s: float = 120) -> None:
        """Start the broker and services, replay the journals, and wait until every service is ready."""
        running = runfiles.discover(self.settings, "sink")
        if running:
            raise SupervisorError(
                f"gridhub already runs on {self.settings.data_dir} (sink pid {running['pid']}); "
                "stop it or use another GRIDHUB_DATA_DIR"
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.bootstrap:
            if self.settings.kafka_security_protocol != "PLAINTEXT":
                raise ConfigurationError(
                    f"GRIDHUB_KAFKA_SECURITY_PROTOCOL is {self.settings.kafka_security_protocol}, but the embedded "
                    "broker speaks PLAINTEXT only: set GRIDHUB_KAFKA_BOOTSTRAP to your cluster, or unset the protocol"
                )
            self.broker = EmbeddedBroker(self.log_dir / "broker.log")
            self.bootstrap = self.broker.start()
            self.records["broker"] = ServiceRecord(self.broker.pid)
        runfiles.announce(self.settings, "broker", bootstrap=self.bootstrap, embedded=self.broker is not None)
        self._start_services(timeout_s)

    def _start_services(self, timeout_s: float, retry: bool = False) -> None:
        ensure_topics(self.settings, self.bootstrap)
        self._bring_up(self.core, timeout_s, retry)
        if self.broker is not None and "sink" in self.core:
            self.restored = restore_open_cases(self.settings, self.bootstrap)
        self.replayed = replay_journals(self.settings, self.bootstrap)
        self._bring_up(self.doors, timeout_s, retry)

    def _bring_up(self, names: tuple[ServiceName, ...], timeout_s: float, retry: bool) -> None:
        """Start ``names`` and wait until they are ready.

        At the first start a service that exits ends the hub at once (its configuration is
        wrong); when the hub restarts after a failure (``retry``), such an exit counts as one
        more crash of that service and it is started again, within the restart budget.
        """
        for name in names:
            self._spawn(name)
        while True:
            try:
                self.wait_ready(names, timeout_s)
                return
            except ServiceExited as exc:
                if not retry:
                    raise
                count = self._crashed(exc.name, "exited while starting")
                log.warning("service exited while starting; starting it again", service=exc.name, attempt=count)
                time.sleep(min(2**count, 30))
                self._spawn(exc.name)

    def _spawn(self, name: ServiceName) -> None:
        env = {**settings_env(self.settings, self.bootstrap), "GRIDHUB_OPS_PORT": str(ops_port(self.settings, name))}
        with (self.log_dir / f"{name}.log").open("ab") as log_file:
            self.processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "gridhub", "service", name],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.records.setdefault(name, ServiceRecord()).pid = self.processes[name].pid
        self._publish_records()

    def _publish_records(self) -> None:
        """Write what the supervisor knows of its processes where `gridhub status` reads it."""
        runfiles.announce(
            self.settings, SUPERVISOR, services={name: asdict(record) for name, record in self.records.items()}
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
                    raise ServiceExited(
                        name, f"service {name} exited while starting; {log_path} ends with:\n{_tail(log_path)}"
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

    def _crashed(self, name: str, detail: str) -> int:
        """Count one crash of ``name`` within the restart window; end the hub past the limit."""
        now = time.monotonic()
        recent = self.crashes.setdefault(name, deque())
        recent.append(now)
        while recent and now - recent[0] > self.settings.restart_window_s:
            recent.popleft()
        record = self.records.setdefault(name, ServiceRecord())
        record.restarts += 1
        last_line = _tail(self.log_dir / f"{name}.log", 1)[:300]
        record.last_error = f"{detail} at {time.strftime('%Y-%m-%d %H:%M:%S')}: {last_line}"
        self._publish_records()
        if len(recent) > self.settings.restart_limit:
            raise SupervisorError(
                f"{name} died {len(recent)} times within {self.settings.restart_window_s:.0f}s ({detail}); "
                f"see {self.log_dir / name}.log"
            )
        return len(recent)

    def watch(self) -> None:
        """Restart the broker or any service that died, with growing back-off.

        More than ``restart_limit`` crashes of one of them within ``restart_window_s`` end the hub:
        a service that crashes now and then is restarted for ever, one that cannot run is not.
        """
        if self.broker is not None and self.broker.pid is None:
            self._restart_broker()
            return
        for name, process in list(self.processes.items()):
            code = process.poll()
            if code is None:
                continue
            count = self._crashed(name, f"last exit {code}")
            log.warning("service died; restarting", service=name, exit_code=code, attempt=count)
            time.sleep(min(2**count, 30))
            self._bring_up((name,), timeout_s=120, retry=True)

    def _restart_broker(self) -> None:
        """Start the embedded broker again on its address, then every service, and replay the journals.

        The new broker knows none of the old topics, consumer groups or tables, so every service
        starts afresh against it; the records the old one took with it are in the doors' journals.
        """
        assert self.broker is not None
        count = self._crashed("broker", "the embedded broker's process ended")
        log.error("the embedded broker died; restarting it and every service", attempt=count)
        self._terminate(tuple(self.processes), timeout_s=5)
        self.broker.start()
        self.records["broker"].pid = self.broker.pid
        self._start_services(timeout_s=120, retry=True)

    def restart(self, name: ServiceName, timeout_s: float = 120) -> None:
        """Start a service whose process has ended again, and wait until it is ready."""
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            raise SupervisorError(f"service {name} is still running (pid {process.pid})")
        self._bring_up((name,), timeout_s, retry=False)

    def _running(self, name: ServiceName) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def _terminate(self, names: tuple[ServiceName, ...], timeout_s: float = 30) -> list[str]:
        """SIGTERM the named services one after the other; return those that had to be killed."""
        killed = []
        for name in names:
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.error("service did not stop in time; killing it", service=name)
                process.kill()
                process.wait()
                killed.append(name)
        return killed

    def drain(self, cut: threading.Event, on_progress: Callable[[int], None] | None = None) -> int:
        """Wait until the doors' journals are empty (everything accepted has landed); return what is left.

        Gives up when ``cut`` is set (a second Ctrl-C), after ``drain_timeout_s``, or when the
        worker or sink is no longer running to land anything.
        """
        deadline = time.monotonic() + self.settings.drain_timeout_s
        while True:
            left = pending_records(self.settings.journal_dir)
            if on_progress:
                on_progress(left)
            if left == 0 or cut.is_set() or time.monotonic() > deadline:
                return left
            stopped: list[str] = [name for name in self.core if not self._running(name)]
            if self.broker is not None and self.broker.pid is None:
                stopped.append("broker")
            if stopped:
                log.error("cannot drain: a service is not running", services=stopped, left=left)
                return left
            cut.wait(0.25)

    def stop(self, on_progress: Callable[[int], None] | None = None) -> StopReport:
        """Close the doors, drain, stop the worker, the sink and the broker; a second Ctrl-C skips the drain."""
        cut = threading.Event()
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, lambda *_: cut.set()) if in_main_thread else None
        report = StopReport()
        try:
            report.killed += self._terminate(self.doors)
            if self.core and all(self._running(name) for name in self.core):
                report.left = self.drain(cut, on_progress)
            elif self.processes:
                report.left = pending_records(self.settings.journal_dir)
            report.cut_short = cut.is_set()
            if in_main_thread:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            report.killed += self._terminate(("worker", "sink"))
            if self.processes:
                runfiles.withdraw(self.settings, "broker")
            runfiles.withdraw(self.settings, SUPERVISOR)
            if self.broker:
                self.broker.stop()
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)
        if report.left:
            log.warning(
                "stopped with accepted records not yet landed; they are sent again at the next start", left=report.left
            )
        return report

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
