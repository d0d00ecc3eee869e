"""The run notice: how a door tells the warehouse's run ledger that it began, and how it ended.

A run is one input a door takes in: a file ``gridhub ingest`` publishes, a file dropped into the
watched folder, one full pull of a department API, one poll of the approval system that found
changes. Its records carry its ``run_id`` (:class:`~schemas.records.RawEnvelope`) and the intake
ledger says what became of each; the notice adds what only the door knows: which door, what it
read, who asked, when it began and ended, how many records it published and refused itself, and
why it stopped if it failed. The door sends one notice as it begins and one as it ends, on the
``runs`` topic; the sink keeps the last word of each run (an end is never undone by a replayed
start).

A notice is read by analysts, so it never carries a secret: the origin of a pull is its URL
without credentials, query or fragment, and the error's line is cleaned the same way.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal, Self, get_args
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from foundation.errors import GridhubError
from schemas.rejects import describe_error

RunKind = Literal["ingest", "watch", "pull", "approvals"]
"""Which door ran: ``gridhub ingest``, the watched folder, a REST pull, a poll of the approval system."""
RunState = Literal["running", "published", "failed"]
"""What the door said last: begun; finished, everything acknowledged by Kafka; stopped by an error."""
RunStatus = Literal["running", "published", "complete", "failed"]
"""A run's status in the ledger (the ``run_summary`` view): the door's state, and ``complete`` once
the intake ledger accounts for every record a published run sent."""
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)

MAX_ERROR_CHARS = 500
_NUMBER_LIKE = re.compile("[0-9]{11}")
"""Eleven digits in a row: what the masks take for a mobile number (and an ID holds)."""
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def public_url(url: str) -> str:
    """A URL as anyone may read it: no user or password, no query (tokens hide there), no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.split("://", 1)[0] + "://…"
    return urlunsplit((parts.scheme, (f"[{host}]" if ":" in host else host) + port, parts.path, "", ""))


def _public(text: str) -> str:
    """Every URL in ``text`` made public (:func:`public_url`)."""
    return _URL.sub(lambda match: public_url(match.group(0)), text)


def _one_line(text: str) -> str:
    """The first line of an error, cleaned of secrets and clipped: what the ledger shows of it."""
    line = _public(text.strip().splitlines()[0] if text.strip() else "unknown error")
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def new_run_id() -> str:
    """A fresh run id: 32 hexadecimal digits, never eleven decimal ones in a row.

    Masked roles see every text scrubbed of what looks like a mobile number or a resident ID
    (:mod:`warehouse.masking`); a run id that held one would be shown altered, and an analyst
    could not ask for the run by the id it was announced with.
    """
    while _NUMBER_LIKE.search(run_id := uuid.uuid4().hex):
        pass
    return run_id


RunId = Annotated[str, Field(pattern=r"^[0-9a-f]{1,64}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class RunNotice(BaseModel):
    """One word of a run about itself: its start (``running``) or its end (``published`` or ``failed``).

    Both carry every fact known at the time, so the end alone describes the run whole.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    run_id: RunId = Field(description="The run_id its records carry.")
    kind: RunKind
    source: Name = Field(description="The source its records are published as.")
    entity: Name | None = Field(default=None, description="The entity kind of its records.")
    origin: Annotated[str, AfterValidator(_public), Field(max_length=500)] | None = Field(
        default=None, description="What it read: a file's name, a pull's URL, the approval system's table."
    )
    started_by: Name | None = Field(default=None, description="The caller's token name; none for the hub's services.")
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    state: RunState
    published: int | None = Field(default=None, ge=0, description="Records it published (at the end).")
    refused: int | None = Field(default=None, ge=0, description="Records it refused itself, sent as rejects.")
    error: Annotated[str, AfterValidator(_one_line)] | None = Field(default=None, description="Why it failed.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """A start has no end; an end has its time; a published run its counts; a failed run its reason."""
        if (self.state == "running") != (self.ended_at is None):
            raise ValueError("a running run has no ended_at, an ended one has")
        if self.state == "published" and (self.published is None or self.refused is None):
            raise ValueError("a published run says how many records it published and refused")
        if (self.state == "failed") != (self.error is not None):
            raise ValueError("a failed run says why, and only a failed run has an error")
        return self

    @classmethod
    def begin(
        cls,
        kind: RunKind,
        source: str,
        entity: str | None,
        origin: str | None,
        started_by: str | None,
        run_id: str | None = None,
    ) -> Self:
        """The notice of a run beginning now (with a fresh run id unless the door chose one)."""
        return cls(
            run_id=run_id or new_run_id(),
            kind=kind,
            source=source,
            entity=entity,
            origin=origin,
            started_by=started_by,
            started_at=datetime.now(UTC),
            state="running",
        )

    def published_all(self, published: int, refused: int) -> Self:
        """The notice of this run ending now, with everything it sent acknowledged by Kafka."""
        ended = {"state": "published", "ended_at": datetime.now(UTC), "published": published, "refused": refused}
        return type(self).model_validate({**self.model_dump(), **ended})

    def failed(self, error: BaseException, published: int | None = None, refused: int | None = None) -> Self:
        """The notice of this run stopped now by ``error`` (a gridhub error's sentence, else its class and message)."""
        reason = str(error) if isinstance(error, GridhubError) else describe_error(error)
        ended = {"state": "failed", "ended_at": datetime.now(UTC), "published": published, "refused": refused}
        return type(self).model_validate({**self.model_dump(), **ended, "error": reason or type(error).__name__})
