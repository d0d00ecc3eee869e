"""The SQL door's OpenAPI document, built from what the server reads requests into and admits callers with.

Bodies, query strings and roles are :mod:`warehouse.query_contract`'s (and the run ledger's
:class:`warehouse.runs.RunQuery`), the same objects the server uses; the answers' shapes are
described here. The unit tests check that every route the server answers is in the document.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from foundation.access import ROLES, Caller
from schemas.openapi import ApiDocument, json_answer
from warehouse.query_contract import (
    AUDIT_READERS,
    INTAKE_READERS,
    MAX_SQL_BYTES,
    MAX_SQL_PARAMETERS,
    REPLAYERS,
    SQL_READERS,
    AuditQuery,
    IntakeQuery,
    ReplayableQuery,
    SqlQuery,
)
from warehouse.relation_stream import ARROW_STREAM
from warehouse.runs import RunQuery

TITLE = "gridhub SQL endpoint"


class SqlLimits(Protocol):
    """The limits the document states (``warehouse.query_server.QueryLimits``)."""

    max_rows: int
    timeout_s: float
    memory_limit: str


class Status(BaseModel):
    """The endpoint is up."""

    status: Literal["ok"]


class Rows(BaseModel):
    """A small table: column names and rows of plain JSON values (timestamps as ISO 8601 text)."""

    columns: list[str]
    rows: list[list[Any]]


class AnswerLimits(BaseModel):
    """What the query was allowed."""

    max_rows: int
    timeout_s: float
    memory_limit: str


class SqlAnswer(Rows):
    """A query's answer in the caller's role."""

    truncated: bool = Field(description="More rows matched than `limits.max_rows`; narrow the query.")
    limits: AnswerLimits
    masked: bool = Field(description="Whether the caller's role reads the masked views (personal data masked).")


class Relations(BaseModel):
    """What the caller's queries may name."""

    relations: list[str]


def _query_routes(document: ApiDocument, limits: SqlLimits) -> None:
    document.add(
        "post",
        "/sql",
        summary="Run one read-only query",
        description=f"Over the caller's role's views (the analyst's and admin's mask personal data), at most "
        f"{limits.max_rows} rows and {limits.timeout_s:g} s; every query is audited.",
        roles=SQL_READERS,
        body={"required": True, "content": {"application/json": {"schema": document.schema(SqlQuery)}}},
        answers={200: json_answer("The rows.", document.schema(SqlAnswer))},
        refusals={
            400: f"No JSON object with `sql`, or `params` that are not a list of at most {MAX_SQL_PARAMETERS} "
            "scalars (`bad_request`), or a query the guard or the warehouse refuses, with "
            "the rule (`not_a_select`, `relation`, `function`, `host`, `timeout`, `memory`, `sql_error`, ...).",
            413: f"Body over {MAX_SQL_BYTES} bytes (`too_large`).",
        },
        tags=["sql"],
    )
    document.add(
        "get",
        "/relations",
        summary="The tables and views the caller may name",
        roles=SQL_READERS,
        answers={200: json_answer("Their names.", document.schema(Relations))},
        tags=["sql"],
    )
    document.add(
        "get",
        "/export",
        summary="Every row of one relation, as an Arrow IPC stream (`gridhub export`)",
        roles=SQL_READERS,
        parameters=[
            {"name": "relation", "in": "query", "required": True, "schema": {"type": "string"}},
            {
                "name": "as_of",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "A moment (ISO 8601): the relation as it was then, if it keeps history.",
            },
        ],
        answers={
            200: {
                "description": "The rows, in the caller's role's views.",
                "content": {ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
        refusals={400: "A relation the caller may not read, or one without history asked `as_of`, or a bad moment."},
        tags=["sql"],
    )


def _ledger_routes(document: ApiDocument) -> None:
    for path, summary, query, roles in (
        ("/intake", "Outcome counts (new, update, duplicate, rejected) of a run", IntakeQuery, INTAKE_READERS),
        ("/runs", "The run ledger: the latest runs, or one run with its rejects by reason", RunQuery, INTAKE_READERS),
        ("/audit", "The audit trail, newest first", AuditQuery, AUDIT_READERS),
        (
            "/rejects/replayable",
            "Open rejects with their payloads whole, to send again (audited as a read of personal data)",
            ReplayableQuery,
            REPLAYERS,
        ),
    ):
        document.add(
            "get",
            path,
            summary=summary,
            description="A publisher sees its own source's only." if "publisher" in roles else "",
            roles=roles,
            parameters=document.query_parameters(query),
            answers={200: json_answer("The rows.", document.schema(Rows))},
            refusals={400: "A parameter out of range or of the wrong form (`bad_request`, `bad_argument`)."},
            tags=["ledger"],
        )
    document.add(
        "get",
        "/offsets",
        summary="The sink's next offset in every partition it reads",
        roles=SQL_READERS,
        answers={200: json_answer("topic, partition, next_offset.", document.schema(Rows))},
        tags=["ledger"],
    )


def _open_routes(document: ApiDocument) -> None:
    document.add(
        "get",
        "/whoami",
        summary="The caller a token belongs to",
        roles=ROLES,
        answers={200: json_answer("Its name, role and binding.", document.schema(Caller, mode="serialization"))},
        tags=["service"],
    )
    document.add(
        "get",
        "/",
        summary="Whether the endpoint is up",
        roles=None,
        answers={200: json_answer("It is.", document.schema(Status))},
        tags=["service"],
    )
    document.add_documentation("the sink")


def query_document(limits: SqlLimits) -> dict[str, Any]:
    """The SQL endpoint's OpenAPI 3.1 document, with its limits."""
    document = ApiDocument(
        TITLE,
        "Read-only SQL over the warehouse, served by the sink that holds it (`gridhub sql` asks here), and the "
        "ledgers beside it. Every door but the open ones wants `Authorization: Bearer <token>`; every refusal "
        'is `{"error": code, "reason": sentence}`.',
    )
    _query_routes(document, limits)
    _ledger_routes(document)
    _open_routes(document)
    return document.build()
