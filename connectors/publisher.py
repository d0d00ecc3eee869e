"""The one way records leave a connector: provenance, the idempotent producer, and Kafka's errors by type.

A connector's promise is *at least once*: a record it has accepted (answered a phone with
202, moved a cursor past, filed a file as done) is acknowledged by all in-sync replicas
first, and written to the door's journal (:mod:`foundation.journal`) and fsynced, so that it
is sent again if the broker loses it before the warehouse has it (the embedded broker keeps
its topics in memory). Resends that this may cause are absorbed downstream by the stream's
dedup table and the warehouse's copies. Whatever Kafka answers is turned into the error taxonomy here
(:func:`kafka_failure`), so no connector has to know kafka-python's error classes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.errors import (
    AuthorizationError,
    BrokerNotAvailableError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RetriableError,
    SaslAuthenticationFailedError,
)
from kafka.producer.future import FutureRecordMetadata

from foundation.errors import BrokerUnavailable, ConfigurationError, GridhubError, InputRejected
from foundation.journal import Entry, Journal
from foundation.kafka_security import kafka_python_options
from foundation.logs import get_logger
from foundation.metrics import count_records
from foundation.settings import Settings
from schemas.batches import MAX_MESSAGE_BYTES
from schemas.decisions import MatchDecision
from schemas.messages import reject_message
from schemas.records import EntityKind, RawEnvelope
from schemas.rejects import Reject
from schemas.runs import RunNotice
from schemas.topics import MATCH_DECISIONS, REJECTS, RUNS

log = get_logger(__name__)


def kafka_failure(error: BaseException, what: str) -> GridhubError:
    """The taxonomy's name for a kafka-python failure of ``what`` (a sentence fragment: "sending 3 batches").

    Unreachable or slow brokers and moved leaders may heal (retry); a record the broker finds
    too large never will (reject); a refused login or ACL is the operator's to fix (stop).
    """
    detail = f"{type(error).__name__}: {error}"
    if isinstance(error, RetriableError | BrokerNotAvailableError):
        return BrokerUnavailable(
            f"{what}: Kafka did not answer in time ({detail}); nothing unacknowledged counts as sent: check that "
            "the broker runs (gridhub up), then try again (the hub's services retry by themselves)"
        )
    if isinstance(error, MessageSizeTooLargeError | RecordListTooLargeError):
        return InputRejected(f"{what}: Kafka refuses a message this large ({detail})", "too_large")
    if isinstance(error, AuthorizationError | SaslAuthenticationFailedError):
        return ConfigurationError(f"{what}: Kafka refused this client ({detail}); check its credentials and ACLs")
    return ConfigurationError(f"{what}: Kafka refused it ({detail}); check the broker's logs and settings")


def content_hash(payload: dict[str, Any]) -> str:
    """sha256 of the payload's canonical JSON: the provenance fingerprint of what was received."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def make_envelope(
    source: str, source_record_id: str, entity: EntityKind, payload: dict[str, Any], run_id: str | None = None
) -> RawEnvelope:
    """Wrap a received payload with its provenance."""
    return RawEnvelope(
        record_uid=uuid.uuid4().hex,
        source=source,
        source_record_id=source_record_id,
        entity=entity,
        received_at=datetime.now(UTC),
        content_hash=content_hash(payload),
        run_id=run_id,
        payload=payload,
    )


def partition_key(envelope: RawEnvelope) -> bytes:
    """Kafka key of a raw record: every version of a source record lands in one partition.

    Reports and the updates of a report share the report's id, so a report is always
    processed before the updates sent after it.
    """
    if envelope.entity in ("event", "event_update"):
        return f"{envelope.source}|{envelope.payload.get('event_id')}".encode()
    return f"{envelope.source}|{envelope.source_record_id}".encode()


@dataclass
class RunTally:
    """What a run sent, counted by its door as it goes; told to the run ledger when the run ends."""

    run_id: str
    published: int | None = None
    """Records published (None: not counted yet)."""
    refused: int | None = None
    """Records the door refused itself and sent as rejects."""


