"""Open311 GeoReport v2, read side: the category table as services, and each case as a service request.

Phone vendors and departments' systems integrate against this standard instead of gridhub's own
API. The gateway answers, under :data:`BASE`, ``GET /services.json`` (one service per category:
its code, Chinese name, English description, keywords and department) and ``GET
/requests/{id}.json`` (a case as the case agent last published it, from the gateway's own copy of
the cases, :class:`connectors.case_view.CaseView`). ``id`` is the case's id (the id of its first
report) or the id of any report that joined it, so a phone asks with the ``report_id`` it sent.
As the standard says, a request comes as a list of one, and every error as a list
``[{"code": status, "description": sentence}]``, the door's 401, 403 and 429 included.

An answer carries no personal data (no reporter, no handler, no free text: the notes are made
from the case's status), so every role that may read cases gets the same answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, Field, TypeAdapter

from connectors.case_view import CaseView, PublishedCase
from connectors.http_guard import RETRY_AFTER_S
from connectors.patrol_access import CASE_READERS, refusal_status
from foundation.access import Caller, Role
from foundation.errors import InputRejected
from schemas import TOWN_TIMEZONE
from streams.routing import Category, RoutingRules

BASE = "/open311/v2"
"""Where the GeoReport v2 endpoints live on the gateway (the "base URL" a client is configured with)."""
SERVICES_PATHS = (f"{BASE}/services.json", f"{BASE}/services")
REQUEST_PATHS = (f"{BASE}/requests/{{service_request_id}}.json", f"{BASE}/requests/{{service_request_id}}")
"""The standard's paths name their format (JSON is the only one served); the bare paths answer the same."""


class Open311Service(BaseModel):
    """One service a request may be filed under: a category of the town's table (``schemas/data/categories.yaml``)."""

    service_code: str = Field(description="The category code (GB/T 30428.2 大类+小类), e.g. `0102`.")
    service_name: str = Field(description="The category's Chinese name, e.g. 暴露垃圾.")
    description: str = Field(description="The English name and the handling time limit.")
    metadata: bool = Field(description="Always false: a request needs no attributes beyond the standard ones.")
    type: Literal["realtime", "batch", "blackbox"] = Field(description="Always `realtime`: status is current.")
    keywords: str = Field(description="Comma-separated: the Chinese and the English name.")
    group: str = Field(description="The department that acts on the category, e.g. `sanitation`.")


class Open311Request(BaseModel):
    """One service request: a case (案卷) and where it stands."""

    service_request_id: str = Field(description="The case id: the id of the case's first report.")
    status: Literal["open", "closed"] = Field(description="`closed` once the case is closed, rejected or cancelled.")
    status_notes: str = Field(description="gridhub's own status (`dispatched`, `in_handling`, `parked`...) and notes.")
    service_code: str
    service_name: str
    agency_responsible: str = Field(description="The department the case is dispatched to.")
    requested_datetime: datetime = Field(description="When the first report was made.")
    updated_datetime: datetime | None = Field(default=None, description="When the hub last recorded a change.")
    expected_datetime: datetime = Field(description="The case's deadline (or a parked case's review date).")
    address: str | None = Field(default=None, description="The community or village of the case's grid cell.")
    lat: float = Field(description="WGS84 latitude.")
    long: float = Field(description="WGS84 longitude.")


class Open311Error(BaseModel):
    """One error in Open311's error list."""

    code: int = Field(description="The HTTP status.")
    description: str


def _time_limit(category: Category) -> str:
    if category.limit_working_days is not None:
        return f"handled within {category.limit_working_days} working days"
    return f"handled within {category.limit_hours:g} hours"


def services(rules: RoutingRules) -> list[Open311Service]:
    """Every category of the table as an Open311 service, in code order."""
    return [
        Open311Service(
            service_code=category.code,
            service_name=category.name,
            description=f"{category.name_en}; {_time_limit(category)}",
            metadata=False,
            type="realtime",
            keywords=f"{category.name},{category.name_en}",
            group=category.department,
        )
        for _, category in sorted(rules.categories.items())
    ]


