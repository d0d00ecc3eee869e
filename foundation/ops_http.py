"""Every service's ops endpoint: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz`` for probes.

One small server per service process, on its own address (``GRIDHUB_OPS_HOST``, loopback by
default, and ``GRIDHUB_OPS_PORT``), apart from the doors the service may also serve: the
patrol gateway's and the screen's ports face phones and browsers, and what an operator's
monitoring reads has no business there.

``/healthz`` answers 200 while every check passes (Kafka answers; for the sink, the warehouse
does) and 503 with the failing check's reason otherwise; ``/readyz`` answers 503 until the
service has announced itself ready (it consumes or serves), 200 after. Neither needs a token:
they say only ok or why not, and the probes that call them (docker's health check, a load
balancer) carry none. ``/metrics`` holds counts and timings, never a record; it is open unless
``GRIDHUB_METRICS_TOKEN`` is set, in which case it answers only that bearer token.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

import foundation.metrics  # noqa: F401 - registers gridhub's metric families, so every /metrics lists them
from foundation.access import bearer_token
from foundation.errors import ConfigurationError, InputRejected
from foundation.logs import get_logger
from foundation.quiet_http import BackgroundServer, QuietHandler
from foundation.settings import Settings

log = get_logger(__name__)
Check = Callable[[], None]
"""A health check: returns when healthy, raises an exception that says what is wrong otherwise."""
CHECK_CACHE_S = 2.0
"""A probe answered within this long reuses the last verdict: a busy prober costs the broker nothing more."""


@dataclass
class Health:
    """What /healthz and /readyz answer: named checks, and whether the service is ready yet."""

    checks: dict[str, Check] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)
    _verdict: tuple[float, str | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def problem(self) -> str | None:
        """None when every check passes, else the first failing check's name and reason (cached briefly)."""
        with self._lock:
            if self._verdict is not None and time.monotonic() - self._verdict[0] < CHECK_CACHE_S:
                return self._verdict[1]
            found = None
            for name, check in self.checks.items():
                try:
                    check()
                except Exception as exc:  # noqa: BLE001 - any failure of a check is the answer, not a crash
                    found = f"{name}: {exc}"
                    break
            self._verdict = (time.monotonic(), found)
            return found


def _authorised(header: str | None, token: str) -> bool:
    try:
        return hmac.compare_digest(bearer_token(header).encode(), token.encode())
    except InputRejected:
        return False


class OpsServer(BackgroundServer):
    """The ops endpoint of one service, served from a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        health: Health,
        metrics_token: str | None = None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        ops = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/metrics":
                    self._metrics()
                elif path == "/healthz":
                    problem = ops.health.problem()
                    self._json(200, {"status": "ok"}) if problem is None else self._json(
                        503, {"status": "unhealthy", "reason": problem}
                    )
                elif path == "/readyz":
                    self._json(200, {"status": "ready"}) if ops.health.ready.is_set() else self._json(
                        503, {"status": "starting", "reason": "the service has not started consuming or serving yet"}
                    )
                else:
                    self._json(404, {"error": "not_found", "reason": "GET /metrics, /healthz or /readyz"})

            def _metrics(self) -> None:
                if ops.metrics_token and not _authorised(self.headers.get("Authorization"), ops.metrics_token):
                    self._json(
                        401, {"error": "unauthenticated", "reason": "send Authorization: Bearer <metrics token>"}
                    )
                    return
                self.send_body(200, generate_latest(ops.registry), CONTENT_TYPE_LATEST)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                self.send_body(status, json.dumps(body).encode(), "application/json")

        self.health = health
        self.metrics_token = metrics_token
        self.registry = registry
        super().__init__(host, port, Handler, "ops-endpoint")

    @classmethod
    def of(cls, settings: Settings, health: Health) -> OpsServer:
        """The ops endpoint the settings ask for; a port that is taken stops the service with one line."""
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        try:
            return cls(settings.ops_host, settings.ops_port, health, token)
        except OSError as exc:
            raise ConfigurationError(
                f"the ops endpoint cannot listen on {settings.ops_host}:{settings.ops_port} ({exc.strerror}); "
                "set GRIDHUB_OPS_PORT to a free port (or 0 for any)"
            ) from exc


@contextmanager
def ops_endpoint(settings: Settings, checks: dict[str, Check]) -> Iterator[tuple[Health, str]]:
    """Serve a service's ops endpoint while the block runs, with ``checks`` (and Kafka's, when there is one).

    Yields the health the service marks ready, and the endpoint's URL for its announcement.
    """
    if settings.kafka_bootstrap:
        checks = {"kafka": kafka_answers(settings, settings.kafka_bootstrap), **checks}
    health = Health(checks)
    server = OpsServer.of(settings, health)
    url = server.start()
    try:
        yield health, url
    finally:
        server.stop()


def kafka_answers(settings: Settings, bootstrap: str) -> Check:
    """A check that Kafka answers a metadata request (with the service's own login), within a few seconds."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from foundation.kafka_security import kafka_python_options

    def check() -> None:
        try:
            client = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id="gridhub-health",
                request_timeout_ms=3000,
                bootstrap_timeout_ms=3000,
                **kafka_python_options(settings),
            )
        except KafkaError as exc:
            raise ConnectionError(f"Kafka at {bootstrap} does not answer ({type(exc).__name__})") from exc
        try:
            client.describe_cluster()
        except KafkaError as exc:
            raise ConnectionError(f"Kafka at {bootstrap} does not answer ({type(exc).__name__})") from exc
        finally:
            client.close()

    return check
