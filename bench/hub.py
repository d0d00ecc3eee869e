"""A throwaway hub for the benchmark: the real ``Stack`` in a temporary data dir, on free ports.

Every scenario measures the hub as ``gridhub up`` runs it (embedded broker, one process per
service), so it uses :class:`gridhub.supervisor.Stack` itself and feeds it only through its
public doors: the ``gridhub ingest`` command, the patrol gateway, Kafka topics and the
sink's SQL endpoint. The user's ``GRIDHUB_*`` tunables (batch sizes, partitions, ...) carry
over, so the benchmark can measure a configuration; everything that names a place or a
port is replaced, so a benchmark never touches the user's own hub.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from foundation import runfiles
from foundation.access import caller_token
from foundation.errors import GridhubError
from foundation.kafka_security import aiokafka_options, kafka_python_options
from foundation.partition_ends import held_records
from foundation.settings import Settings
from gridhub.broker import admin_client
from gridhub.supervisor import Stack, settings_env
from schemas.topics import dispatch_topic
from streams.routing import load_rules
from warehouse.reader import intake, query

FAUST_GROUP = "gridhub-streams"
"""The worker's consumer group: the Faust app id of :func:`streams.app.build_app`."""
_RUN_ID = re.compile(r"as run ([0-9a-f]+)")
PROGRESS_EVERY_S = 3.0


class BenchError(GridhubError):
    """The run is invalid: a service died, a feed failed, or the warehouse holds the wrong counts.

    A verdict of the benchmark on the hub, not a failure to retry or a setting to fix.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(f"benchmark invalid: {problem}")


@dataclass(frozen=True)
class IngestRun:
    """One ``gridhub ingest --wait``: its run id, how long it took, what the warehouse made of it."""

    run_id: str
    seconds: float
    outcomes: dict[str, int]
    stages: dict[str, float]


def bench_settings(base: Settings, folder: Path) -> Settings:
    """The user's settings, moved into ``folder`` with free ports and the embedded broker."""
    return base.model_copy(
        update={
            "kafka_bootstrap": None,
            "kafka_security_protocol": "PLAINTEXT",  # the embedded broker has no SASL
            "data_dir": folder,
            "warehouse_path": None,
            "photo_dir": None,
            "approvals_db_url": None,
            "grid_file": None,
            "watch_dir": None,
            "rest_sources": None,
            "http_port": 0,
            "sink_query_port": 0,
            "screen_port": 0,
            "sink_url": None,
            "patrol_url": None,
            "supervisor_pid": None,
        }
    )


