"""The patrol gateway's OpenAPI document, built from the models that read its requests, and the routes serving it.

Request bodies are :mod:`connectors.patrol_bodies`' models, the Open311 answers
:mod:`connectors.open311`'s, and the roles of each door :mod:`connectors.patrol_access`'s: the
same objects the gateway validates and admits with, so the document cannot say otherwise. The
answers of the gateway's own routes (202 receipts, work orders) are described here; the unit
tests check that every route of the application is in the document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, Field

from connectors import open311
from connectors.http_guard import RETRY_AFTER_S
from connectors.patrol_access import (
    CASE_READERS,
    ORDER_READERS,
    PATROLLERS,
    PHOTO_READERS,
    REPORTERS,
    UPDATERS,
)
from connectors.patrol_bodies import MAX_JSON_DEPTH, PointBody, ReportBody, TrackBody, UpdateBody
from connectors.photos import REFERENCE
from connectors.work_orders import MAX_WAIT_S
from foundation.swagger_ui import Served
from schemas.openapi import ApiDocument, documentation, json_answer

TITLE = "gridhub patrol gateway"


class GatewayLimits(Protocol):
    """The size limits the document states (``connectors.patrol_http.Limits``)."""

    record_bytes: int
    photos: int
    track_points: int


class ReportAccepted(BaseModel):
    """A report in the gateway's journal and in Kafka: the phone may forget it."""

    status: Literal["accepted"]
    report_id: str = Field(description="The phone's report_id, or the one the gateway made up.")
    record_uid: str
    photos: list[str] = Field(description="References of the photos uploaded with the report.")


class UpdateAccepted(BaseModel):
    """An update in the gateway's journal and in Kafka; the case agent still rules on it."""

    status: Literal["accepted"]
    update_id: str
    record_uid: str
    photos: list[str]


class TrackAccepted(BaseModel):
    """Every point of a track stored."""

    status: Literal["accepted"]
    points: int


class WorkOrders(BaseModel):
    """A desk's work orders past its cursor."""

    department: str
    orders: list[dict[str, Any]]
    cursor: str = Field(description="Pass as `after` to read on from here (and to acknowledge these).")


class OrdersQuery(BaseModel):
    """What ``GET /v1/orders`` reads from its query."""

    department: str | None = Field(
        default=None,
        description="The desk unit (`water`, `enforcement.wansui`); a desk's own by default, required for others.",
    )
    after: str | None = Field(default=None, description="The cursor of the last answer.")
    start: Literal["committed", "beginning"] = Field(
        default="committed", description="Without `after`: from the desk's position, or from the first order."
    )
    wait: float = Field(default=0, ge=0, le=MAX_WAIT_S, description="Seconds to long-poll for a first order.")


class Health(BaseModel):
    """The gateway takes records."""

    status: Literal["ok"]


def _storing_refusals(limits: GatewayLimits) -> dict[int, str]:
    """What a door that stores a record may refuse, beyond the token check."""
    return {
        400: f"Not a JSON object (`bad_json`), nested over {MAX_JSON_DEPTH} levels (`too_deep`), a number too "
        "long (`bad_number`), or a malformed form (`bad_multipart`).",
        413: f"Body over {limits.record_bytes} bytes (`too_large`), a photo too large (`photo_too_large`, "
        f"`photo_too_many_pixels`) or more than {limits.photos} photos (`too_many_photos`).",
        415: "Neither `application/json` nor `multipart/form-data`, not UTF-8, or a photo that is no JPEG, PNG "
        "or WebP (`not_an_image`).",
        422: "A field of the wrong JSON type (`invalid_<field>`), or a record the stream would reject, with the "
        "stream's reason code (`unknown_category`, `outside_grid`, ...).",
        503: f"Kafka did not take the record (`kafka_unavailable`) or the gateway is closing (`closing`): nothing was "
        f"stored, send the same record again after `Retry-After` ({RETRY_AFTER_S}) seconds.",
    }


def _record_body(document: ApiDocument, model: type[BaseModel], part: str, limits: GatewayLimits) -> dict[str, Any]:
    """A record as JSON, or as a form with the JSON in part ``part`` and up to ``limits.photos`` ``photo`` parts."""
    schema = document.schema(model)
    form = {
        "type": "object",
        "required": [part],
        "properties": {
            part: schema,
            "photo": {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "maxItems": limits.photos,
                "description": "JPEG, PNG or WebP files, one part each.",
            },
        },
    }
    return {
        "required": True,
        "content": {
            "application/json": {"schema": schema},
            "multipart/form-data": {"schema": form, "encoding": {part: {"contentType": "application/json"}}},
        },
    }


