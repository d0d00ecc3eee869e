"""OpenAPI 3.1 documents of the hub's HTTP doors, built from the pydantic models that validate their requests.

Each service builds its document in one place (``connectors/gateway_openapi.py``,
``warehouse/query_openapi.py``) with :class:`ApiDocument`, which turns a model into a schema under
``components/schemas`` (its nested models included), so a field added to a request model is in
the document at once. The error shape, the bearer-token scheme and the refusals every door gives
(401, 403, 429) are written here once.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from foundation.swagger_ui import PAGE_PATH, Served, page_files

OPENAPI_VERSION = "3.1.0"
DOCUMENT_PATH = "/openapi.json"
PAGE_DOCUMENT_PATH = f"{PAGE_PATH}/openapi-3.0.json"
"""The same document in OpenAPI 3.0, which the page's Swagger UI 4 reads (see :func:`as_openapi_30`)."""
REF_TEMPLATE = "#/components/schemas/{model}"
BEARER = "bearer"
"""The name of the security scheme every guarded operation asks for."""
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the same request again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
DOOR_REFUSALS: dict[int, str] = {
    401: "No token, or one the token book does not know (or has revoked): send `Authorization: Bearer <token>`.",
    403: "The token's role (or what it is bound to) does not allow this.",
    429: "This token calls faster than `GRIDHUB_RATE_LIMIT` allows; wait `Retry-After` seconds.",
}
"""What the token check at every guarded door answers (``foundation.access.Doorkeeper``)."""
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": 'Always `Bearer realm="gridhub"`.', "schema": {"type": "string"}}},
    429: RETRY_AFTER,
    503: RETRY_AFTER,
}


class ErrorBody(BaseModel):
    """Every refusal of a gridhub door: a code a program can test, and a sentence saying what to fix."""

    error: str = Field(description="A stable reason code, e.g. `unauthenticated`, `invalid_lat`, `illegal_transition`.")
    reason: str = Field(description="What went wrong and what to do about it, in one sentence.")


def hub_version() -> str:
    """The installed gridhub's version, which is the version of every document."""
    return importlib.metadata.version("gridhub")


class ApiDocument:
    """One service's OpenAPI document under construction: operations in, a JSON-ready dict out."""

    def __init__(self, title: str, description: str, error_model: type[Any] = ErrorBody) -> None:
        self.title = title
        self.description = description
        self.paths: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, Any] = {}
        self.error = self.schema(error_model)

    def schema(self, shape: Any, mode: Literal["validation", "serialization"] = "validation") -> dict[str, Any]:
        """A reference to ``shape`` (a model, a dataclass, ``list[Model]``...) with its definitions in components.

        A named type is kept under its own name; any other shape is inlined, its nested models kept by name.
        """
        generated = TypeAdapter(shape).json_schema(ref_template=REF_TEMPLATE, mode=mode)
        self.schemas.update(generated.pop("$defs", {}))
        name = getattr(shape, "__name__", None)
        if name is None or not isinstance(shape, type):
            return generated
        self.schemas[name] = generated
        return {"$ref": REF_TEMPLATE.format(model=name)}

    def query_parameters(self, shape: Any) -> list[dict[str, Any]]:
        """The query parameters a model (or dataclass) reads, one per field, each with its schema and description."""
        generated = TypeAdapter(shape).json_schema(ref_template=REF_TEMPLATE)
        required = set(generated.get("required", ()))
        parameters = []
        for name, property_schema in generated["properties"].items():
            schema = {key: value for key, value in property_schema.items() if key not in ("title", "description")}
            if schema.get("default", "") is None:
                del schema["default"]
            alternatives = [item for item in schema.pop("anyOf", ()) if item != {"type": "null"}]
            if len(alternatives) == 1:  # an absent parameter is the None; a query string cannot say null
                schema.update(alternatives[0])
            elif alternatives:
                schema["anyOf"] = alternatives
            parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if "description" in property_schema:
                parameter["description"] = property_schema["description"]
            parameters.append(parameter)
        return parameters

    def refusals(self, statuses: Mapping[int, str], error: dict[str, Any] | None = None) -> dict[str, Any]:
        """The answers for each refusal status, in the door's error shape (or ``error``), with their headers."""
        answers: dict[str, Any] = {}
        shape = error or self.error
        for status, meaning in sorted(statuses.items()):
            answer: dict[str, Any] = {"description": meaning, "content": {"application/json": {"schema": shape}}}
            if status in _HEADERS:
                answer["headers"] = _HEADERS[status]
            answers[str(status)] = answer
        return answers

    def add(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        description: str = "",
        roles: Sequence[str] | None,
        answers: Mapping[int, dict[str, Any]],
        refusals: Mapping[int, str] | None = None,
        parameters: Sequence[dict[str, Any]] = (),
        body: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        error: dict[str, Any] | None = None,
    ) -> None:
        """Document one operation: ``roles`` None is an open door, else the token roles it admits (401/403/429 added).

        ``answers`` are the successful responses by status, ``refusals`` the other statuses and what each
        means, answered in the door's error shape unless ``error`` gives the operation's own.
        """
        operation: dict[str, Any] = {"summary": summary, "operationId": _operation_id(method, path)}
        if description:
            operation["description"] = description
        if tags:
            operation["tags"] = list(tags)
        if roles is None:
            operation["security"] = []
        else:
            operation["security"] = [{BEARER: []}]
            operation["x-roles"] = list(roles)
            who = ", ".join(roles)
            operation["description"] = f"{operation.get('description', '')}\n\nRoles: {who}.".strip()
            refusals = {**DOOR_REFUSALS, **(refusals or {})}
        if parameters:
            operation["parameters"] = list(parameters)
        if body is not None:
            operation["requestBody"] = body
        operation["responses"] = {str(status): answer for status, answer in answers.items()}
        operation["responses"].update(self.refusals(refusals or {}, error))
        self.paths.setdefault(path, {})[method.lower()] = operation

    def add_documentation(self, served_by: str) -> None:
        """Document the document itself and its page (open doors: see :func:`documentation`)."""
        self.add(
            "get",
            DOCUMENT_PATH,
            summary="This document (OpenAPI 3.1)",
            roles=None,
            answers={200: json_answer("The document.", {"type": "object"})},
            tags=["service"],
        )
        self.add(
            "get",
            PAGE_PATH,
            summary=f"This document as a browsable page (Swagger UI, served by {served_by} itself)",
            roles=None,
            answers={200: {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}},
            tags=["service"],
        )

    def build(self) -> dict[str, Any]:
        """The document, ready for ``json.dumps``."""
        return {
            "openapi": OPENAPI_VERSION,
            "info": {"title": self.title, "version": hub_version(), "description": self.description},
            "paths": self.paths,
            "components": {
                "schemas": dict(sorted(self.schemas.items())),
                "securitySchemes": {
                    BEARER: {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "A token made by `gridhub tokens add`; its role decides the doors it opens.",
                    }
                },
            },
        }