class BenchHub:
    """A running hub and the doors the scenarios use."""

    def __init__(self, settings: Settings, stack: Stack) -> None:
        self.settings = settings
        self.stack = stack
        self.extra_workers: list[subprocess.Popen[bytes]] = []

    @classmethod
    @contextmanager
    def running(cls, base: Settings, root: Path) -> Iterator[BenchHub]:
        """Start a hub in a new folder under ``root``; remove the folder if all went well.

        After a failure the folder stays, so its service logs can be read.
        """
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="hub-", dir=root))
        finished = False
        try:
            with Stack(bench_settings(base, folder)) as stack:
                hub = cls(stack.settings, stack)
                try:
                    yield hub
                finally:
                    hub.stop_extra_workers()
            finished = True
        except BaseException as exc:
            exc.add_note(f"the benchmark hub's logs are kept in {folder / 'logs'}")
            raise
        finally:
            if finished:
                shutil.rmtree(folder, ignore_errors=True)

    @property
    def bootstrap(self) -> str:
        """The embedded broker's address."""
        return self.stack.bootstrap

    def processes(self) -> dict[str, int]:
        """Pid of every process of the hub (and of the benchmark itself), by name."""
        pids = {name: process.pid for name, process in self.stack.processes.items() if process.poll() is None}
        broker = self.stack.broker.pid if self.stack.broker else None
        if broker is not None:
            pids["broker"] = broker
        for number, process in enumerate(self.extra_workers, start=2):
            pids[f"worker-{number}"] = process.pid
        pids["bench"] = os.getpid()
        return pids

    def door_headers(self) -> dict[str, str]:
        """The ``Authorization`` header the benchmark calls the hub's doors with: the hub's own service token.

        A phone's token is held to ``GRIDHUB_RATE_LIMIT`` (20 calls a second by default), which one
        client offering hundreds of reports a second stands for many phones; the service token is the
        one caller the doors do not rate-limit, and it is the token the SQL endpoint is asked with too.
        """
        return {"Authorization": f"Bearer {caller_token(self.settings)}"}

    def check_alive(self) -> None:
        """Fail with the end of its log if a service of the hub has died."""
        named = [*self.stack.processes.items()]
        named += [(f"worker-{n}", process) for n, process in enumerate(self.extra_workers, start=2)]
        for name, process in named:
            if process.poll() is not None:
                log = self.stack.log_dir / f"{name}.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:]) if log.exists() else ""
                raise BenchError(f"service {name} died (exit {process.returncode}); {log} ends with:\n{tail}")

    def sql(self, statement: str) -> list[list[Any]]:
        """Rows of a read-only query, answered by the running sink."""
        self.check_alive()
        return list(query(self.settings, statement)["rows"])

    def scalar(self, statement: str) -> Any:
        """The first column of the first row, or None."""
        rows = self.sql(statement)
        return rows[0][0] if rows else None

    def outcomes(self, run_id: str) -> dict[str, int]:
        """Intake outcomes of one run, e.g. {'new': 940, 'duplicate': 50, 'rejected': 10}."""
        return {str(outcome): int(count) for outcome, count in intake(self.settings, run_id)["rows"]}

    def stages(self, run_id: str) -> dict[str, float]:
        """Seconds from a run's first record received until the last was received, processed and written.

        The intake ledger stamps each record at the connector, the worker and the sink, so one
        query says which stage finished last, i.e. which one the others waited for.
        """
        row = self.sql(
            "SELECT epoch(max(received_at)) - epoch(min(received_at)), "
            "epoch(max(processed_at)) - epoch(min(received_at)), "
            "epoch(max(written_at)) - epoch(min(received_at)) "
            f"FROM intake WHERE run_id = '{run_id}'"
        )[0]
        return {
            name: round(float(value or 0.0), 2)
            for name, value in zip(("published", "processed", "written"), row, strict=True)
        }

    def ingest(
        self,
        path: Path,
        source: str,
        entity: str = "person",
        on_start: Callable[[int], None] | None = None,
        progress: Callable[[int], None] | None = None,
        timeout_s: float = 3600,
    ) -> IngestRun:
        """Run ``gridhub ingest PATH --source S --entity E --wait`` and time it, start to warehouse.

        ``on_start`` gets the client's pid (to sample its memory); ``progress`` the number of
        records the intake ledger has gained so far, every few seconds (each asks the sink, which
        is busy enough).
        """
        before = int(self.scalar("SELECT count(*) FROM intake") or 0)
        command = [sys.executable, "-m", "gridhub", "ingest", str(path), "--source", source, "--entity", entity]
        command += ["--wait", "--timeout", str(timeout_s)]
        output = self.stack.log_dir / f"ingest-{time.time_ns()}.out"
        started = time.perf_counter()
        with output.open("wb") as sink:
            client = subprocess.Popen(
                command, env=settings_env(self.settings, self.bootstrap), stdout=sink, stderr=subprocess.STDOUT
            )
            if on_start:
                on_start(client.pid)
            asked = started
            while client.poll() is None:
                time.sleep(0.05)
                if progress and time.perf_counter() - asked >= PROGRESS_EVERY_S and client.poll() is None:
                    progress(int(self.scalar("SELECT count(*) FROM intake") or 0) - before)
                    asked = time.perf_counter()
        seconds = time.perf_counter() - started
        text = output.read_text(errors="replace")
        found = _RUN_ID.search(text)
        if client.returncode != 0 or found is None:
            tail = "\n".join(text.splitlines()[-6:])
            raise BenchError(f"gridhub ingest {path.name} failed (exit {client.returncode}):\n{tail}")
        run_id = found.group(1)
        return IngestRun(run_id, seconds, self.outcomes(run_id), self.stages(run_id))

    def add_worker(self, timeout_s: float = 120) -> None:
        """Start one more worker process in the same consumer group, as a second container would.

        It gets exactly the environment the supervisor gives its own worker, and the call
        returns once the group has settled with every worker holding partitions.
        """
        number = len(self.extra_workers) + 2
        with (self.stack.log_dir / f"worker-{number}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gridhub", "service", "worker"],
                env=settings_env(self.settings, self.bootstrap),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.extra_workers.append(process)
        deadline = time.monotonic() + timeout_s
        while (runfiles.discover(self.settings, "worker") or {}).get("pid") != process.pid:
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"worker-{number} did not start within {timeout_s:.0f}s")
            time.sleep(0.2)
        self.wait_for_group(1 + len(self.extra_workers), timeout_s)

    def wait_for_group(self, members: int, timeout_s: float = 120) -> None:
        """Block until the worker group is stable with ``members`` members."""
        deadline = time.monotonic() + timeout_s
        seen = "not described yet"
        while time.monotonic() < deadline:
            self.check_alive()
            state, joined = asyncio.run(_describe_group(self.bootstrap, FAUST_GROUP, aiokafka_options(self.settings)))
            seen = f"{state} with {joined} member(s)"
            if state == "Stable" and joined == members:
                return
            time.sleep(0.5)
        raise BenchError(f"the worker group did not settle with {members} members within {timeout_s:.0f}s ({seen})")

    def stop_extra_workers(self) -> None:
        """Stop the workers this benchmark added, before the supervisor stops the rest in drain order."""
        for process in self.extra_workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def desk_topics(settings: Settings) -> list[str]:
    """Every desk's dispatch topic, as the hub's routing rules name them."""
    return [dispatch_topic(unit) for unit in load_rules(settings.routing_rules).desk_units()]


