"""The shared OpenAPI builder: models into components, the door's refusals, the 3.0 copy, the served files."""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from jsonschema_rs import ValidationError
from pydantic import BaseModel, Field

from schemas.openapi import (
    DOCUMENT_PATH,
    PAGE_DOCUMENT_PATH,
    ApiDocument,
    ErrorBody,
    as_openapi_30,
    documentation,
    json_answer,
)


class Inner(BaseModel):
    at: str = Field(examples=["2026-11-25T09:15:00+08:00"])
    kind: str = Field(default="point", json_schema_extra={"const": "point"})


class Outer(BaseModel):
    name: str | None = None
    inner: Inner | None = None
    weight: float = Field(default=1, gt=0)


class Query(BaseModel):
    limit: int = Field(default=10, ge=1, description="How many.")
    who: str | None = None


def sample() -> dict:
    document = ApiDocument("sample", "A door for tests.")
    document.add(
        "post",
        "/things/{thing_id}",
        summary="Guarded",
        roles=("analyst", "admin"),
        parameters=[{"name": "thing_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        body={"required": True, "content": {"application/json": {"schema": document.schema(Outer)}}},
        answers={200: json_answer("Done.", document.schema(list[Outer]))},
        refusals={503: "Later."},
    )
    document.add("get", "/open", summary="Open", roles=None, answers={200: json_answer("Up.", {"type": "object"})})
    document.add(
        "get",
        "/search",
        summary="With a query",
        roles=("analyst",),
        parameters=document.query_parameters(Query),
        answers={200: json_answer("Found.", {"type": "object"})},
    )
    return document.build()


def test_models_and_their_nested_models_become_components_referenced_by_name() -> None:
    document = sample()
    schemas = document["components"]["schemas"]
    assert set(schemas) == {"Outer", "Inner", "ErrorBody"}
    assert schemas["ErrorBody"] == ErrorBody.model_json_schema()
    body = document["paths"]["/things/{thing_id}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Outer"}
    assert "$defs" not in json.dumps(document)
    assert all(
        ref.removeprefix("#/components/schemas/") in schemas
        for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(document))
    )


def test_a_guarded_operation_asks_for_the_bearer_token_and_lists_the_door_refusals() -> None:
    document = sample()
    guarded = document["paths"]["/things/{thing_id}"]["post"]
    assert guarded["security"] == [{"bearer": []}]
    assert guarded["x-roles"] == ["analyst", "admin"]
    assert "Roles: analyst, admin." in guarded["description"]
    assert set(guarded["responses"]) == {"200", "401", "403", "429", "503"}
    assert "WWW-Authenticate" in guarded["responses"]["401"]["headers"]
    assert "Retry-After" in guarded["responses"]["429"]["headers"]
    assert "Retry-After" in guarded["responses"]["503"]["headers"]
    error = guarded["responses"]["403"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    open_door = document["paths"]["/open"]["get"]
    assert open_door["security"] == [] and set(open_door["responses"]) == {"200"}
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }


def test_query_parameters_come_from_the_model_fields_without_null() -> None:
    parameters = sample()["paths"]["/search"]["get"]["parameters"]
    assert parameters == [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"default": 10, "minimum": 1, "type": "integer"},
            "description": "How many.",
        },
        {"name": "who", "in": "query", "required": False, "schema": {"type": "string"}},
    ]


def test_the_built_document_is_valid_openapi_3_1_and_its_copy_valid_3_0() -> None:
    document = sample()
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()
    copy = as_openapi_30(document)
    assert copy["openapi"] == "3.0.3"
    schemathesis.openapi.from_dict(copy).validate()


def test_the_validator_used_above_does_refuse_an_invalid_document() -> None:
    broken = sample()
    broken["paths"]["/open"]["get"]["responses"] = "none"
    with pytest.raises(ValidationError):
        schemathesis.openapi.from_dict(broken).validate()


def test_the_3_0_copy_rewrites_what_3_0_lacks() -> None:
    schemas = as_openapi_30(sample())["components"]["schemas"]
    outer = schemas["Outer"]["properties"]
    assert outer["name"] == {"type": "string", "nullable": True, "default": None, "title": "Name"}
    assert outer["inner"]["allOf"] == [{"$ref": "#/components/schemas/Inner"}] and outer["inner"]["nullable"]
    assert outer["weight"]["minimum"] == 0 and outer["weight"]["exclusiveMinimum"] is True
    inner = schemas["Inner"]["properties"]
    assert inner["at"]["example"] == "2026-11-25T09:15:00+08:00" and "examples" not in inner["at"]
    assert inner["kind"]["enum"] == ["point"] and "const" not in inner["kind"]


def test_the_documentation_is_served_whole_from_memory_with_nothing_from_another_host() -> None:
    document = sample()
    files = documentation(document)
    assert json.loads(files[DOCUMENT_PATH].body) == document
    assert json.loads(files[PAGE_DOCUMENT_PATH].body)["openapi"] == "3.0.3"
    page = files["/docs"].body.decode()
    assert files["/docs"].content_type.startswith("text/html")
    assert "default-src 'self'" in files["/docs"].headers["Content-Security-Policy"]
    linked = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert linked and all(f"/{link}" in files for link in linked), linked
    assert "http://" not in page and "https://" not in page
    initializer = files["/docs/swagger-initializer.js"].body.decode()
    assert json.dumps(PAGE_DOCUMENT_PATH.lstrip("/")) in initializer
    assert len(files["/docs/swagger-ui-bundle.js"].body) > 100_000