class RawPublisher:
    """An idempotent, acks=all producer of raw envelopes, raw batches, connector-side rejects and decisions."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        batch_rows: int = 5000,
        timeout_s: float = 30.0,
        journal: Journal | None = None,
        client_options: Mapping[str, Any] | None = None,
        linger_ms: int = 0,
    ) -> None:
        self.journal = journal
        """Where every record sent is kept until the warehouse has it; None only for tools and benchmarks."""
        self.batch_rows = batch_rows
        """Rows per message on the bulk lane (``GRIDHUB_BULK_BATCH_ROWS``)."""
        self.timeout_s = timeout_s
        """How long to wait for Kafka's acknowledgement before calling the broker unavailable."""
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=linger_ms,  # 0: a report leaves at once; under load records batch while a request flies
                max_in_flight_requests_per_connection=5,
                max_request_size=MAX_MESSAGE_BYTES,
                max_block_ms=int(timeout_s * 1000),
                **(client_options or {}),  # SASL login (foundation.kafka_security)
            )
        except KafkaError as exc:
            raise kafka_failure(exc, f"connecting to Kafka at {bootstrap} (is gridhub up running?)") from exc

    @classmethod
    def for_door(cls, settings: Settings, bootstrap: str, door: str) -> RawPublisher:
        """The publisher of one door of the hub in ``settings.data_dir``, with its journal if ``GRIDHUB_JOURNAL``."""
        journal = Journal.of_door(settings.journal_dir, door) if settings.journal else None
        return cls(
            bootstrap,
            f"gridhub-{door}",
            settings.bulk_batch_rows,
            settings.publish_timeout_s,
            journal,
            kafka_python_options(settings),
            settings.producer_linger_ms,
        )

    def _send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int | None = None,
        uids: Sequence[str] = (),
    ) -> Any:
        if self.journal is not None and uids:
            self.journal.append(topic, value, uids, key=key, partition=partition)
        try:
            return self._producer.send(topic, key=key, value=value, partition=partition)
        except KafkaError as exc:
            raise kafka_failure(exc, f"sending to {topic}") from exc

    def publish(self, topic: str, envelope: RawEnvelope) -> FutureRecordMetadata:
        """Send one raw record; the returned future resolves when all replicas have it."""
        value = envelope.model_dump_json().encode()
        sent = self._send(topic, value, key=partition_key(envelope), uids=(envelope.record_uid,))
        count_records("intake", envelope.source, taken=1, passed=1)
        return sent

    def resend(self, entry: Entry) -> FutureRecordMetadata:
        """Send a journaled message again, as it was first sent; it stays in its journal until it lands."""
        return self.publish_value(entry.topic, entry.value, key=entry.key, partition=entry.partition)

    def publish_value(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> FutureRecordMetadata:
        """Send a message gridhub already encoded (a replayed entry, a restored case); never journaled."""
        return self._send(topic, value, key=key, partition=partition)

    def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has (asked once per run: the count changes only by an operator)."""
        try:
            count = len(self._producer.partitions_for(topic) or ())
        except KafkaError as exc:
            raise kafka_failure(exc, f"asking Kafka for the partitions of {topic}") from exc
        if not count:
            raise BrokerUnavailable(f"topic {topic} shows no partitions yet; is gridhub up running?")
        return count

    def publish_batch(self, topic: str, partition: int, value: bytes, uids: Sequence[str]) -> FutureRecordMetadata:
        """Send one encoded batch of rows (:mod:`schemas.batches`) to the partition its rows hash to.

        ``uids`` are the record uids the batch carries (a superset is fine: the journal then keeps
        the message until all of them have landed).
        """
        return self._send(topic, value, partition=partition, uids=uids)

    def reject(self, reject: Reject) -> FutureRecordMetadata:
        """Record input the connector could not even wrap (an undecodable line, say) as a reject."""
        sent = self._send(REJECTS, reject_message(reject), key=reject.record_uid.encode(), uids=(reject.record_uid,))
        count_records("intake", reject.source, taken=1, rejected=1)
        return sent

    def decide(self, decision: MatchDecision) -> FutureRecordMetadata:
        """Send a reviewer's match decision to the sink."""
        return self._send(MATCH_DECISIONS, decision.model_dump_json().encode(), key=decision.key.encode())

    def announce(self, notice: RunNotice) -> FutureRecordMetadata:
        """Send a run notice to the run ledger.

        Not journaled: the journal keeps a message until the intake ledger has its records, which a
        notice has none of; a notice the broker loses costs the ledger a line, never a record.
        """
        return self._send(RUNS, notice.model_dump_json().encode(), key=notice.run_id.encode())

    @contextmanager
    def announcing(self, run: RunNotice) -> Iterator[RunTally]:
        """Tell the run ledger that ``run`` begins, then how it ended: every door's runs are told this one way.

        The block takes the run's input in and counts what it sent in the tally. An error in it ends
        the run as failed, with the error's line, and goes on up; the failure's notice is sent without
        waiting, so a broker that is away costs no more than the error itself.
        """
        tally = RunTally(run.run_id)
        self.announce(run)
        try:
            yield tally
        except Exception as exc:
            try:
                self.announce(run.failed(exc, tally.published, tally.refused))
            except GridhubError as unsent:
                log.warning("could not tell the run ledger that a run failed", run_id=run.run_id, error=str(unsent))
            raise
        self.announce(run.published_all(tally.published or 0, tally.refused or 0))

    def acknowledged(self, sent: Iterable[FutureRecordMetadata], what: str) -> None:
        """Return once Kafka has acknowledged everything in ``sent``; else raise the taxonomy's error for it."""
        futures = list(sent)
        self.make_durable()
        self.flush(what)
        failed = [future.exception for future in futures if future.failed()]
        if failed:
            raise kafka_failure(failed[0], f"{what} ({len(failed)} of {len(futures)} messages failed)")
        if not all(future.is_done for future in futures):
            raise BrokerUnavailable(f"{what}: Kafka did not acknowledge within {self.timeout_s:g}s")

    def make_durable(self) -> None:
        """Commit the journal: from here on, what was sent reaches the warehouse even if the broker dies."""
        if self.journal is not None:
            self.journal.make_durable()

    def flush(self, what: str = "sending") -> None:
        """Block until everything sent so far is acknowledged, or the timeout passes."""
        try:
            self._producer.flush(timeout=self.timeout_s)
        except KafkaError as exc:
            raise kafka_failure(exc, what) from exc

    def close(self) -> None:
        """Flush what can be flushed and release the connection.

        A record Kafka has not acknowledged by now was never promised to anyone (no 202, no cursor
        moved, no file filed as done), so a broker that is away only costs a warning here.
        """
        try:
            self._producer.close(timeout=self.timeout_s)
        except KafkaError as exc:
            log.warning("closed without Kafka's acknowledgement of the last records", error=str(exc))
        if self.journal is not None:
            self.journal.close()
