"""A person's answer to a weak match: the one control message analysts send into the hub.

Entity resolution never merges on a guess; what it is unsure of waits in
``match_review``. A reviewer's decision travels through Kafka like every other
record, so the sink, the warehouse's only writer, applies it in its own
transaction, and a rebuilt warehouse replays the decisions with the data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ResolvableKind = Literal["person", "organisation", "place", "object"]


class MatchDecision(BaseModel):
    """Merge one source copy into an entity, or keep it apart for good."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ResolvableKind
    source: str = Field(min_length=1)
    source_record_id: str = Field(min_length=1)
    decision: Literal["merge", "separate"]
    entity_key: str | None = Field(default=None, description="The entity to merge into (merge only).")
    decided_by: str = Field(min_length=1)
    decided_at: datetime

    @model_validator(mode="after")
    def _merge_names_its_entity(self) -> MatchDecision:
        if (self.decision == "merge") != bool(self.entity_key):
            raise ValueError("a merge names the entity_key to merge into; a separation names none")
        return self

    @property
    def key(self) -> str:
        """Partition key: one copy's decisions stay in order."""
        return f"{self.kind}|{self.source}|{self.source_record_id}"
