"""`gridhub status`: whether the hub keeps up, as its supervisor, Kafka and the warehouse know it.

Services come from the supervisor's run file (pid, restarts, last error: see
:class:`gridhub.supervisor.ServiceRecord`) and each service's own announcement (up, its ops
endpoint); without a supervisor (docker-compose) from the announcements alone. Lag comes from
:mod:`gridhub.lag`: the consumer groups' positions in Kafka, the sink's in the warehouse (asked
through its SQL endpoint with the caller's token, or from the file when no sink runs). What
cannot be read is said, and the rest is still shown.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, get_args

from foundation import runfiles
from foundation.errors import GridhubError
from foundation.kafka_security import kafka_python_options
from foundation.settings import Settings
from gridhub.lag import StageLag, group_positions, measure, sink_positions, summarise
from gridhub.services import ServiceName
from gridhub.supervisor import SUPERVISOR
from schemas.topics import sink_topics


@dataclass(frozen=True)
class ServiceState:
    """One process of the hub as `gridhub status` shows it."""

    name: str
    state: str
    """``up`` (announced ready), ``starting`` (running, not announced yet) or ``down``."""
    pid: int | None = None
    restarts: int | None = None
    """Restarts by the supervisor; None when no supervisor runs it."""
    last_error: str | None = None
    ops_url: str | None = None


@dataclass
class HubStatus:
    """Everything `gridhub status` reports."""

    data_dir: str
    supervisor_pid: int | None
    services: list[ServiceState]
    consumers: list[StageLag] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What could not be read (Kafka, the sink's positions), in one line each."""


def service_states(settings: Settings) -> tuple[int | None, list[ServiceState]]:
    """The supervisor's pid (None without one) and the state of every process it runs, or that has announced itself."""
    supervisor = runfiles.discover(settings, SUPERVISOR)
    records: dict[str, dict[str, Any]] = dict(supervisor["services"]) if supervisor else {}
    names = list(records) or list(get_args(ServiceName))
    states = []
    for name in names:
        record = records.get(name, {})
        announced = runfiles.discover(settings, name)
        pid = record.get("pid") or (announced or {}).get("pid")
        alive = pid is not None and runfiles.pid_alive(int(pid))
        if name == "broker":
            state = "up" if alive else "down"
        elif announced and (not record or announced["pid"] == pid):
            state = "up"
        else:
            state = "starting" if alive and record else "down"
        if not record and state == "down":
            continue
        states.append(
            ServiceState(
                name,
                state,
                int(pid) if pid is not None else None,
                record.get("restarts") if supervisor else None,
                record.get("last_error"),
                (announced or {}).get("ops_url"),
            )
        )
    return (int(supervisor["pid"]) if supervisor else None), states


def _bootstrap(settings: Settings) -> str | None:
    broker = runfiles.discover(settings, "broker")
    return str(broker["bootstrap"]) if broker else settings.kafka_bootstrap


def consumer_lags(settings: Settings, problems: list[str]) -> list[StageLag]:
    """Lag and oldest waiting record of every consumer group and of the sink; what fails goes to ``problems``."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    from gridhub.broker import admin_client, all_topics
    from warehouse.reader import sink_positions as stored_positions

    bootstrap = _bootstrap(settings)
    if not bootstrap:
        problems.append("Kafka: no broker is announced and GRIDHUB_KAFKA_BOOTSTRAP is unset")
        return []
    options = kafka_python_options(settings)
    try:
        admin = admin_client(bootstrap, options)
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=65536,
            **options,
        )
    except (GridhubError, KafkaError) as exc:
        problems.append(f"Kafka: {exc}")
        return []
    try:
        partitions = {topic: len(consumer.partitions_for_topic(topic) or ()) for topic in all_topics(settings)}
        positions = group_positions(admin, partitions)
        try:
            rows = stored_positions(settings)["rows"]
            positions.update(sink_positions(rows, partitions, sink_topics()))
        except GridhubError as exc:
            problems.append(f"sink positions: {exc}")
        return summarise(measure(consumer, positions), int(time.time() * 1000))
    except KafkaError as exc:
        problems.append(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}")
        return []
    finally:
        consumer.close()
        admin.close()


def hub_status(settings: Settings) -> HubStatus | None:
    """The hub's status, or None when nothing of it runs on this data dir."""
    supervisor_pid, services = service_states(settings)
    if supervisor_pid is None and not any(service.state != "down" for service in services):
        return None
    status = HubStatus(str(settings.data_dir.resolve()), supervisor_pid, services)
    status.consumers = consumer_lags(settings, status.problems)
    return status


def age(seconds: float | None) -> str:
    """A wait as an operator reads it: ``45s``, ``12m 05s``, ``3h 20m``, ``2d 04h``; ``-`` for none."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def service_table(status: HubStatus) -> dict[str, Any]:
    """The services as table columns and rows."""
    return {
        "columns": ["service", "state", "pid", "restarts", "last error", "ops endpoint"],
        "rows": [
            [
                service.name,
                service.state,
                service.pid,
                "-" if service.restarts is None else service.restarts,
                service.last_error or "",
                service.ops_url or "",
            ]
            for service in status.services
        ],
    }


def consumer_table(status: HubStatus) -> dict[str, Any]:
    """The consumers' stages as table columns and rows."""
    return {
        "columns": ["consumer", "stage", "lag", "partitions behind", "oldest waiting"],
        "rows": [
            [
                stage.consumer,
                stage.stage,
                "?" if stage.lag is None else stage.lag,
                stage.partitions_behind,
                age(stage.oldest_age_s),
            ]
            for stage in status.consumers
        ],
    }


def as_json(status: HubStatus) -> dict[str, Any]:
    """The status as one JSON document (``gridhub status -o json``)."""
    return asdict(status)
