"""The reject: a record that could not be accepted, kept with a reason a person can act on.

Every step that refuses a record (the connectors, the worker's agents, the sink) builds it the
same way (:meth:`Reject.build`), so the ``rejects`` topic and table have one shape whoever
refused, and a reject can be fixed and replayed.
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
sink's warehouse contract (warehouse) and a message the sink itself could not read (sink)."""


def _now() -> datetime:
    return datetime.now(UTC)


class Reject(BaseModel):
    """A record that could not be accepted, kept with the reason a person can act on."""

    model_config = ConfigDict(frozen=True)
    record_uid: str
    source: str
    source_record_id: str
    entity: str
    stage: RejectStage
    reason_code: str
    reason: str
    payload: str = Field(description="The original bytes or payload, as text, for fixing and replay.")
    run_id: str | None = None
    rejected_at: datetime = Field(default_factory=_now)

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
    ) -> Reject:
        """A reject from whatever provenance the refusing step still holds, so worker and sink keep one shape.

        The payload is kept as text a person can read and replay: bytes decoded (what is not UTF-8
        replaced), a mapping as JSON with its characters unescaped. A record that lost its uid (bytes
        that were no envelope) is known by the hash of its payload, so refusing it again is recognised
        as the same reject; any other provenance it lost reads "unknown".
        """
        if isinstance(payload, bytes):
            original, text = payload, payload.decode("utf-8", errors="replace")
        else:
            text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
            original = text.encode()
        return cls(
            record_uid=hashlib.sha256(original).hexdigest() if record_uid is None else record_uid,
            source=_known(source),
            source_record_id=_known(source_record_id),
            entity=_known(entity),
            stage=stage,
            reason_code=reason_code,
            reason=reason,
            payload=text,
            run_id=run_id,
            rejected_at=rejected_at or _now(),
        )


def _known(value: str | None) -> str:
    return "unknown" if value is None else value
