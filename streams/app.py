"""The Faust application: agents that turn every raw record into exactly one outcome.

The integrate agent decodes, validates, places and deduplicates each raw record:
base data becomes a canonical record (new or update), a resend a duplicate notice,
a bad record a reject. Reports and lifecycle updates go on to the case agent
(:mod:`streams.cases`), which files them into cases and dispatches work orders;
application changes go to the application agent (:mod:`streams.applications`),
which dedups them by change number and watches their time limits. The dedup
memory is a Faust table backed by a changelog topic, so a restarted worker
recovers it from Kafka instead of letting resends through again.

Department exports come in batches (:mod:`schemas.batches`): the integrate-batches
agent validates a whole batch at once (:mod:`streams.bulk`) and forwards its valid
rows as one canonical batch into the same partition; the sink dedups them.

Whatever a message holds, it ends as outcomes or rejects, and every reject of a
message says where the message sits (topic, partition, offset): a reject keeps at
most 64 KiB of payload (:mod:`schemas.rejects`), so the original may have to be
found there.
"""

from __future__ import annotations

import faust

from foundation.kafka_security import aiokafka_options, faust_credentials
from foundation.metrics import count_records, count_skipped
from foundation.settings import Settings
from schemas.approvals import ApprovalCatalogue
from schemas.batches import decode_batch, encode_within
from schemas.grid import Grid
from schemas.messages import canonical_message, duplicate_message, reject_message
from schemas.records import CANONICAL_MODELS, Application, Event, EventUpdate
from schemas.rejects import Reject
from schemas.topics import (
    BULK_SEEN,
    CANONICAL_BATCHES,
    DUPLICATES,
    RAW_BATCHES,
    RAW_TOPICS,
    REJECTS,
    canonical_topic,
)
from schemas.versions import UnknownContractVersion
from streams.applications import change_message, register_application_agent
from streams.bulk import BatchOutcome, failed_batch, normalise_unseen
from streams.cases import command_message, register_case_agent
from streams.codec import RAW_CODEC
from streams.normalise import Accepted, ReferenceData, Rejected, internal_failure
from streams.routing import RoutingRules
from streams.seen_rows import SeenRows, reference_digest
from streams.transport import use_fetch_wait


def batch_outcome(
    value: bytes,
    rules: RoutingRules,
    grid: Grid | None = None,
    catalogue: ApprovalCatalogue | None = None,
    memory: SeenRows | None = None,
) -> BatchOutcome:
    """What a message on the bulk lane becomes, whatever it holds: canonical rows, seen rows, rejects.

    Bytes that are no batch gridhub can read are one reject; a batch the validation fails on
    (a bug) keeps every row as a reject, so the batch can be replayed after the fix.
    """
    try:
        batch = decode_batch(value)
    except UnknownContractVersion as exc:
        return BatchOutcome(None, [Reject.build("decode", exc.reason_code, f"{RAW_BATCHES}: {exc}", value, error=exc)])
    except Exception as exc:  # noqa: BLE001 - BatchFormatError says what is wrong; any other error is no batch either
        reason = f"message on {RAW_BATCHES} is not a record batch gridhub can read: {exc}"
        return BatchOutcome(None, [Reject.build("decode", "bad_batch", reason, value, error=exc)])
    try:
        return normalise_unseen(batch, memory, rules, grid, catalogue)
    except Exception as exc:  # noqa: BLE001 - an agent exception would skip the batch silently
        return failed_batch(batch, exc)


