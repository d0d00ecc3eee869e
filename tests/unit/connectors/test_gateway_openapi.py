"""The gateway's OpenAPI document and its Open311 read side, on the real application with no broker behind it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from connectors.case_view import CaseView, PublishedCase
from connectors.gateway_openapi import gateway_document
from connectors.open311 import REQUEST_PATHS, SERVICES_PATHS, service_request, services
from connectors.patrol_http import Limits, PatrolGateway
from connectors.photos import PhotoStore
from foundation.access import Doorkeeper, RateLimiter, TokenBook
from foundation.settings import Settings
from foundation.swagger_ui import PAGE_PATH, page_files
from schemas.grid import Grid
from schemas.openapi import DOCUMENT_PATH, PAGE_DOCUMENT_PATH, as_openapi_30
from schemas.records import CaseRecord
from streams.case_flow import load_flow
from streams.routing import load_rules

REQUEST_PATH, BARE_REQUEST_PATH = REQUEST_PATHS
SERVICES_PATH, BARE_SERVICES_PATH = SERVICES_PATHS
LIMITS = Limits(record_bytes=100_000, photos=2, track_points=10)
RULES = load_rules(Settings().routing_rules)
FLOW = load_flow()
PAGE_ASSETS = {*page_files("", ""), PAGE_DOCUMENT_PATH} - {PAGE_PATH}
"""What the page loads: served, but no operation of the API."""


def case(status: str = "dispatched", **changes: Any) -> CaseRecord:
    fields: dict[str, Any] = {
        "case_id": "R-1",
        "category": "0404",
        "category_name": "下水道堵塞或破损",
        "department": "water",
        "community": "河西村",
        "reporter_id": "GW021",
        "status": status,
        "reported_at": "2026-11-25T08:30:00+08:00",
        "due_at": "2026-11-25T20:30:00+08:00",
        "report_ids": ["R-1", "R-2"],
        "report_count": 2,
        "seq": 3,
        "rework_count": 0,
        "return_count": 0,
        "lat": 31.97,
        "lon": 119.85,
        **changes,
    }
    return CaseRecord.model_validate(fields)


def gateway(tmp_path: Path, cases: CaseView | None = None) -> tuple[PatrolGateway, TokenBook]:
    book = TokenBook(tmp_path / "tokens.sqlite")
    return PatrolGateway(
        None,  # type: ignore[arg-type]  # nothing here publishes
        RULES,
        Grid.load(Settings().grid_path),
        PhotoStore(tmp_path / "photos", 100_000),
        LIMITS,
        Doorkeeper(book, RateLimiter("1000/second")),
        cases=cases,
    ), book


def served(app: web.Application, calls: Callable[[TestClient], Awaitable[None]]) -> None:
    async def run() -> None:
        async with TestClient(TestServer(app)) as client:
            await calls(client)

    asyncio.run(run())


# --- the document ------------------------------------------------------------------------------------------


def test_every_route_of_the_application_is_in_the_document_and_nothing_else(tmp_path: Path) -> None:
    app = gateway(tmp_path)[0].application()
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    document = gateway_document(LIMITS)
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == {(method, path) for method, path in routes if path not in PAGE_ASSETS}


def test_the_document_is_valid_openapi_and_built_from_the_request_models() -> None:
    document = gateway_document(LIMITS)
    schemathesis.openapi.from_dict(document).validate()
    schemathesis.openapi.from_dict(as_openapi_30(document)).validate()
    report = document["paths"]["/v1/reports"]["post"]
    assert report["x-roles"] == ["device", "commander"]
    assert set(report["responses"]) == {"202", "400", "401", "403", "413", "415", "422", "429", "503"}
    form = report["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["photo"]["maxItems"] == LIMITS.photos
    assert set(document["paths"]["/v1/updates"]["post"]["responses"]) >= {"404", "409"}
    reported_at = document["components"]["schemas"]["ReportBody"]["properties"]["reported_at"]["anyOf"][0]
    assert reported_at["pattern"].startswith("^\\d{4}")
    points = document["paths"]["/v1/tracks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert points["allOf"][1]["properties"]["points"]["maxItems"] == LIMITS.track_points
    open311 = document["paths"][REQUEST_PATH]["get"]
    assert open311["responses"]["404"]["content"]["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/Open311Error"
    }
    assert document["paths"]["/healthz"]["get"]["security"] == []


def test_the_document_and_its_page_need_no_token(tmp_path: Path) -> None:
    async def calls(client: TestClient) -> None:
        answer = await client.get(DOCUMENT_PATH)
        assert answer.status == 200 and (await answer.json())["openapi"] == "3.1.0"
        page = await client.get("/docs")
        assert page.status == 200 and page.content_type == "text/html"
        assert "swagger-ui-bundle.js" in await page.text()
        script = await client.get("/docs/swagger-ui-bundle.js")
        assert script.status == 200 and script.content_type == "text/javascript"
        assert (await client.get("/docs/..%2f..%2fetc%2fpasswd")).status == 404

    served(gateway(tmp_path)[0].application(), calls)


# --- Open311 -----------------------------------------------------------------------------------------------


def test_services_are_the_category_table() -> None:
    listed = {service.service_code: service for service in services(RULES)}
    assert set(listed) == set(RULES.categories)
    rubbish = listed["0102"]
    assert (rubbish.service_name, rubbish.group, rubbish.metadata, rubbish.type) == (
        "暴露垃圾",
        "sanitation",
        False,
        "realtime",
    )
    assert rubbish.description == "exposed rubbish; handled within 8 hours"
    assert rubbish.keywords == "暴露垃圾,exposed rubbish"
    assert listed["0601"].description.endswith("handled within 5 working days")


def test_a_case_is_open_until_a_final_status_and_its_deadline_is_the_expected_time() -> None:
    published = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    request = service_request(PublishedCase(case(), published), RULES, FLOW.terminal)
    assert request.status == "open" and request.status_notes == "dispatched"
    assert (request.service_code, request.service_name, request.address) == ("0404", "下水道堵塞或破损", "河西村")
    assert request.agency_responsible == RULES.departments["water"]
    assert request.expected_datetime.isoformat() == "2026-11-25T20:30:00+08:00"
    assert request.updated_datetime is not None and request.updated_datetime.isoformat() == "2026-11-25T09:00:00+08:00"
    assert (request.lat, request.long) == (31.97, 119.85)
    for final in ("closed", "rejected", "cancelled"):
        assert service_request(PublishedCase(case(final), None), RULES, FLOW.terminal).status == "closed"
    parked = case("parked", review_at="2026-12-20T00:00:00+08:00")
    notes = service_request(PublishedCase(parked, None), RULES, FLOW.terminal)
    assert notes.status == "open" and "review on 2026-12-20" in notes.status_notes
    assert notes.expected_datetime.date().isoformat() == "2026-12-20"
    overdue = service_request(PublishedCase(case("in_handling", escalation_level=2), None), RULES, FLOW.terminal)
    assert overdue.status_notes == "in_handling; past its deadline, supervision level 2"


def test_open311_requests_over_http_by_case_or_report_id_with_the_standard_error_list(tmp_path: Path) -> None:
    view = CaseView("unused:9092", FLOW)  # never started: records are fed by hand
    gate, book = gateway(tmp_path, view)
    analyst = {"Authorization": f"Bearer {book.add('analyst', 'analyst')}"}
    publisher = {"Authorization": f"Bearer {book.add('civil', 'publisher', source='civil-affairs')}"}
    path = REQUEST_PATH.replace("{service_request_id}", "{}")

    async def calls(client: TestClient) -> None:
        still_reading = await client.get(path.format("R-1"), headers=analyst)
        assert still_reading.status == 503 and "Retry-After" in still_reading.headers
        view._caught_up.set()
        view._take(json.dumps({"record": case().model_dump(mode="json")}).encode())
        for wanted in ("R-1", "R-2"):
            answer = await client.get(path.format(wanted), headers=analyst)
            assert answer.status == 200
            [request] = await answer.json()
            assert (request["service_request_id"], request["status"]) == ("R-1", "open")
            assert "updated_datetime" not in request  # a record fed by hand has no broker time
        unknown = await client.get(path.format("R-404"), headers=analyst)
        assert unknown.status == 404
        [error] = await unknown.json()
        assert error["code"] == 404 and "R-404" in error["description"]
        anonymous = await client.get(path.format("R-1"))
        assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"] == 'Bearer realm="gridhub"'
        assert (await anonymous.json())[0]["code"] == 401
        refused = await client.get(SERVICES_PATH, headers=publisher)
        assert refused.status == 403 and (await refused.json())[0]["code"] == 403
        listed = await client.get(SERVICES_PATH, headers=analyst)
        assert listed.status == 200 and len(await listed.json()) == len(RULES.categories)
        bare = await client.get(BARE_SERVICES_PATH, headers=analyst)
        assert await bare.json() == await listed.json()
        by_bare_path = await client.get(BARE_REQUEST_PATH.replace("{service_request_id}", "R-2"), headers=analyst)
        assert [request["service_request_id"] for request in await by_bare_path.json()] == ["R-1"]

    served(gate.application(), calls)


def test_a_gateway_without_cases_answers_404_in_the_open311_shape(tmp_path: Path) -> None:
    gate, book = gateway(tmp_path)
    desk = {"Authorization": f"Bearer {book.add('desk', 'desk', department='water')}"}

    async def calls(client: TestClient) -> None:
        answer = await client.get(REQUEST_PATH.replace("{service_request_id}", "R-1"), headers=desk)
        assert answer.status == 404 and (await answer.json())[0]["code"] == 404

    served(gate.application(), calls)


def test_the_view_keeps_the_latest_published_case_whatever_its_own_copy_holds() -> None:
    view = CaseView("unused:9092", FLOW)
    at = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    view._take(json.dumps({"record": case("in_handling", seq=4).model_dump(mode="json")}).encode(), at)
    view._take(json.dumps({"record": case("dispatched", seq=3).model_dump(mode="json")}).encode())  # a late resend
    for wanted in ("R-1", "R-2"):
        published = view.published(wanted)
        assert published is not None and (published.record.status, published.published_at) == ("in_handling", at)
    assert view.published("R-3") is None