def json_answer(description: str, schema: dict[str, Any], headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A response carrying JSON of ``schema``."""
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = dict(headers)
    return answer


def _operation_id(method: str, path: str) -> str:
    """``get_open311_v2_requests_service_request_id_json``: unique per operation, stable across builds."""
    words = "".join(character if character.isalnum() else "_" for character in path).strip("_")
    return "_".join(part for part in f"{method.lower()}_{words}".split("_") if part)


def as_openapi_30(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document as OpenAPI 3.0.3, for Swagger UI 4 (the one ``swagger-ui-bundle`` ships), which reads no 3.1.

    Only what pydantic's JSON Schema uses beyond 3.0 is rewritten: a ``null`` alternative becomes
    ``nullable``, ``const`` a one-value ``enum``, an ``examples`` list its first ``example``, and a
    numeric ``exclusiveMinimum``/``exclusiveMaximum`` the 3.0 boolean form.
    """
    downgraded = _downgrade(document)
    downgraded["openapi"] = "3.0.3"
    return downgraded


def _downgrade(value: Any) -> Any:
    if isinstance(value, list):
        return [_downgrade(item) for item in value]
    if not isinstance(value, Mapping):
        return value
    node = {key: _downgrade(item) for key, item in value.items()}
    alternatives = node.get("anyOf")
    if isinstance(alternatives, list) and {"type": "null"} in alternatives:
        rest = [item for item in alternatives if item != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" in rest[0]:
            node["allOf"] = rest
        elif len(rest) == 1:
            node = {**rest[0], **node}
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("examples"), list):
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[limit] = node[bound]
            node[bound] = True
    return node


def documentation(document: Mapping[str, Any]) -> dict[str, Served]:
    """Every file of a door's documentation by path: the document, its 3.0 copy for the page, the page and its assets.

    None needs a token: they describe the door, never what is behind it (no record, no personal
    data), and a vendor must be able to read them before it holds a token.
    """

    def as_json(value: Mapping[str, Any]) -> Served:
        return Served(json.dumps(value, ensure_ascii=False).encode(), "application/json")

    return {
        DOCUMENT_PATH: as_json(document),
        PAGE_DOCUMENT_PATH: as_json(as_openapi_30(document)),
        **page_files(document["info"]["title"], PAGE_DOCUMENT_PATH.lstrip("/")),
    }