def _record_routes(document: ApiDocument, limits: GatewayLimits) -> None:
    refusals = _storing_refusals(limits)
    document.add(
        "post",
        "/v1/reports",
        summary="Report an incident",
        description="Completeness is the stream's to judge, with its reasons: an event needs `category`, "
        "`description`, `lat`, `lon` and `reported_at` (a phone's `reporter_id` comes from its token). "
        "A `report_id` makes a resend recognisable.",
        roles=REPORTERS,
        body=_record_body(document, ReportBody, "report", limits),
        answers={202: json_answer("Stored: in the journal and in Kafka.", document.schema(ReportAccepted))},
        refusals=refusals,
        tags=["records"],
    )
    document.add(
        "post",
        "/v1/updates",
        summary="Move a case along",
        description="`event_id` names the case's report. The token says who acts and in which role; the step "
        "is checked against the case flow at once.",
        roles=UPDATERS,
        body=_record_body(document, UpdateBody, "update", limits),
        answers={202: json_answer("Stored; the case agent rules on it.", document.schema(UpdateAccepted))},
        refusals={
            **refusals,
            403: "The token's role does not allow this, or a desk's case is another desk's (`forbidden`, "
            "`unknown_desk`).",
            404: "No case has that report (`unknown_case`).",
            409: "The case flow does not allow this step now (`illegal_transition`, `role_not_allowed`, ...).",
            503: f"{refusals[503]} Also `case_not_seen_yet`: the gateway has not yet seen the case.",
        },
        tags=["records"],
    )
    track = document.schema(TrackBody)
    points = {"type": "array", "items": document.schema(PointBody), "minItems": 1, "maxItems": limits.track_points}
    document.add(
        "post",
        "/v1/tracks",
        summary="Post a patrol track",
        description="All points are stored or none. Each point needs `at` (or `recorded_at`), `lat` and `lon`.",
        roles=PATROLLERS,
        body={
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [track, {"type": "object", "required": ["points"], "properties": {"points": points}}]
                    }
                }
            },
        },
        answers={202: json_answer("Every point stored.", document.schema(TrackAccepted))},
        refusals={**refusals, 422: f"{refusals[422]} `invalid_points`: no list of 1 to {limits.track_points} points."},
        tags=["records"],
    )


def _reading_routes(document: ApiDocument) -> None:
    document.add(
        "get",
        "/v1/photos/{reference}",
        summary="Fetch a stored photo",
        roles=PHOTO_READERS,
        parameters=[
            {
                "name": "reference",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": REFERENCE.pattern},
                "description": "As the upload's answer gave it: `sha256:<64 hex>`.",
            }
        ],
        answers={
            200: {
                "description": "The photo as it was uploaded.",
                "content": {
                    kind: {"schema": {"type": "string", "format": "binary"}}
                    for kind in ("image/jpeg", "image/png", "image/webp")
                },
            }
        },
        refusals={404: "No photo with that reference (`unknown_photo`)."},
        tags=["cases"],
    )
    document.add(
        "get",
        "/v1/orders",
        summary="Read a desk's work orders",
        description="Long-polls up to `wait` seconds for a first order. A desk reads its own unit (a "
        "department's desk also its squads'); the command centre names the unit.",
        roles=ORDER_READERS,
        parameters=document.query_parameters(OrdersQuery),
        answers={200: json_answer("The orders past the cursor (maybe none).", document.schema(WorkOrders))},
        refusals={
            400: "`wait` is no number (`bad_wait`).",
            403: "A desk asking for another unit's orders.",
            404: "No such desk unit (`unknown_department`), or this gateway serves no work orders (`not_found`).",
            503: "Kafka cannot be read now (`kafka_unavailable`).",
        },
        tags=["cases"],
    )


def _open311_routes(document: ApiDocument) -> None:
    error = document.schema(list[open311.Open311Error])
    jurisdiction = {
        "name": "jurisdiction_id",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Accepted and ignored: the gateway serves one town.",
    }
    for path in open311.SERVICES_PATHS:
        document.add(
            "get",
            path,
            summary="Open311: the categories as services",
            roles=CASE_READERS,
            parameters=[jurisdiction],
            answers={200: json_answer("Every category.", document.schema(list[open311.Open311Service]))},
            error=error,
            tags=["open311"],
        )
    for path in open311.REQUEST_PATHS:
        _open311_request(document, path, jurisdiction, error)


def _open311_request(document: ApiDocument, path: str, jurisdiction: dict[str, Any], error: dict[str, Any]) -> None:
    document.add(
        "get",
        path,
        summary="Open311: a case's status",
        description="The id is the case's or that of any report that joined it (the `report_id` a phone sent). "
        "The answer is a list of one, as the standard has it.",
        roles=CASE_READERS,
        parameters=[
            {"name": "service_request_id", "in": "path", "required": True, "schema": {"type": "string"}},
            jurisdiction,
        ],
        answers={200: json_answer("The case, in a list of one.", document.schema(list[open311.Open311Request]))},
        refusals={
            404: "No case has that id nor a report with it.",
            503: "The gateway is still reading the cases; ask again after `Retry-After` seconds.",
        },
        error=error,
        tags=["open311"],
    )


def _open_routes(document: ApiDocument) -> None:
    document.add(
        "get",
        "/healthz",
        summary="Whether the gateway takes records now",
        roles=None,
        answers={200: json_answer("It does.", document.schema(Health))},
        refusals={
            503: "It is closing (`closing`), or Kafka did not acknowledge the last record (`kafka_unavailable`)."
        },
        tags=["service"],
    )
    document.add_documentation("the gateway")


def gateway_document(limits: GatewayLimits) -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document, with its size limits."""
    document = ApiDocument(
        TITLE,
        "Patrol phones, desks and the command centre post records and read cases here; other systems read "
        f"cases through Open311 GeoReport v2 under `{open311.BASE}`. Every door but the open ones wants "
        '`Authorization: Bearer <token>`; every refusal is `{"error": code, "reason": sentence}` '
        '(Open311\'s are `[{"code": status, "description": sentence}]`).',
    )
    _record_routes(document, limits)
    _reading_routes(document)
    _open311_routes(document)
    _open_routes(document)
    return document.build()


def documentation_routes(limits: GatewayLimits) -> list[web.RouteDef]:
    """``GET /openapi.json``, ``GET /docs`` and the page's files, each answered from memory."""
    return [web.get(path, _sender(served)) for path, served in documentation(gateway_document(limits)).items()]


def _sender(served: Served) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def send(_request: web.Request) -> web.Response:
        return web.Response(body=served.body, headers={"Content-Type": served.content_type, **served.headers})

    return send
