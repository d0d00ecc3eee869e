"""The reject: a record that could not be accepted, kept with a reason a person can act on.

Every step that refuses a record (the connectors, the worker's agents, the sink) builds it the
same way (:meth:`Reject.build`), so the ``rejects`` topic and table have one shape whoever
refused, and a reject can be fixed and replayed. A step that refuses a Kafka message also says
where the message sits (:meth:`Reject.at`), so the original can be found even when its bytes
were too large to keep in the reject.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RejectStage = Literal["decode", "validate", "route", "lifecycle", "internal", "warehouse", "sink"]
"""Where a record was refused: the worker's steps (decode to lifecycle, or a bug: internal), then the
sink's warehouse contract (warehouse) and a message the sink itself could not read or store (sink)."""

MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest payload a reject keeps. A reject travels as one Kafka message, and text escaped as JSON can
take six times its bytes: a rejected 1 MB batch kept whole would be refused by the broker, and the
reject lost with it. Above this size the reject keeps the payload's sha256 and size instead."""
MAX_TEXT_CHARS = 4000
"""Longest reason or error kept: enough to act on, never the size of the record itself."""


def _now() -> datetime:
    return datetime.now(UTC)


def _clipped(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


def describe_error(error: BaseException) -> str:
    """An exception as its class and message, clipped: what an engineer needs to find the cause."""
    return _clipped(f"{type(error).__name__}: {error}")


class Reject(BaseModel):
    """A record that could not be accepted, kept with the reason a person can act on.

    The fields after ``rejected_at`` came later; each has a default, so a reject published by an
    older gridhub still reads.
    """

    model_config = ConfigDict(frozen=True)
    record_uid: str
    source: str
    source_record_id: str
    entity: str
    stage: RejectStage
    reason_code: str
    reason: str
    payload: str | None = Field(
        description="The original bytes or payload, as text, for fixing and replay; None when it was larger "
        "than MAX_PAYLOAD_BYTES (then payload_sha256 and payload_bytes say what it was)."
    )
    run_id: str | None = None
    rejected_at: datetime = Field(default_factory=_now)
    topic: str | None = Field(default=None, description="The Kafka topic of the refused message, when it was one.")
    partition: int | None = None
    message_offset: int | None = Field(default=None, description="Its offset in that partition.")
    error: str | None = Field(default=None, description="The exception that refused it (class: message), if any.")
    payload_sha256: str | None = None
    payload_bytes: int | None = None

    @classmethod
    def build(
        cls,
        stage: RejectStage,
        reason_code: str,
        reason: str,
        payload: bytes | str | Mapping[str, Any],
        *,
        record_uid: str | None = None,
        source: str | None = None,
        source_record_id: str | None = None,
        entity: str | None = None,
        run_id: str | None = None,
        rejected_at: datetime | None = None,
        error: BaseException | None = None,
    ) -> Reject:
        """A reject from whatever provenance the refusing step still holds, so worker and sink keep one shape.

        The payload is kept as text a person can read and replay: bytes decoded (what is not UTF-8
        replaced), a mapping as JSON with its characters unescaped; one larger than
        :data:`MAX_PAYLOAD_BYTES` only by its hash and size. A record that lost its uid (bytes
        that were no envelope) is known by the hash of its payload, so refusing it again is
        recognised as the same reject; any other provenance it lost reads "unknown".
        """
        if isinstance(payload, bytes):
            original = payload
            text = payload.decode("utf-8", errors="replace")
        else:
            text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
            original = text.encode()
        digest = hashlib.sha256(original).hexdigest()
        return cls(
            record_uid=digest if record_uid is None else record_uid,
            source=_known(source),
            source_record_id=_known(source_record_id),
            entity=_known(entity),
            stage=stage,
            reason_code=reason_code,
            reason=_clipped(reason),
            payload=text if len(original) <= MAX_PAYLOAD_BYTES else None,
            run_id=run_id,
            rejected_at=rejected_at or _now(),
            error=describe_error(error) if error is not None else None,
            payload_sha256=digest,
            payload_bytes=len(original),
        )

    def at(self, topic: str, partition: int, offset: int, error: BaseException | None = None) -> Reject:
        """This reject, placed at the Kafka message it refuses (and given the exception that refused it).

        A reject known only by its payload's hash (bytes that were no envelope) is then known by its
        place as well: two equal messages are two rejects, while reading one message again (a replayed
        topic) still finds the same one.
        """
        update: dict[str, Any] = {"topic": topic, "partition": partition, "message_offset": offset}
        if self.payload_sha256 is not None and self.record_uid == self.payload_sha256:
            update["record_uid"] = f"{topic}[{partition}]@{offset}#{self.payload_sha256[:16]}"
        if error is not None:
            update["error"] = describe_error(error)
        return self.model_copy(update=update)


def _known(value: str | None) -> str:
    return "unknown" if value is None else value
