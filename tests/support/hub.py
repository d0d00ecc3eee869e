"""A running test hub and the doors a test uses: HTTP, SQL, the command line, Kafka topics; waiting.

Nothing here waits for a quiet period. A test waits for a state it can observe that implies
what it asserts: a row in the warehouse, a message on a topic, or, before it asserts that
something did NOT happen, for the hub to have finished with everything it was given
(:meth:`Hub.worker_done`, :meth:`Hub.sink_done`, :meth:`Hub.settled`).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from pydantic import SecretStr

from foundation.access import TokenBook
from foundation.settings import Settings
from gridhub.supervisor import Stack
from schemas.grid import Grid
from schemas.topics import APPLICATION_CHANGES, CASE_COMMANDS, RAW_BATCHES, RAW_TOPICS, dispatch_topic, sink_topics
from simulation.senders import TownTokens
from streams.routing import load_rules
from warehouse.reader import query

ROOT = Path(__file__).resolve().parents[2]

STREAMS_GROUP = "gridhub-streams"
"""The stream worker's consumer group: the id of the Faust app (``streams/app.py``)."""
CLOCKED_TOPICS = (CASE_COMMANDS, APPLICATION_CHANGES)
"""The stateful agents' own topics, which carry their clock's ticks between the records (``streams/clocked.py``)."""


def hub_settings(data_dir: Path, **extra: Any) -> Settings:
    """Settings for a test hub: free ports, short batch waits, fast polling, small bulk transactions.

    Small bulk transactions make a test's few thousand export rows span several, so a crash
    can land between two of them, as it does in a million-row load. The sink checkpoints the
    warehouse in every pause with anything in its log, so checkpoints run beside the writes,
    queries and restarts of every test, not only past a megabyte.
    """
    defaults: dict[str, Any] = {
        "data_dir": data_dir,
        "http_port": 0,
        "sink_query_port": 0,
        "screen_port": 0,
        "sink_batch_wait_ms": 100,
        "sink_bulk_rows": 1000,
        "sink_idle_checkpoint_kib": 1,
        "bulk_batch_rows": 500,
        "approvals_poll_seconds": 0.2,
        "overdue_check_seconds": 1,
        "approvals_overdue_check_seconds": 1,
        "watch_dir": data_dir / "inbox",
        "watch_settle_seconds": 0.5,
        "rate_limit": "100000/second",  # tests that flood a door on purpose run their own with a low limit
    }
    return Settings(**{**defaults, **extra})


@dataclass(frozen=True)
class Message:
    """One message of a topic, where it sits."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes

    def json(self) -> Any:
        return json.loads(self.value)


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, number) for number in sorted(consumer.partitions_for_topic(topic) or ())]


def _high_watermarks(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Where each partition ends now, as the broker's fetch answers say.

    Not ``end_offsets``: the embedded broker answers that (ListOffsets, "latest") with the first
    offset of the partition's last record batch plus one, short of the end whenever that batch
    holds several records. Its fetch answers carry the true high watermark.
    """
    if not partitions:
        return {}
    consumer.assign(partitions)
    for tp, offset in consumer.end_offsets(partitions).items():  # at most the end: fetch from there
        consumer.seek(tp, offset)
    deadline = time.monotonic() + 60
    while any(consumer.highwater(tp) is None for tp in partitions):
        if time.monotonic() > deadline:
            raise AssertionError(f"no fetch answer for {partitions} within 60s")
        consumer.poll(timeout_ms=200)
    return {tp: consumer.highwater(tp) for tp in partitions}


