"""The SQL endpoint's OpenAPI document and the models its routes read, on the real server over an empty warehouse."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import schemathesis

from foundation.access import TokenBook, doorkeeper_of
from foundation.settings import Settings
from foundation.swagger_ui import PAGE_PATH
from schemas.openapi import as_openapi_30
from warehouse.audit import ensure_audit_table
from warehouse.query_contract import MAX_SQL_PARAMETERS, AuditQuery, BadRequest, SqlQuery, read_body, read_query
from warehouse.query_openapi import query_document
from warehouse.query_server import QueryLimits, QueryServer


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[QueryServer, str]]:
    settings = Settings(data_dir=tmp_path)
    admin = TokenBook(settings.tokens_file).add("admin", "admin")
    connection = duckdb.connect()
    ensure_audit_table(connection)
    server = QueryServer(connection, "127.0.0.1", 0, QueryLimits(), doorkeeper_of(settings))
    server.start()
    try:
        yield server, admin
    finally:
        server.stop()
        connection.close()


def call(server: QueryServer, method: str, path: str, token: str | None = None, **options: Any) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(*server.server.server_address[:2], timeout=30)  # type: ignore[misc]
    headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **options.pop("headers", {})}
    try:
        connection.request(method, path, headers=headers, **options)
        response = connection.getresponse()
        body = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(body) if kind.startswith("application/json") else body
    finally:
        connection.close()


def test_every_route_the_server_answers_is_in_the_document_and_nothing_else(
    endpoint: tuple[QueryServer, str],
) -> None:
    server, _ = endpoint
    document = query_document(server.limits)
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    page_files = {path for path in server.documentation if path.startswith(f"{PAGE_PATH}/")}
    answered = {("get", path) for path in [*server.get_routes, *server.documentation] if path not in page_files}
    assert documented == answered | {("post", "/sql")}


def test_the_document_is_valid_openapi_and_built_from_the_request_models(endpoint: tuple[QueryServer, str]) -> None:
    document = query_document(endpoint[0].limits)
    schemathesis.openapi.from_dict(document).validate()
    schemathesis.openapi.from_dict(as_openapi_30(document)).validate()
    sql = document["paths"]["/sql"]["post"]
    assert sql["x-roles"] == ["analyst", "admin", "commander"]
    assert set(sql["responses"]) == {"200", "400", "401", "403", "413", "429"}
    assert document["components"]["schemas"]["SqlQuery"] == SqlQuery.model_json_schema()
    limit = next(item for item in document["paths"]["/audit"]["get"]["parameters"] if item["name"] == "limit")
    assert limit["schema"]["minimum"] == 1
    assert document["paths"]["/audit"]["get"]["x-roles"] == ["admin"]


def test_bodies_and_queries_that_do_not_fit_are_refused_with_the_field_named() -> None:
    assert read_body(SqlQuery, b'{"sql": "SELECT 1", "other": 2}').sql == "SELECT 1"
    assert read_query(AuditQuery, "limit=5&caller=x&limit=9") == AuditQuery(limit=5, caller="x")
    assert read_body(SqlQuery, b'{"sql": ""}').sql == ""  # the SQL guard refuses it with its own rule: one_statement
    for raw, named in ((b"[]", "JSON body"), (b"{nope", "JSON body"), (b"{}", "sql")):
        with pytest.raises(BadRequest, match=named):
            read_body(SqlQuery, raw)
    for query in ("limit=0", "limit=ten", "limit=1.5"):
        with pytest.raises(BadRequest, match="limit"):
            read_query(AuditQuery, query)


def test_the_server_serves_its_document_openly_and_refuses_bad_requests_with_json(
    endpoint: tuple[QueryServer, str],
) -> None:
    server, admin = endpoint
    status, document = call(server, "GET", "/openapi.json")
    assert status == 200 and document["info"]["title"] == "gridhub SQL endpoint"
    status, page = call(server, "GET", "/docs")
    assert status == 200 and b"swagger-ui-bundle.js" in page
    assert call(server, "GET", "/docs/swagger-ui.css")[0] == 200
    assert call(server, "GET", "/docs/../../etc/passwd")[0] == 404
    commander = server.doorkeeper.book.add("centre", "commander")
    assert call(server, "POST", "/sql", commander, body=b'{"sql": "SELECT 41 + 1"}')[1]["rows"] == [[42]]
    status, refused = call(server, "POST", "/sql", admin, body=b'{"query": "SELECT 1"}')
    assert (status, refused["error"]) == (400, "bad_request") and "sql" in refused["reason"]
    status, refused = call(server, "POST", "/sql", admin, headers={"Content-Length": "2000000"})
    assert (status, refused["error"]) == (413, "too_large")
    status, refused = call(server, "GET", "/audit?limit=-3", admin)
    assert (status, refused["error"]) == (400, "bad_request")
    assert call(server, "GET", "/audit?limit=2", admin)[0] == 200


def test_a_query_takes_its_values_as_params_and_the_audit_keeps_them(endpoint: tuple[QueryServer, str]) -> None:
    server, admin = endpoint
    commander = server.doorkeeper.book.add("centre", "commander")
    body = {"sql": "SELECT CAST(? AS INTEGER) + 2 AS n, ? AS word, $3 AS flag", "params": ["40", "网格", True]}
    status, answer = call(server, "POST", "/sql", commander, body=json.dumps(body).encode())
    assert (status, answer["rows"]) == (200, [[42, "网格", True]])
    status, entries = call(server, "GET", "/audit?limit=1", admin)
    assert status == 200
    assert entries["rows"][0][4] == body["sql"] + '\n-- params: ["40", "网格", true]'
    for wrong, code in (
        ({"sql": "SELECT ? AS a", "params": []}, "sql_error"),
        ({"sql": "SELECT 1", "params": [1]}, "sql_error"),
        ({"sql": "SELECT ? AS a", "params": [{"nested": 1}]}, "bad_request"),
        ({"sql": "SELECT ? AS a", "params": [[1, 2]]}, "bad_request"),
        ({"sql": "SELECT 1", "params": list(range(MAX_SQL_PARAMETERS + 1))}, "bad_request"),
    ):
        status, refused = call(server, "POST", "/sql", commander, body=json.dumps(wrong).encode())
        assert (status, refused["error"]) == (400, code), wrong
    status, refused = call(server, "POST", "/sql", commander, body=b'{"sql": "SELECT ? AS a", "params": [NaN]}')
    assert (status, refused["error"]) == (400, "bad_request")
