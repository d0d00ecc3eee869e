"""The patrol gateway over HTTP with no broker behind it: refusals, the JSON error shape, the connection cap.

What a body may hold is tested in ``test_patrol_bodies.py``; what reaches Kafka in
``tests/integration/test_gateway_fuzz.py``.
"""

from __future__ import annotations

import http.client
import json
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.http_guard import RESERVED_FDS, RequestRefused, connection_cap
from connectors.patrol_http import Limits, PatrolGateway
from connectors.photos import PhotoStore
from foundation.access import Doorkeeper, RateLimiter, TokenBook
from foundation.settings import Settings
from schemas.grid import Grid
from streams.routing import RoutingRules, load_rules
from tests.support.files import picture
from tests.support.hub import multipart
from tests.support.patrol import REPORT, UPDATE


def refusal(call: Any, *args: Any) -> RequestRefused:
    with pytest.raises(RequestRefused) as refused:
        call(*args)
    return refused.value


# --- over HTTP, with no broker: refusals never reach Kafka ---------------------------------------------


class NoKafka:
    """A publisher for a gateway that must not publish: every request in these tests is refused first."""

    def publish(self, *_: object) -> None:
        raise AssertionError("a refused request reached the publisher")

    def close(self) -> None:
        """Nothing to release."""


def start_gateway(
    photo_dir: Path, limits: Limits, rules: RoutingRules | None = None
) -> tuple[str, int, threading.Event, threading.Thread]:
    host, port, stop, thread, _ = serve_gateway(photo_dir, limits, rules)
    return host, port, stop, thread


TOKENS: dict[str, str] = {}
"""The token each path is posted with: the command centre's, and for tracks the phone of worker GW1."""


def serve_gateway(
    photo_dir: Path, limits: Limits, rules: RoutingRules | None = None
) -> tuple[str, int, threading.Event, threading.Thread, PatrolGateway]:
    settings_ = Settings()
    book = TokenBook(photo_dir.parent / f"{photo_dir.name}-tokens.sqlite")
    TOKENS.update(
        {"/v1/reports": book.add("centre", "commander"), "/v1/tracks": book.add("gw1", "device", worker="GW1")}
    )
    TOKENS["/v1/updates"] = TOKENS["/v1/reports"]
    gateway = PatrolGateway(
        NoKafka(),  # type: ignore[arg-type]
        rules or load_rules(settings_.routing_rules),
        Grid.load(settings_.grid_path),
        PhotoStore(photo_dir, 100_000),
        limits,
        Doorkeeper(book, RateLimiter("1000/second")),
    )
    host, port = gateway.prepare()["url"].removeprefix("http://").split(":")
    stop = threading.Event()

    def serve() -> None:
        try:
            gateway.run(stop)
        finally:
            gateway.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return host, int(port), stop, thread, gateway


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    photo_dir = tmp_path / "photos"
    host, port, stop, thread = start_gateway(photo_dir, Limits(record_bytes=100_000, photos=2, track_points=10))
    yield host, port, photo_dir
    stop.set()
    thread.join(timeout=30)