@asynccontextmanager
async def consumer_at_ends(hub: BenchHub, topics: list[str]) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of ``topics`` placed at their ends, waiting for a record as long as the hub's own consumers do.

    Placed before the benchmark sends anything, it sees every record the sending causes and none
    of the earlier loads' records.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=hub.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=hub.settings.fetch_wait_ms,
        **aiokafka_options(hub.settings),
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, number) for topic in topics for number in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        yield consumer
    finally:
        await consumer.stop()


def records_held(hub: BenchHub, topic: str) -> int:
    """How many records the broker holds on ``topic``, over all its partitions.

    The embedded broker keeps every record and lists all the batches a partition holds on each
    fetch that finds a new one (about 0.7 µs of its CPU per batch held, one session), so the
    incident lane's latency there depends on how many reports came before: a load's figures
    mean little without this number beside them.
    """
    return asyncio.run(_records_held(hub, topic))


async def _records_held(hub: BenchHub, topic: str) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=hub.bootstrap, group_id=None, enable_auto_commit=False, **aiokafka_options(hub.settings)
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, number) for number in sorted(consumer.partitions_for_topic(topic) or ())]
        return await held_records(consumer, partitions)
    finally:
        await consumer.stop()


def ensure_topic(settings: Settings, bootstrap: str, topic: str, partitions: int) -> None:
    """Create a topic of the benchmark's own (one the hub does not declare) unless the broker has it."""
    from kafka.admin import NewTopic

    admin = admin_client(bootstrap, kafka_python_options(settings))
    try:
        if topic not in set(admin.list_topics()):
            admin.create_topics([NewTopic(topic, partitions, settings.topic_replication)])
    finally:
        admin.close()


async def _describe_group(bootstrap: str, group: str, options: dict[str, Any]) -> tuple[str, int]:
    """State of a consumer group and how many members it has.

    aiokafka's admin client, because kafka-python's fails to decode the embedded broker's
    answer (an authorised-operations value it does not know).
    """
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gridhub-bench", **options)
    await admin.start()
    try:
        for response in await admin.describe_consumer_groups([group]):
            for described in response.groups:
                # (error_code, group_id, state, protocol_type, protocol, members)
                return str(described[2]), len(described[5])
    finally:
        await admin.close()
    return "unknown", 0
