"""Patrol devices: grid workers' phones post incident reports and lifecycle updates over HTTP.

A report is answered 202 only after Kafka has it, so a phone that got 202 may
forget the report; anything else (4xx with a JSON reason, or 503 when Kafka is
unreachable) tells the phone to fix or retry. Reports are checked with the same
rules the stream applies, so a phone learns at once that a category is unknown.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp import web
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from connectors.base import Connector, RawPublisher
from schemas.records import EntityKind
from schemas.topics import RAW_PATROL
from streams.normalise import Rejected, normalise
from streams.routing import RoutingRules

JSON_TYPES = {"application/json"}


def _error(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"error": code, "reason": reason}, status=status)


async def _acknowledged(future: FutureRecordMetadata, timeout_s: float) -> None:
    """Wait for kafka-python's delivery future without blocking the event loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if not done.done():
            done.set_exception(error) if error else done.set_result(None)

    future.add_callback(lambda _metadata: loop.call_soon_threadsafe(settle, None))
    future.add_errback(lambda error: loop.call_soon_threadsafe(settle, error))
    await asyncio.wait_for(done, timeout_s)


class PatrolGateway(Connector):
    """The HTTP endpoint for patrol terminals."""

    topic = RAW_PATROL

    def __init__(self, publisher: RawPublisher, rules: RoutingRules, max_body_bytes: int) -> None:
        super().__init__(publisher, source="patrol")
        self.rules = rules
        self.max_body_bytes = max_body_bytes

    def application(self) -> web.Application:
        """The aiohttp application with the gateway's routes."""
        app = web.Application(client_max_size=self.max_body_bytes)
        app.add_routes(
            [
                web.post("/v1/reports", self.post_report),
                web.post("/v1/updates", self.post_update),
                web.get("/healthz", self.health),
            ]
        )
        return app

    async def health(self, _request: web.Request) -> web.Response:
        """Liveness for docker-compose and the supervisor."""
        return web.json_response({"status": "ok"})

    async def post_report(self, request: web.Request) -> web.Response:
        """Accept one incident report; ``report_id`` lets a retrying phone be recognised."""
        return await self._accept(request, "event", id_field="report_id", rename={"report_id": "event_id"})

    async def post_update(self, request: web.Request) -> web.Response:
        """Accept one lifecycle update of an event."""
        return await self._accept(request, "event_update", id_field="update_id", rename={})

    async def _accept(
        self, request: web.Request, entity: EntityKind, id_field: str, rename: dict[str, str]
    ) -> web.Response:
        body = await self._read_json(request)
        if isinstance(body, web.Response):
            return body
        record_id = str(body.get(id_field) or uuid.uuid4().hex)
        payload = {rename.get(key, key): value for key, value in body.items()}
        payload[rename.get(id_field, id_field)] = record_id
        if entity == "event":
            payload.setdefault("photo_refs", payload.pop("photos", []))
        envelope = self.envelope(record_id, entity, payload)
        decision = normalise(envelope.model_dump_json().encode(), self.rules)
        if isinstance(decision, Rejected):
            return _error(422, decision.reject.reason_code, decision.reject.reason)
        try:
            await _acknowledged(self.send(envelope), timeout_s=15)
        except (KafkaError, TimeoutError) as exc:
            return _error(503, "kafka_unavailable", f"report not stored, retry later ({type(exc).__name__})")
        return web.json_response(
            {"status": "accepted", id_field: record_id, "record_uid": envelope.record_uid}, status=202
        )

    async def _read_json(self, request: web.Request) -> dict[str, Any] | web.Response:
        if request.content_type not in JSON_TYPES:
            return _error(415, "unsupported_media_type", f"send application/json, not {request.content_type!r}")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "too_large", f"body exceeds {self.max_body_bytes} bytes")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, "bad_json", f"body is not valid JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "bad_json", f"body must be a JSON object, got {type(body).__name__}")
        return body
