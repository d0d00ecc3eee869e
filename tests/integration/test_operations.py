"""Operators watching the hub: every service's ops endpoint, and `gridhub status` while a stage falls behind.

The shared hub is only read (its services' /metrics and /readyz, after one report went through).
What breaks a hub, a sink holding its batch back and a broker that goes away, runs on a private
stack of its own, so no other test sees it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from foundation import runfiles
from foundation.access import TokenBook
from foundation.settings import Settings
from gridhub.supervisor import Stack
from tests.support.hub import ROOT, Hub, hub_settings, post_json, report, unique, wait_until

pytestmark = pytest.mark.integration

EVERY_SERVICE = {"gridhub_records_in", "gridhub_records_out", "gridhub_records_rejected", "gridhub_consumer_lag"}
"""Families every service lists (before its first record too)."""
EXPECTED = {
    "sink": {"gridhub_sink_batch_seconds", "gridhub_sink_batch_rows"},
    "worker": {"gridhub_streams_messages_received", "gridhub_streams_topic_partition_offset_commited"},
    "patrol": {"gridhub_http_request_seconds"},
}
"""Families a service fills itself: the sink's batches, the worker's Faust sensor, the gateway's requests."""


def ops(settings: Settings, name: str, path: str) -> tuple[int, str]:
    """GET ``path`` on a service's announced ops endpoint, without a token."""
    info = runfiles.discover(settings, name)
    assert info and info.get("ops_url"), f"{name} announced no ops endpoint: {info}"
    try:
        with urllib.request.urlopen(f"{info['ops_url']}{path}", timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[str, list[Any]]:
    """Every metric family in a /metrics answer, with its samples."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def a_report(reporter: str) -> dict[str, Any]:
    return report(
        unique("R-OPS"),
        category="0401",
        description="路面塌陷",
        reported_at="2026-11-25T10:00:00+08:00",
        reporter_id=reporter,
    )


def test_every_service_is_ready_and_its_metrics_parse(hub: Hub) -> None:
    status, answer = hub.post("/v1/reports", a_report("GW002"))
    assert status == 202, answer
    hub.settled()
    for name in hub.stack.services:
        assert ops(hub.settings, name, "/readyz") == (200, '{"status": "ready"}'), name
        assert ops(hub.settings, name, "/healthz") == (200, '{"status": "ok"}'), name
        status, text = ops(hub.settings, name, "/metrics")
        assert status == 200, name
        families = samples(text)
        missing = (EVERY_SERVICE | EXPECTED.get(name, set())) - set(families)
        assert not missing, f"{name}'s /metrics lacks {sorted(missing)}"
    patrol = samples(ops(hub.settings, "patrol", "/metrics")[1])
    assert any(
        sample.labels.get("route") == "/v1/reports" and sample.labels["status"] == "202" and sample.value >= 1
        for sample in patrol["gridhub_http_request_seconds"]
        if sample.name.endswith("_count")
    )
    assert any(
        sample.labels == {"stage": "intake", "source": "patrol"} and sample.value >= 1
        for sample in patrol["gridhub_records_out"]
    )
    sink = samples(ops(hub.settings, "sink", "/metrics")[1])
    assert next(s for s in sink["gridhub_sink_batch_seconds"] if s.name.endswith("_count")).value >= 1
    assert any(s.labels["source"] == "patrol" and s.value >= 1 for s in sink["gridhub_records_in"])


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[tuple[Stack, dict[str, str]]]:
    """A private hub whose sink holds every record in its batch (a 10-minute linger): a sink that keeps no pace.

    Yields the stack and the environment of an admin's ``gridhub`` commands on it.
    """
    settings = hub_settings(
        tmp_path / "hub", sink_batch_wait_ms=600_000, sink_batch_linger_ms=600_000, sink_batch_records=100_000
    )
    admin = TokenBook(settings.tokens_file).add("ops-admin", "admin")
    env = {**os.environ, "GRIDHUB_DATA_DIR": str(settings.data_dir), "GRIDHUB_TOKEN": admin}
    with Stack(settings, services=("sink", "worker", "patrol")) as stack:
        try:
            yield stack, env
        finally:
            # Its batch wait would hold the stop for minutes: end the sink at once (nothing here is kept).
            os.kill(stack.processes["sink"].pid, signal.SIGKILL)
            stack.processes["sink"].wait()


def status_json(env: dict[str, str]) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-m", "gridhub", "status", "-o", "json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def sink_lag(env: dict[str, str]) -> int:
    status = status_json(env)
    assert not status["problems"], status["problems"]
    states = {service["name"]: service["state"] for service in status["services"]}
    assert states["sink"] == "up", states
    warehouse = [stage for stage in status["consumers"] if stage["consumer"] == "sink"]
    assert len(warehouse) == 1, status["consumers"]
    return int(warehouse[0]["lag"])


def test_a_stalled_sink_shows_its_lag_growing_and_healthz_fails_without_the_broker(
    stalled: tuple[Stack, dict[str, str]],
) -> None:
    stack, env = stalled
    settings = stack.settings
    phone = TokenBook(settings.tokens_file).add("phone-ops", "device", worker="GW002")
    patrol = runfiles.discover(settings, "patrol")["url"]
    assert post_json(f"{patrol}/v1/reports", a_report("GW002"), token=phone)[0] == 202
    first = wait_until(lambda: sink_lag(env), what="the sink's lag after the first report")
    assert post_json(f"{patrol}/v1/reports", a_report("GW002"), token=phone)[0] == 202
    wait_until(lambda: sink_lag(env) > first, what="the sink's lag to grow with the second report")
    oldest = next(stage for stage in status_json(env)["consumers"] if stage["consumer"] == "sink")["oldest_age_s"]
    assert oldest is not None and oldest >= 0

    assert stack.broker is not None
    stack.broker.stop()
    for name in ("patrol", "worker"):
        failing = wait_until(
            lambda name=name: (answer := ops(settings, name, "/healthz"))[0] == 503 and answer,
            what=f"{name}'s /healthz to fail without the broker",
        )
        assert json.loads(failing[1])["reason"].startswith("kafka:"), failing
