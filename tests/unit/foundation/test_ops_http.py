"""The ops endpoint: probes answer without a token, /metrics parses, and a metrics token is asked for when set."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from foundation.metrics import OTHER, BoundedLabel
from foundation.ops_http import Health, OpsServer


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("things_done", "Things done.", ["source"], registry=registry).labels("civil-affairs").inc(3)
    return registry


@contextmanager
def serve(health: Health, registry: CollectorRegistry, token: str | None = None) -> Iterator[OpsServer]:
    server = OpsServer("127.0.0.1", 0, health, token, registry)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_readyz_turns_ready_when_the_service_says_so(registry: CollectorRegistry) -> None:
    health = Health()
    with serve(health, registry) as server:
        status, body = get(f"{server.url}/readyz")
        assert status == 503 and json.loads(body)["status"] == "starting"
        health.ready.set()
        assert get(f"{server.url}/readyz") == (200, b'{"status": "ready"}')


def test_healthz_names_the_failing_check(registry: CollectorRegistry) -> None:
    def kafka() -> None:
        raise ConnectionError("Kafka at 127.0.0.1:1 does not answer")

    with serve(Health({"warehouse": lambda: None, "kafka": kafka}), registry) as server:
        status, body = get(f"{server.url}/healthz")
        assert status == 503
        assert json.loads(body) == {"status": "unhealthy", "reason": "kafka: Kafka at 127.0.0.1:1 does not answer"}
    with serve(Health({"warehouse": lambda: None}), registry) as server:
        assert get(f"{server.url}/healthz") == (200, b'{"status": "ok"}')


def test_metrics_are_prometheus_text(registry: CollectorRegistry) -> None:
    with serve(Health(), registry) as server:
        status, body = get(f"{server.url}/metrics")
        assert status == 200
        families = {family.name: family for family in text_string_to_metric_families(body.decode())}
        sample = next(s for s in families["things_done"].samples if s.name == "things_done_total")
        assert sample.labels == {"source": "civil-affairs"} and sample.value == 3


def test_a_metrics_token_guards_metrics_but_not_the_probes(registry: CollectorRegistry) -> None:
    health = Health()
    health.ready.set()
    with serve(health, registry, token="s3cret") as server:
        assert get(f"{server.url}/metrics")[0] == 401
        assert get(f"{server.url}/metrics", token="wrong")[0] == 401
        assert get(f"{server.url}/metrics", token="s3cret")[0] == 200
        assert get(f"{server.url}/healthz")[0] == 200
        assert get(f"{server.url}/readyz")[0] == 200


def test_an_unknown_path_is_404(registry: CollectorRegistry) -> None:
    with serve(Health(), registry) as server:
        assert get(f"{server.url}/metrics/../../etc/passwd")[0] == 404


def test_a_check_is_asked_once_within_the_cache_window() -> None:
    calls = []
    health = Health({"kafka": lambda: calls.append(1)})
    assert health.problem() is None and health.problem() is None
    assert len(calls) == 1


def test_label_values_stay_bounded() -> None:
    label = BoundedLabel(limit=2)
    assert label("civil-affairs") == "civil-affairs"
    assert label("police") == "police"
    assert label("market") == OTHER, "past the limit"
    assert label("civil-affairs") == "civil-affairs", "a value seen before keeps its name"
    assert label(None) == OTHER and label("") == OTHER
    assert label("a b{c}") == OTHER and label("x" * 65) == OTHER