def topic_messages(bootstrap: str, topic: str, start: Mapping[int, int] | None = None) -> list[Message]:
    """Every message ``topic`` holds now, by partition in offset order (from the ``start`` offsets, if given).

    It reads up to the end offsets it finds first, so a pause in the traffic never passes
    for the end, and what is published later is not in the answer: before reading, wait for
    a state that implies the message is there (or, to count, for :meth:`Hub.worker_done`).
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = _partitions(consumer, topic)
        if not partitions:
            return []
        ends = _high_watermarks(consumer, partitions)
        firsts = consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(firsts[tp], (start or {}).get(tp.partition, 0)))
        found: list[Message] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} up to its end offsets {ends} within 60s")
            for tp, records in consumer.poll(timeout_ms=500).items():
                found.extend(
                    Message(tp.partition, record.offset, record.key, record.value or b"")
                    for record in records
                    if record.offset < ends[tp]
                )
        return sorted(found, key=lambda message: (message.partition, message.offset))
    finally:
        consumer.close()


def post_json(
    url: str,
    body: bytes | dict[str, Any],
    content_type: str = "application/json",
    timeout_s: float = 30,
    token: str | None = None,
) -> tuple[int, dict]:
    """POST a record as a phone does (with its token, if given); the status and the JSON answer, errors included."""
    data = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def sender_token(tokens: TownTokens, path: str, record: Any, book: TokenBook | None = None) -> str:
    """The token of whoever sends ``record`` to ``path``: a report's reporter, a track's worker, an update's actor.

    An update's actor that is no worker or desk acts as the command centre, as the town's tokens say.
    A worker the town does not have (``GW-...`` made up by a test) gets a phone of its own from ``book``.
    """
    if not isinstance(record, dict):
        return tokens.any_phone
    sender = str(record.get({"/v1/reports": "reporter_id", "/v1/tracks": "worker_id"}.get(path, "actor"), ""))
    if book is not None and sender.upper().startswith("GW") and sender not in tokens.phones:
        tokens.phones[sender] = book.add(f"phone-{sender}", "device", worker=sender)
    if path == "/v1/reports" and not sender:
        return tokens.any_phone
    return tokens.of_actor(sender)


def _record_of(body: bytes | dict[str, Any]) -> Any:
    if isinstance(body, dict):
        return body
    try:
        return json.loads(body)
    except ValueError:
        return None


@dataclass
class Hub:
    """A running hub and the doors a test uses, with a token for every simulated sender."""

    settings: Settings
    stack: Stack
    tokens: TownTokens = field(init=False)
    admin: str = field(init=False)
    """An admin's token: tokens, audit, and publishing as any source."""
    book: TokenBook = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = TownTokens.make(
            self.settings, Grid.load(self.settings.grid_path), load_rules(self.settings.routing_rules)
        )
        self.book = TokenBook(self.settings.tokens_file)
        self.admin = self.book.add(unique("test-admin"), "admin")

    def as_caller(self, token: str) -> Settings:
        """The test hub's settings, calling as the owner of ``token`` (for ``query`` and the like)."""
        return self.settings.model_copy(update={"token": SecretStr(token)})

    def post(
        self,
        path: str,
        body: bytes | dict[str, Any],
        content_type: str = "application/json",
        token: str | None = None,
    ) -> tuple[int, dict]:
        """POST as the record's own sender (see :func:`sender_token`), or as the caller of ``token``."""
        sender = token or sender_token(self.tokens, path, _record_of(body), self.book)
        return post_as_a_phone(f"{self.stack.url('patrol')}{path}", body, content_type, token=sender)

    def post_form(
        self, path: str, json_part: str, record: dict[str, Any], photos: Sequence[bytes] = (), token: str | None = None
    ) -> tuple[int, dict]:
        """Post a record with photos as the phones do: a multipart form (see :func:`multipart`)."""
        body, content_type = multipart(json_part, record, photos)
        return self.post(
            path, body, content_type=content_type, token=token or sender_token(self.tokens, path, record, self.book)
        )

    def sql(self, statement: str) -> list[list[Any]]:
        dead = [name for name, process in self.stack.processes.items() if process.poll() is not None]
        if dead:
            log = self.stack.log_dir / f"{dead[0]}.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:])
            raise AssertionError(f"service {dead[0]} died; {log} ends with:\n{tail}")
        return query(self.stack.settings, statement)["rows"]

    def scalar(self, statement: str) -> Any:
        """The first column of the first row, or None when there is no row (yet)."""
        rows = self.sql(statement)
        return rows[0][0] if rows else None

    def outcomes(self, *, source: str | None = None, run_id: str | None = None) -> dict[str, int]:
        """Intake outcomes (new, update, duplicate, rejected) and their counts, of one source or one run."""
        conditions = [f"{column} = '{value}'" for column, value in (("source", source), ("run_id", run_id)) if value]
        where = " AND ".join(conditions) or "true"
        return dict(self.sql(f"SELECT outcome, count(*) FROM intake WHERE {where} GROUP BY 1"))

    def cli(
        self, *args: str, timeout: float = 300, token: str | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``gridhub ARGS`` as command-centre staff (or as the caller of ``token``), with ``env`` set too."""
        env = {
            **os.environ,
            "GRIDHUB_DATA_DIR": str(self.settings.data_dir),
            "GRIDHUB_TOKEN": token or self.tokens.commander,
            **(env or {}),
        }
        return subprocess.run(
            [sys.executable, "-m", "gridhub", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )

    def ingest(self, path: Path, source: str, entity: str, *options: str) -> subprocess.CompletedProcess[str]:
        """``gridhub ingest PATH --source SOURCE --entity ENTITY [OPTIONS]``, as a data clerk runs it."""
        return self.cli("ingest", str(path), "--source", source, "--entity", entity, *options, token=self.admin)

    # Kafka topics -----------------------------------------------------------------------------------

    def _consumer(self, group_id: str | None = None) -> KafkaConsumer:
        return KafkaConsumer(bootstrap_servers=self.stack.bootstrap, group_id=group_id, enable_auto_commit=False)

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition of ``topic``, the offset its next message will get: what it holds now ends there."""
        return {partition: end for (_, partition), end in self._ends([topic]).items()}

    def _ends(self, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        consumer = self._consumer()
        try:
            partitions = [tp for topic in topics for tp in _partitions(consumer, topic)]
            return {(tp.topic, tp.partition): end for tp, end in _high_watermarks(consumer, partitions).items()}
        finally:
            consumer.close()

    def messages(self, topic: str, start: Mapping[int, int] | None = None) -> list[Message]:
        """Every message ``topic`` holds now (see :func:`topic_messages`)."""
        return topic_messages(self.stack.bootstrap, topic, start)

    def read_topic(self, topic: str) -> list[Any]:
        """The JSON values of every message ``topic`` holds now (see :meth:`messages`)."""
        return [message.json() for message in self.messages(topic)]

    def work_orders(self, department: str, event_id: str | None = None) -> list[dict[str, Any]]:
        """The work orders on ``dispatch.<department>`` now, or those of one case (its opening report's id)."""
        return [
            order
            for order in self.read_topic(dispatch_topic(department))
            if event_id is None or order["work_order"]["event_id"] == event_id
        ]

    # Waiting for the hub to finish with what it was given ---------------------------------------------

    def _committed(self, topic: str) -> dict[int, int | None]:
        consumer = self._consumer(STREAMS_GROUP)  # only asks for the group's offsets; it never joins the group
        try:
            return {tp.partition: consumer.committed(tp) for tp in _partitions(consumer, topic)}
        finally:
            consumer.close()

    def _ticks_after(self, topic: str, ends: dict[int, int], ticks: int, timeout_s: float) -> dict[int, int]:
        def later_ticks() -> list[Message]:
            found = [message for message in self.messages(topic, start=ends) if message.json().get("type") == "tick"]
            return found[:ticks] if len(found) >= ticks else []

        last = wait_until(later_ticks, timeout_s, what=f"{ticks} more clock ticks on {topic}")[-1]
        return {**ends, last.partition: last.offset + 1}

    def worker_done(self, *topics: str, ticks: int = 0, timeout_s: float = 90) -> None:
        """Wait until the stream worker has processed all that ``topics`` hold now, and Kafka has all it sent for that.

        The worker commits a partition's offset only after its producer has flushed every
        message it sent while processing the messages before that offset (Faust flushes, then
        commits), so its committed offsets reaching the end offsets prove both. Topics are taken
        in the order given: name an agent's input before the topics that agent feeds. With
        ``ticks``, a clocked topic (cases, applications) must first hold that many more clock
        ticks, so what the clock does at a tick (an overdue alert) is done as well.
        """
        for topic in topics:
            ends = self.end_offsets(topic)
            if ticks and topic in CLOCKED_TOPICS:
                ends = self._ticks_after(topic, ends, ticks, timeout_s)
            self._wait_committed(topic, ends, timeout_s)

    def _wait_committed(self, topic: str, ends: dict[int, int], timeout_s: float) -> None:
        def reached() -> bool:
            committed = self._committed(topic)
            return all((committed.get(partition) or 0) >= end for partition, end in ends.items())

        wait_until(reached, timeout_s, what=f"the stream worker to process {topic} up to offsets {ends}")

    def sink_done(self, *topics: str, timeout_s: float = 90) -> None:
        """Wait until the warehouse holds all that ``topics`` hold now.

        The sink stores, in each transaction, the offset it got to in every partition
        (``sink_offsets``), so those reaching the topics' end offsets prove it.
        """
        ends = self._ends(topics)

        def reached() -> bool:
            stored = {
                (topic, partition): offset
                for topic, partition, offset in self.sql("SELECT topic, partition, next_offset FROM sink_offsets")
            }
            return all(stored.get(where, 0) >= end for where, end in ends.items())

        wait_until(reached, timeout_s, what=f"the sink to write {', '.join(topics)} up to their end offsets")

    def settled(self, ticks: int = 0) -> None:
        """Wait until everything the hub has been given so far has gone all the way through.

        Everything acknowledged by the gateway, the connectors or ``gridhub ingest`` before the
        call is processed by the worker, whatever it caused is on its topic (work orders, alerts)
        and in the warehouse. Call it before asserting that something did NOT happen, so the
        absence cannot merely mean "not yet". ``ticks``: see :meth:`worker_done`.
        """
        self.worker_done(*RAW_TOPICS, RAW_BATCHES)
        self.worker_done(*CLOCKED_TOPICS, ticks=ticks)
        self.sink_done(*sink_topics())


def post_as_a_phone(
    url: str, body: bytes | dict[str, Any], content_type: str = "application/json", token: str | None = None
) -> tuple[int, dict]:
    """POST as a phone's app does: an update the gateway cannot place yet (``case_not_seen_yet``: its copy
    of the cases has not caught up, e.g. right after a restart) is sent again in a moment, for up to a minute."""
    deadline = time.monotonic() + 60
    while True:
        status, answer = post_json(url, body, content_type, token=token)
        if answer.get("error") != "case_not_seen_yet" or time.monotonic() > deadline:
            return status, answer
        time.sleep(0.2)


def wait_until(check: Callable[[], Any], timeout_s: float = 90, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.2)


_spots = itertools.count()


def spot() -> dict[str, float]:
    """A report location no other test report has used (about 130 m apart, inside the town).

    Reports of one category close in space and time join one case, so tests that want their own
    case must not share a spot.
    """
    number = next(_spots)
    return {"lat": round(31.952 + (number % 63) * 0.0012, 6), "lon": round(119.822 + (number // 63) * 0.0012, 6)}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def report(
    report_id: str, *, category: str, description: str, reported_at: str, reporter_id: str, **extra: Any
) -> dict[str, Any]:
    """An incident report as a grid worker's phone posts it to ``/v1/reports``, at its own :func:`spot`.

    ``extra`` adds fields (``photos``, ``coord_system``) or overrides any, ``lat`` and ``lon`` included.
    """
    return {
        "report_id": report_id,
        "category": category,
        "description": description,
        **spot(),
        "reported_at": reported_at,
        "reporter_id": reporter_id,
        **extra,
    }


def multipart(json_part: str, record: dict[str, Any], photos: Sequence[bytes] = ()) -> tuple[bytes, str]:
    """A multipart form as the phones send it: the JSON record as ``json_part``, each photo as a ``photo`` part."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{json_part}"\r\n'
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        + json.dumps(record, ensure_ascii=False).encode()
        + b"\r\n"
    )
    for number, photo in enumerate(photos):
        kind = "image/png" if photo.startswith(b"\x89PNG") else "image/jpeg"  # as declared by a phone; never trusted
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p{number}.{kind[6:]}"\r\n'
                f"Content-Type: {kind}\r\n\r\n"
            ).encode()
            + photo
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
