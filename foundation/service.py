"""The lifecycle every long-running gridhub service shares: prepare, announce, run until told to stop, close.

``gridhub up`` starts each service as a process of its own and docker-compose as a container;
both run ``gridhub service NAME``, which hands the service to :func:`run_service`. The service
itself only says what it needs (:meth:`Service.prepare`), what it does (:meth:`Service.run`)
and what it lets go (:meth:`Service.close`); when it is announced, how it hears SIGTERM and
Ctrl-C, and what happens when the supervisor that started it dies are decided here, once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from foundation import runfiles
from foundation.logs import get_logger
from foundation.ops_http import Check, ops_endpoint
from foundation.settings import Settings

log = get_logger(__name__)


class Service(ABC):
    """A long-running part of the hub (a connector, the sink).

    Errors decide by type (:mod:`foundation.errors`): a :class:`~foundation.errors.ConfigurationError`
    from :meth:`prepare` or :meth:`run` stops the process with its one line; a service retries what
    is :class:`~foundation.errors.RetryableError` itself and keeps or refuses what is
    :class:`~foundation.errors.InputRejected`, never both.
    """

    def prepare(self) -> dict[str, Any]:
        """Check the configuration and take what :meth:`run` needs; return what to announce (an address...).

        The service is announced ready only after this returns, so a service that cannot work
        (a wrong mapping file, a port taken) fails its start instead of failing its first record.
        """
        return {}

    @abstractmethod
    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set, finishing the unit of work in hand (a batch, a request, a file) first."""

    def close(self) -> None:  # noqa: B027 - most services have something to release, not all
        """Release what :meth:`prepare` took; called once, whether :meth:`run` returned or raised."""

    def health_checks(self) -> dict[str, Check]:
        """What /healthz checks besides Kafka (the sink: its warehouse); each runs only when a probe asks."""
        return {}


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM (the supervisor, docker stop) or SIGINT (Ctrl-C)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def stop_with_supervisor(settings: Settings) -> None:
    """Stop this process cleanly (SIGTERM to itself) when the ``gridhub up`` that started it is gone.

    Without this, a supervisor killed outright would leave its services running, holding ports
    and the warehouse file. A service started by hand or by docker-compose has no supervisor.
    """
    supervisor = settings.supervisor_pid
    if supervisor is None:
        return

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(1)
        log.warning("gridhub up is gone; stopping", supervisor_pid=supervisor)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def run_service(settings: Settings, name: str, service: Service) -> None:
    """Run one service in this process: prepare, announce, run until SIGTERM or Ctrl-C, withdraw, close.

    Its ops endpoint (:mod:`foundation.ops_http`) answers from before :meth:`Service.prepare`, so a
    probe sees "not ready" while the service starts, and "ready" from its announcement on.
    """
    stop = stop_on_signals()
    with ops_endpoint(settings, service.health_checks()) as (health, ops_url):
        try:
            info = service.prepare()
            runfiles.announce(settings, name, ops_url=ops_url, **info)
            health.ready.set()
            service.run(stop)
        finally:
            runfiles.withdraw(settings, name)
            service.close()
