"""What every connector shares: provenance, the idempotent producer, direct rejects.

A connector's promise is *at least once*: a record it has accepted (answered a
phone with 202, advanced a cursor past, counted in an ingest) is acknowledged by
all in-sync replicas first. Resends that this may cause are absorbed downstream
by the stream's dedup table and the warehouse's keyed upserts.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from schemas.batches import MAX_MESSAGE_BYTES
from schemas.decisions import MatchDecision
from schemas.messages import reject_message
from schemas.records import EntityKind, RawEnvelope, Reject, RejectStage
from schemas.topics import MATCH_DECISIONS, REJECTS


class ConnectorError(RuntimeError):
    """Input a connector cannot take at all; the message tells the user what to fix."""


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


class RawPublisher:
    """An idempotent, acks=all producer of raw envelopes and connector-side rejects."""

    def __init__(self, bootstrap: str, client_id: str, batch_rows: int = 5000) -> None:
        self.batch_rows = batch_rows
        """Rows per message on the bulk lane (``GRIDHUB_BULK_BATCH_ROWS``)."""
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                max_in_flight_requests_per_connection=5,
                max_request_size=MAX_MESSAGE_BYTES,
            )
        except KafkaError as exc:
            raise ConnectorError(f"cannot reach Kafka at {bootstrap} ({exc}); is gridhub up running?") from exc

    def publish(self, topic: str, envelope: RawEnvelope) -> FutureRecordMetadata:
        """Send one raw record; the returned future resolves when all replicas have it."""
        return self._producer.send(topic, key=partition_key(envelope), value=envelope.model_dump_json().encode())

    def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has (asked once per run: the count changes only by an operator)."""
        count = len(self._producer.partitions_for(topic) or ())
        if not count:
            raise ConnectorError(f"topic {topic} has no partitions; is gridhub up running?")
        return count

    def publish_batch(self, topic: str, partition: int, value: bytes) -> FutureRecordMetadata:
        """Send one encoded batch of rows (:mod:`schemas.batches`) to the partition its rows hash to."""
        return self._producer.send(topic, partition=partition, value=value)

    def reject(
        self,
        *,
        source: str,
        source_record_id: str,
        entity: str,
        stage: RejectStage,
        reason_code: str,
        reason: str,
        payload: str,
        run_id: str | None,
    ) -> FutureRecordMetadata:
        """Record input the connector could not even wrap (an undecodable line, say) as a reject."""
        reject = Reject(
            record_uid=uuid.uuid4().hex,
            source=source,
            source_record_id=source_record_id,
            entity=entity,
            stage=stage,
            reason_code=reason_code,
            reason=reason,
            payload=payload,
            run_id=run_id,
        )
        return self._producer.send(REJECTS, key=reject.record_uid.encode(), value=reject_message(reject))

    def decide(self, decision: MatchDecision) -> FutureRecordMetadata:
        """Send a reviewer's match decision to the sink."""
        return self._producer.send(
            MATCH_DECISIONS, key=decision.key.encode(), value=decision.model_dump_json().encode()
        )

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until everything sent so far is acknowledged."""
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        """Flush and release the connection."""
        self._producer.close(timeout=30)


class Connector:
    """A source family: it names its raw topic and publishes payloads with provenance."""

    topic: str

    def __init__(self, publisher: RawPublisher, source: str) -> None:
        self.publisher = publisher
        self.source = source

    def envelope(
        self, source_record_id: str, entity: EntityKind, payload: dict[str, Any], run_id: str | None = None
    ) -> RawEnvelope:
        """Wrap one payload with this connector's provenance."""
        return make_envelope(self.source, source_record_id, entity, payload, run_id)

    def send(self, envelope: RawEnvelope) -> FutureRecordMetadata:
        """Send to this connector's raw topic; the caller decides when to wait for the acknowledgement."""
        return self.publisher.publish(self.topic, envelope)
