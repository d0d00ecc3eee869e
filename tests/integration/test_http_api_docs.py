"""The documented HTTP API on the real hub: both doors serve their OpenAPI document and page, the gateway answers
Open311 GeoReport v2 for a case as it goes from open to closed, and Schemathesis, generating requests from each
document, never gets a 5xx.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from connectors.open311 import BASE
from foundation import runfiles
from streams.routing import load_rules
from tests.integration.test_case_lifecycle import photo_ref, report, update
from tests.support.hub import Hub, unique, wait_until

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 20
"""Generated requests per documented operation and generation mode: some 800 requests in all, a minute or so."""


def get(url: str, token: str | None = None) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET, errors included."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


def doors(hub: Hub) -> dict[str, str]:
    return {"patrol": hub.stack.url("patrol"), "sink": str(runfiles.discover(hub.settings, "sink")["url"])}


def open311_request(hub: Hub, request_id: str) -> tuple[int, Any]:
    status, _, body = get(f"{hub.stack.url('patrol')}{BASE}/requests/{request_id}.json", hub.tokens.analyst)
    return status, json.loads(body)


def shown(hub: Hub, request_id: str, status: str) -> dict[str, Any] | None:
    """The Open311 request once the gateway shows the case in gridhub's ``status``, else None (not yet).

    The notes start with that status; a case reported days ago in test time also says it is overdue.
    """
    code, answer = open311_request(hub, request_id)
    if code != 200 or answer[0]["status_notes"].split(";")[0] != status:
        return None
    [request] = answer
    return request


def test_both_doors_serve_their_document_and_a_page_that_needs_nothing_from_another_host(hub: Hub) -> None:
    for name, url in doors(hub).items():
        status, kind, body = get(f"{url}/openapi.json")
        assert (status, kind) == (200, "application/json"), name
        document = json.loads(body)
        assert document["openapi"] == "3.1.0" and "bearer" in document["components"]["securitySchemes"]
        status, kind, page = get(f"{url}/docs")
        assert (status, kind) == (200, "text/html"), name
        assert b"https://" not in page and b"http://" not in page
        assert get(f"{url}/docs/swagger-ui-bundle.js")[0] == 200


def test_open311_lists_the_categories_and_follows_a_case_from_open_to_closed(hub: Hub) -> None:
    status, _, body = get(f"{hub.stack.url('patrol')}{BASE}/services.json", hub.tokens.analyst)
    assert status == 200
    services = {service["service_code"]: service for service in json.loads(body)}
    assert set(services) == set(load_rules(hub.settings.routing_rules).categories)
    assert services["0404"]["service_name"] == "下水道堵塞或破损" and services["0404"]["group"] == "water"

    case_id, reporter = unique("R-OPEN311"), f"GW-{unique('O')[-6:]}"
    assert hub.post("/v1/reports", report(case_id, reporter=reporter))[0] == 202
    request = wait_until(lambda: shown(hub, case_id, "dispatched"), what=f"the gateway to show {case_id} dispatched")
    assert (request["service_request_id"], request["status"], request["service_code"]) == (case_id, "open", "0404")
    assert request["expected_datetime"] == "2026-11-25T20:30:00+08:00"  # reported 08:30, 12 hours to handle
    assert request["agency_responsible"] == load_rules(hub.settings.routing_rules).departments["water"]
    assert set(request) >= {"requested_datetime", "updated_datetime", "lat", "long"}

    handled_photo, verified_photo = photo_ref(hub), photo_ref(hub)
    for step in (
        update(case_id, "in_handling", "2026-11-25T09:00:00+08:00", "desk-water"),
        update(case_id, "handled", "2026-11-25T10:00:00+08:00", "desk-water", photo_ref=handled_photo),
        update(case_id, "verified", "2026-11-25T10:30:00+08:00", reporter, photo_ref=verified_photo),
        update(case_id, "closed", "2026-11-25T10:45:00+08:00", "command-centre"),
    ):
        assert hub.post("/v1/updates", step)[0] == 202
    closed = wait_until(lambda: shown(hub, case_id, "closed"), what=f"the gateway to show {case_id} closed")
    assert closed["status"] == "closed"

    status, errors = open311_request(hub, unique("R-NONE"))
    assert status == 404 and [error["code"] for error in errors] == [404]


def no_server_errors(document_url: str, token: str) -> list[str]:
    """Every generated request (positive and negative) the door answered with a 5xx or not at all."""
    schema = schemathesis.openapi.from_url(document_url)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in schemathesis.GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def call(case: schemathesis.Case) -> None:
                try:
                    status = case.call(headers=headers, timeout=60).status_code
                except requests.ConnectionError as exc:
                    failures.append(f"{case.method} {case.formatted_path}: no answer ({exc})")
                    return
                if status >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {status} for {case.as_curl_command()}")

            try:
                call()
            except Unsatisfiable:
                # Nothing of the operation can be made invalid (no parameter, no body, or only free text).
                assert mode is schemathesis.GenerationMode.NEGATIVE, f"{operation.label}: no valid request to make"
    return failures


def test_requests_generated_from_each_document_never_get_a_server_error(hub: Hub) -> None:
    """As the command centre at the gateway (every record door but tracks), as an admin at the SQL door."""
    urls = doors(hub)
    for name, token in (("patrol", hub.tokens.commander), ("sink", hub.admin)):
        assert no_server_errors(f"{urls[name]}/openapi.json", token) == [], name