def build_app(settings: Settings, bootstrap: str) -> faust.App:
    """Create the Faust app and its agent for one broker."""
    reference = ReferenceData.load(settings)
    rules, grid, catalogue = reference.rules, reference.grid, reference.catalogue
    app = faust.App(
        "gridhub-streams",
        broker=f"kafka://{bootstrap}",
        broker_credentials=faust_credentials(settings),
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.worker_rebalance_timeout_s,
        broker_session_timeout=settings.worker_rebalance_timeout_s,
        broker_heartbeat_interval=max(settings.worker_rebalance_timeout_s / 4, 0.5),
        producer_acks=-1,
        producer_linger=settings.producer_linger_ms / 1000,
        web_enabled=False,
        datadir=str(settings.data_dir / "faust"),
    )
    use_fetch_wait(app, settings.fetch_wait_ms)
    raw = app.topic(*RAW_TOPICS, **RAW_CODEC)
    outputs = {kind: app.topic(canonical_topic(kind), **RAW_CODEC) for kind in CANONICAL_MODELS}
    case_commands = register_case_agent(app, settings, rules, grid)
    application_changes = register_application_agent(app, settings, catalogue)
    rejects = app.topic(REJECTS, **RAW_CODEC)
    duplicates = app.topic(DUPLICATES, **RAW_CODEC)
    seen = app.Table("dedup-fingerprints", default=None, key_type=str, value_type=str)
    seen_topic = app.topic(BULK_SEEN, **RAW_CODEC)
    memory = SeenRows(settings.seen_rows_max, reference_digest(settings))

    async def emit_reject(reject: Reject) -> None:
        await rejects.send(key=reject.record_uid.encode(), value=reject_message(reject))
        count_records("integrate", reject.source, taken=1, rejected=1)

    async def decide(accepted: Accepted) -> None:
        envelope, record = accepted.envelope, accepted.record
        count_records("integrate", envelope.source, taken=1, passed=1)
        if isinstance(record, Application):
            await application_changes.send(key=record.key.encode(), value=change_message(accepted))
            return
        previous = seen.get(accepted.dedup_key)
        if previous == accepted.fingerprint:
            await duplicates.send(
                key=envelope.record_uid.encode(), value=duplicate_message(envelope, accepted.fingerprint)
            )
            return
        seen[accepted.dedup_key] = accepted.fingerprint
        forgotten = memory.forget(envelope.source, envelope.entity, envelope.source_record_id)
        if forgotten is not None:
            await seen_topic.send(value=forgotten.encode())
        outcome = "new" if previous is None else "update"
        if isinstance(record, Event | EventUpdate):
            case_key = (record.event_id).encode()
            category = accepted.category
            message = command_message(
                accepted,
                outcome,
                category.limit_hours if category else None,
                category.limit_working_days if category else None,
            )
            await case_commands.send(key=case_key, value=message)
            return
        await outputs[record.kind].send(
            key=record.key.encode(), value=canonical_message(envelope, record, accepted.fingerprint, outcome)
        )

    @app.agent(raw, name="integrate")
    async def integrate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            value: bytes = event.value
            where = event.message
            try:
                decision = reference.normalise(value)
                if isinstance(decision, Rejected):
                    await emit_reject(decision.reject.at(where.topic, where.partition, where.offset))
                else:
                    await decide(decision)
            except Exception as exc:  # noqa: BLE001 - an agent exception would skip the record silently
                reject = internal_failure(value, exc).reject
                await emit_reject(reject.at(where.topic, where.partition, where.offset, exc))

    raw_batches = app.topic(RAW_BATCHES, **RAW_CODEC)
    canonical_batches = app.topic(CANONICAL_BATCHES, **RAW_CODEC)

    async def pass_seen(outcome: BatchOutcome, partition: int) -> None:
        """Send the seen rows on for the sink to account for; remember what the batch taught once it is delivered.

        The memory persists only rows Kafka holds: a skip the sink could not match is a reject.
        """
        if outcome.seen is not None:
            rows = len(outcome.seen)
            count_records("integrate", outcome.seen.source, taken=rows, passed=rows)
            count_skipped(outcome.seen.source, rows)
            for part in encode_within(outcome.seen):
                await canonical_batches.send(value=part, partition=partition)
        if outcome.learned:
            await app.producer.flush()
            memory.learn(outcome.learned)
            for part in outcome.learned.encode_within():
                await seen_topic.send(value=part, partition=partition)

    @app.agent(raw_batches, name="integrate-batches")
    async def integrate_batches(stream: faust.StreamT[bytes]) -> None:
        await memory.restore(bootstrap, BULK_SEEN, aiokafka_options(settings))
        async for event in stream.events():
            where = event.message
            outcome = batch_outcome(event.value, rules, grid, catalogue, memory)
            for reject in outcome.rejects:
                await emit_reject(reject.at(where.topic, where.partition, where.offset))
            if outcome.accepted is not None:
                rows = len(outcome.accepted)
                count_records("integrate", outcome.accepted.source, taken=rows, passed=rows)
                for part in encode_within(outcome.accepted):
                    await canonical_batches.send(value=part, partition=where.partition)
            await pass_seen(outcome, where.partition)

    return app