def post(address: tuple[str, int], path: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("POST", path, body, {"Content-Type": content_type, **bearer(path)})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def bearer(path: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[path]}"} if path in TOKENS else {}


def as_json(base: dict[str, Any], **change: Any) -> bytes:
    return json.dumps({**base, **change}).encode()


DEEP = b'{"a": ' + b"[" * 40_000 + b"]" * 40_000 + b"}"
REFUSALS = [
    ("/v1/reports", DEEP, "application/json", 400, "too_deep"),
    ("/v1/reports", b'{"lat": ' + b"7" * 5000 + b"}", "application/json", 400, "bad_number"),
    ("/v1/reports", as_json(REPORT, photos=5), "application/json", 422, "invalid_photos"),
    ("/v1/reports", as_json(REPORT, description="\ud800"), "application/json", 422, "invalid_description"),
    ("/v1/reports", as_json(REPORT, reported_at=123), "application/json", 422, "invalid_reported_at"),
    ("/v1/reports", as_json(REPORT, category="9999"), "application/json", 422, "unknown_category"),
    ("/v1/reports", b"x" * 100_001, "application/json", 413, "too_large"),
    ("/v1/reports", b"{}", "text/plain", 415, "unsupported_media_type"),
    ("/v1/reports", b"{}", "application/json; charset=latin-1", 415, "unsupported_media_type"),
    ("/v1/reports", b"--x--", "multipart/form-data", 400, "bad_multipart"),
    ("/v1/updates", as_json(UPDATE, at=5), "application/json", 422, "invalid_at"),
    ("/v1/tracks", b'{"worker_id": "GW1", "points": 5}', "application/json", 422, "invalid_points"),
    ("/v1/nowhere", b"{}", "application/json", 404, "not_found"),
    ("/healthz", b"{}", "application/json", 405, "method_not_allowed"),
]


@pytest.mark.parametrize(("path", "body", "content_type", "status", "code"), REFUSALS, ids=[r[-1] for r in REFUSALS])
def test_every_refusal_is_the_json_error_shape(
    gateway: tuple[str, int, Path], path: str, body: bytes, content_type: str, status: int, code: str
) -> None:
    host, port, _ = gateway
    answer = post((host, port), path, body, content_type)
    assert answer[0] == status and answer[1]["error"] == code, answer
    assert set(answer[1]) == {"error", "reason"} and answer[1]["reason"]


def test_a_refused_report_keeps_no_photo(gateway: tuple[str, int, Path]) -> None:
    """Photos used to be stored before the record was checked: a refused report left its pictures behind."""
    host, port, photo_dir = gateway
    photo = picture("JPEG", size=(40, 30))
    for record, status in [({**REPORT, "category": "9999"}, 422), ({**REPORT, "reported_at": 1}, 422)]:
        body, content_type = multipart("report", record, [photo])
        assert post((host, port), "/v1/reports", body, content_type)[0] == status
    good = picture("PNG", size=(8, 8))  # a good photo next to a bad one: neither is kept
    body, content_type = multipart("report", REPORT, [good, b"not a picture"])
    assert post((host, port), "/v1/reports", body, content_type)[:1] == (415,)
    assert not photo_dir.exists() or not any(photo_dir.rglob("*.*"))


def test_the_gateway_keeps_answering_health_while_refusing(gateway: tuple[str, int, Path]) -> None:
    """A 1.8 KB body nested 800 deep blocked the gateway, /healthz included, for a minute."""
    host, port, _ = gateway
    started = time.perf_counter()
    for _ in range(20):
        post((host, port), "/v1/reports", b'{"a": ' + b"[" * 800 + b"]" * 800 + b"}")
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200
    assert time.perf_counter() - started < 5


class BrokenRules(RoutingRules):
    """Routing rules with a bug: resolving a category fails with a huge message."""

    def resolve(self, category: str) -> None:
        raise RuntimeError("routing exploded: " + "x" * 100_000)


def test_a_bug_is_a_json_500_logged_once_in_one_short_line(tmp_path: Path) -> None:
    host, port, stop, thread = start_gateway(tmp_path, Limits(100_000, 1, 10), BrokenRules({}, {}))
    try:
        with capture_logs() as logs:
            status, answer = post((host, port), "/v1/reports", as_json(REPORT))
        assert (status, answer["error"]) == (500, "internal_error")
        assert "x" * 300 not in answer["reason"]
        [entry] = [entry for entry in logs if entry["log_level"] == "error"]
        assert len(repr(entry)) < 1000 and "RuntimeError: routing exploded" in entry["error"]
        assert "resolve" in entry["at"]
        assert post((host, port), "/v1/reports", b"{}")[0] == 422  # and it keeps serving
    finally:
        stop.set()
        thread.join(timeout=30)


# --- connections ---------------------------------------------------------------------------------------


def test_connection_cap_raises_the_soft_limit_and_leaves_descriptors_for_everything_else() -> None:
    assert connection_cap(3) == 3
    cap = connection_cap(10**9)  # more than any limit: the soft limit goes up to the hard one
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard or hard == resource.RLIM_INFINITY
    assert cap == (10**9 if soft == resource.RLIM_INFINITY else max(1, soft - RESERVED_FDS))


def idle_connection(host: str, port: int) -> http.client.HTTPConnection:
    """A keep-alive connection that asked one thing and then went quiet."""
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert response.status == 200
    response.read()
    return connection


def test_beyond_the_connection_cap_clients_get_503_with_retry_after(tmp_path: Path) -> None:
    """20,000 idle keep-alive connections used to take every file descriptor of the gateway."""
    host, port, stop, thread = start_gateway(tmp_path, Limits(100_000, 1, 10, connections=4, keepalive_s=60))
    try:
        idle = [idle_connection(host, port) for _ in range(4)]
        extra = http.client.HTTPConnection(host, port, timeout=10)
        extra.request("GET", "/healthz")
        response = extra.getresponse()
        assert response.status == 503
        assert response.getheader("Retry-After") == "5"
        assert json.loads(response.read())["error"] == "too_many_connections"
        extra.close()

        idle.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the server sees the close a moment later
            try:
                idle.append(idle_connection(host, port))
                break
            except AssertionError:
                assert time.monotonic() < deadline, "a freed slot was never reused"
                time.sleep(0.05)
        for connection in idle:
            connection.close()
    finally:
        stop.set()
        thread.join(timeout=30)


def test_a_silent_connection_beyond_the_cap_is_let_go(tmp_path: Path) -> None:
    host, port, stop, thread = start_gateway(tmp_path, Limits(100_000, 1, 10, connections=1, keepalive_s=60))
    try:
        idle = idle_connection(host, port)
        with socket.create_connection((host, port), timeout=10) as silent:
            answer = silent.recv(4096)  # sends nothing: answered and closed within the linger time
            assert answer.startswith(b"HTTP/1.1 503")
            assert silent.recv(4096) == b""
        idle.close()
    finally:
        stop.set()
        thread.join(timeout=30)


def test_idle_connections_are_closed_after_the_keepalive_timeout(tmp_path: Path) -> None:
    host, port, stop, thread = start_gateway(tmp_path, Limits(100_000, 1, 10, keepalive_s=0.5))
    try:
        with socket.create_connection((host, port), timeout=10) as silent:
            started = time.monotonic()
            assert silent.recv(4096) == b""  # closed by the gateway, not by the test's timeout
            assert time.monotonic() - started < 5
    finally:
        stop.set()
        thread.join(timeout=30)


def test_a_closing_gateway_answers_503_with_retry_after_and_sends_nothing(tmp_path: Path) -> None:
    host, port, stop, thread, gateway = serve_gateway(tmp_path, Limits(100_000, 1, 10))
    try:
        gateway.draining.set()  # the first thing a stop does
        connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.request(
            "POST", "/v1/reports", as_json(REPORT), {"Content-Type": "application/json", **bearer("/v1/reports")}
        )
        response = connection.getresponse()
        assert (response.status, response.getheader("Retry-After")) == (503, "5")
        assert json.loads(response.read())["error"] == "closing"
        connection.request("GET", "/healthz")
        health = connection.getresponse()
        assert (health.status, json.loads(health.read())["error"]) == (503, "closing")
        connection.close()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
