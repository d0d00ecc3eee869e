"""What the routes of the SQL door read and who may call them: what the server checks with and documents.

The query server (:mod:`warehouse.query_server`) admits callers with these roles and reads bodies
and query strings into these models; its OpenAPI document (:mod:`warehouse.query_openapi`) is built
from the same objects, so the two cannot disagree. A body or query that does not fit is refused
with 400 and a sentence naming the field, never a traceback.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError

from foundation.access import Role
from foundation.errors import InputRejected

SQL_READERS: tuple[Role, ...] = ("analyst", "admin", "commander")
"""Roles that may query the warehouse; only the commander (and the hub itself) sees personal data whole."""
INTAKE_READERS: tuple[Role, ...] = ("publisher", *SQL_READERS)
AUDIT_READERS: tuple[Role, ...] = ("admin",)
REPLAYERS: tuple[Role, ...] = ("admin", "publisher")
"""Who may send rejected records again: operations (any source) and a source's own publisher."""
MAX_SQL_BYTES = 1_000_000
"""Longest ``POST /sql`` body: a statement is text a person wrote, and the server reads it whole into memory."""
MAX_SQL_PARAMETERS = 100
"""Most values one statement's placeholders may take: a longer list belongs in a table, not in a request."""
SqlParameter = str | int | FiniteFloat | bool | None
"""A value a placeholder takes: a scalar, never SQL (and no NaN or infinity, which JSON has no word for)."""


class BadRequest(InputRejected):
    """A body or query string the route cannot read: HTTP 400."""

    reason_code = "bad_request"


class BodyTooLarge(InputRejected):
    """A body over :data:`MAX_SQL_BYTES`: HTTP 413, and it is not read."""

    reason_code = "too_large"


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SqlQuery(_Request):
    """``POST /sql``: one read-only statement, run over the caller's role's views."""

    sql: str = Field(description="One SELECT (or WITH ... SELECT) statement; the guard refuses the rest.")
    params: list[SqlParameter] = Field(
        default_factory=list,
        max_length=MAX_SQL_PARAMETERS,
        description="Values for the statement's placeholders (`?`, or `$1`, `$2`, ...), in order. A value given "
        "here is never read as SQL, and a statement asked again with other values is not checked again.",
    )


class IntakeQuery(_Request):
    """``GET /intake``: whose outcome counts."""

    run_id: str | None = Field(default=None, description="One run (as `gridhub ingest` prints it); all runs if absent.")


class AuditQuery(_Request):
    """``GET /audit``: how many of the latest entries, of whom."""

    limit: int = Field(default=100, ge=1, description="At most this many entries (and at most GRIDHUB_SQL_MAX_ROWS).")
    caller: str | None = Field(default=None, description="Only this token name's entries.")


class ReplayableQuery(_Request):
    """``GET /rejects/replayable``: which open rejects to send again, with their payloads whole."""

    source: str | None = Field(default=None, description="Only this source's (a publisher: its own, always).")
    reason: str | None = Field(default=None, description="Only rejects with this reason code.")
    stage: str | None = Field(default=None, description="Only rejects refused at this stage.")
    limit: int = Field(default=10_000, ge=1, le=100_000, description="At most this many, oldest first.")


Request = TypeVar("Request", bound=_Request)


def _refused(error: ValidationError, what: str) -> BadRequest:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or what}: {item['msg']}" for item in error.errors()
    )
    return BadRequest(f"{problems}; correct the {what} and send it again")


def read_body(model: type[Request], raw: bytes) -> Request:
    """The JSON body ``raw`` as ``model``, or :class:`BadRequest` naming what is wrong."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _refused(exc, "JSON body") from None


def read_query(model: type[Request], query: str) -> Request:
    """A URL's query string as ``model`` (the first value of each parameter), or :class:`BadRequest`."""
    first = {name: values[0] for name, values in parse_qs(query).items()}
    try:
        return model.model_validate(first)
    except ValidationError as exc:
        raise _refused(exc, "query") from None