def service_request(published: PublishedCase, rules: RoutingRules, closed: Callable[[str], bool]) -> Open311Request:
    """The Open311 view of a published case; ``closed`` says which gridhub statuses are final."""
    case = published.record
    category = rules.categories.get(case.category)
    notes = [case.status]
    if case.status == "parked" and case.review_at is not None:
        notes.append(f"parked until its review on {case.review_at.date().isoformat()}")
    if case.escalation_level and not closed(case.status):
        notes.append(f"past its deadline, supervision level {case.escalation_level}")
    return Open311Request(
        service_request_id=case.case_id,
        status="closed" if closed(case.status) else "open",
        status_notes="; ".join(notes),
        service_code=case.category,
        service_name=case.category_name or (category.name if category else case.category),
        agency_responsible=rules.departments.get(case.department, case.department),
        requested_datetime=case.reported_at,
        updated_datetime=published.published_at.astimezone(TOWN_TIMEZONE) if published.published_at else None,
        expected_datetime=case.review_at if case.status == "parked" and case.review_at else case.due_at,
        address=case.community,
        lat=case.lat,
        long=case.lon,
    )


_SERVICES = TypeAdapter(list[Open311Service])
_REQUESTS = TypeAdapter(list[Open311Request])


def error_list(status: int, description: str, headers: dict[str, str] | None = None) -> web.Response:
    """Open311's error answer: a list of one ``{"code", "description"}``."""
    return web.json_response([{"code": status, "description": description}], status=status, headers=headers)


def refusal(error: InputRejected) -> web.Response:
    """The door's refusal (401, 403, 429 with their headers) in Open311's error shape."""
    status, headers = refusal_status(error)
    return error_list(status, str(error), headers)


Handler = Callable[[web.Request, Caller], Awaitable[web.StreamResponse]]


class Door(Protocol):
    """How the gateway puts a handler behind its token check (``PatrolGateway._door``)."""

    def __call__(
        self, handler: Handler, *roles: Role, refuse: Callable[[InputRejected], web.Response]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]: ...


class Open311:
    """The GeoReport v2 read endpoints over the gateway's category table and its copy of the cases."""

    def __init__(self, rules: RoutingRules, cases: CaseView | None) -> None:
        self.rules = rules
        self.cases = cases
        self._services = _SERVICES.dump_json(services(rules))

    def routes(self, door: Door) -> list[web.RouteDef]:
        """The routes, each behind ``door`` for every role that may read cases."""
        return [
            *(web.get(path, door(self.get_services, *CASE_READERS, refuse=refusal)) for path in SERVICES_PATHS),
            *(web.get(path, door(self.get_request, *CASE_READERS, refuse=refusal)) for path in REQUEST_PATHS),
        ]

    async def get_services(self, _request: web.Request, _caller: Caller) -> web.Response:
        """Every category as a service."""
        return web.Response(body=self._services, content_type="application/json")

    async def get_request(self, request: web.Request, _caller: Caller) -> web.Response:
        """One case as a list of one request; 404 (or 503 while the gateway still reads the cases) if unknown."""
        wanted = request.match_info["service_request_id"]
        if self.cases is None:
            return error_list(404, "this gateway follows no cases; ask the gateway of the town's hub")
        published = self.cases.published(wanted)
        if published is None and not self.cases.caught_up:
            return error_list(
                503,
                f"the gateway is still reading the cases; ask again in {RETRY_AFTER_S} seconds",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        if published is None:
            return error_list(
                404, f"no case has the id or a report with the id {wanted[:64]!r}; a new report takes a moment"
            )
        answer = service_request(published, self.rules, self.cases.flow.terminal)
        return web.Response(body=_REQUESTS.dump_json([answer], exclude_none=True), content_type="application/json")
