"""Patrol devices: grid workers' phones post incident reports and lifecycle updates over HTTP.

A report is answered 202 only after Kafka has it, so a phone that got 202 may
forget the report; anything else (4xx with a JSON reason, or 503 when Kafka is
unreachable) tells the phone to fix or retry. Reports are checked with the same
rules the stream applies, so a phone learns at once that a category is unknown.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from kafka.producer.future import FutureRecordMetadata

from connectors.base import Connector
from connectors.case_view import CaseView
from connectors.photos import PhotoRejected, PhotoStore
from connectors.publisher import RawPublisher, kafka_failure
from foundation.errors import BrokerUnavailable, GridhubError, InputRejected
from foundation.logs import get_logger
from schemas.grid import Grid
from schemas.records import EntityKind, EventUpdate
from schemas.topics import RAW_PATROL
from streams.normalise import Rejected, normalise_envelope
from streams.routing import RoutingRules

JSON_TYPES = {"application/json"}
ACK_TIMEOUT_S = 15.0
"""How long a phone waits for Kafka's acknowledgement before it is told to retry (503)."""
log = get_logger(__name__)


@dataclass(frozen=True)
class Limits:
    """Size limits that keep one phone from exhausting the gateway."""

    record_bytes: int
    photos: int
    track_points: int


def _error(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"error": code, "reason": reason}, status=status)


async def _acknowledged(future: FutureRecordMetadata, what: str) -> None:
    """Wait for kafka-python's delivery future without blocking the event loop; failures in the taxonomy."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if not done.done():
            done.set_exception(kafka_failure(error, what)) if error else done.set_result(None)

    future.add_callback(lambda _metadata: loop.call_soon_threadsafe(settle, None))
    future.add_errback(lambda error: loop.call_soon_threadsafe(settle, error))
    try:
        await asyncio.wait_for(done, ACK_TIMEOUT_S)
    except TimeoutError as exc:
        raise BrokerUnavailable(f"{what}: Kafka did not acknowledge within {ACK_TIMEOUT_S:g}s") from exc


def _unstored(error: GridhubError, what: str) -> web.Response:
    """The answer when Kafka did not take a record: too large is the phone's to fix, anything else a retry later."""
    if isinstance(error, InputRejected):
        return _error(413, error.reason_code, str(error))
    if not isinstance(error, BrokerUnavailable):
        log.error("Kafka refused a record; the gateway cannot store anything until this is fixed", error=str(error))
    return _error(503, "kafka_unavailable", f"{what} not stored, retry later ({error})")


@dataclass
class Submission:
    """A request body: the JSON record and any photos uploaded with it."""

    record: dict[str, Any]
    photos: list[bytes] = field(default_factory=list)


class PatrolGateway(Connector):
    """The HTTP endpoint for patrol terminals."""

    source = "patrol"
    topic = RAW_PATROL

    def __init__(
        self,
        publisher: RawPublisher,
        rules: RoutingRules,
        grid: Grid,
        photos: PhotoStore,
        limits: Limits,
        cases: CaseView | None = None,
        address: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        super().__init__(publisher)
        self.rules = rules
        self.grid = grid
        self.cases = cases
        self.photos = photos
        self.limits = limits
        self.address = address
        self._socket: socket.socket | None = None

    def prepare(self) -> dict[str, Any]:
        """Start following the cases and take the port, so the announced URL already answers."""
        if self.cases is not None:
            self.cases.start()
        host, port = self.address
        self._socket = socket.create_server((host, port))
        return {"url": f"http://{host}:{self._socket.getsockname()[1]}"}

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set; requests in flight are answered before the server closes."""
        asyncio.run(self._serve(stop))

    async def _serve(self, stop: threading.Event) -> None:
        if self._socket is None:
            raise RuntimeError("prepare() binds the gateway's socket before run()")
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        await web.SockSite(runner, self._socket).start()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    def close(self) -> None:
        """Stop following the cases, release the port and the producer."""
        if self.cases is not None:
            self.cases.stop()
        if self._socket is not None:
            self._socket.close()
        super().close()

    def application(self) -> web.Application:
        """The aiohttp application with the gateway's routes."""
        app = web.Application(client_max_size=self.limits.record_bytes)
        app.add_routes(
            [
                web.post("/v1/reports", self.post_report),
                web.post("/v1/updates", self.post_update),
                web.post("/v1/tracks", self.post_tracks),
                web.get("/v1/photos/{reference}", self.get_photo),
                web.get("/healthz", self.health),
            ]
        )
        return app

    async def health(self, _request: web.Request) -> web.Response:
        """Liveness for docker-compose and the supervisor."""
        return web.json_response({"status": "ok"})

    async def get_photo(self, request: web.Request) -> web.StreamResponse:
        """Serve a stored photo by its reference, for desks checking a case."""
        path = self.photos.find(request.match_info["reference"])
        if path is None:
            return _error(404, "unknown_photo", "no photo with that reference; references look like sha256:<64 hex>")
        return web.FileResponse(path)

    async def post_report(self, request: web.Request) -> web.Response:
        """Accept one incident report; ``report_id`` lets a retrying phone be recognised."""
        submission = await self._read(request, "report")
        if isinstance(submission, web.Response):
            return submission
        body = submission.record
        report_id = str(body.get("report_id") or uuid.uuid4().hex)
        payload = {key: value for key, value in body.items() if key not in ("report_id", "photos")}
        payload["event_id"] = report_id
        payload["photo_refs"] = list(body.get("photos") or [])
        return await self._publish(report_id, "event", payload, submission.photos, "report_id")

    async def post_update(self, request: web.Request) -> web.Response:
        """Accept one lifecycle update of an event, optionally with a photo."""
        submission = await self._read(request, "update")
        if isinstance(submission, web.Response):
            return submission
        payload = dict(submission.record)
        update_id = str(payload.get("update_id") or uuid.uuid4().hex)
        payload["update_id"] = update_id
        return await self._publish(update_id, "event_update", payload, submission.photos, "update_id")

    async def post_tracks(self, request: web.Request) -> web.Response:
        """Accept a batch of patrol track points from one worker, all or nothing."""
        submission = await self._read(request, "track")
        if isinstance(submission, web.Response):
            return submission
        worker = submission.record.get("worker_id")
        points = submission.record.get("points")
        if not isinstance(points, list) or not points or len(points) > self.limits.track_points:
            return _error(422, "invalid_points", f"points must be a list of 1 to {self.limits.track_points} points")
        envelopes = []
        for number, point in enumerate(points):
            if not isinstance(point, dict):
                return _error(422, "invalid_points", f"point {number} is not an object")
            payload = {**point, "worker_id": worker}
            envelope = self.envelope(f"{worker}|{point.get('at')}", "track_point", payload)
            decision = normalise_envelope(envelope, self.rules, self.grid)
            if isinstance(decision, Rejected):
                return _error(422, decision.reject.reason_code, f"point {number}: {decision.reject.reason}")
            envelopes.append(envelope)
        try:
            stored = (_acknowledged(self.send(envelope), "storing a track point") for envelope in envelopes)
            await asyncio.gather(*stored)
        except GridhubError as exc:
            return _unstored(exc, "track")
        return web.json_response({"status": "accepted", "points": len(envelopes)}, status=202)

    async def _publish(
        self, record_id: str, entity: EntityKind, payload: dict[str, Any], photos: list[bytes], id_field: str
    ) -> web.Response:
        """Store photos, validate with the stream's own rules, and answer only once Kafka has the record."""
        try:
            references = [self.photos.put(photo) for photo in photos]
        except PhotoRejected as exc:
            return _error(413 if exc.code == "photo_too_large" else 415, exc.code, str(exc))
        if references and entity == "event":
            payload["photo_refs"] = [*payload.get("photo_refs", []), *references]
        elif references:
            payload["photo_ref"] = references[0]
        envelope = self.envelope(record_id, entity, payload)
        # The envelope is checked as built: the stream will read the same envelope from its JSON.
        decision = normalise_envelope(envelope, self.rules, self.grid)
        if isinstance(decision, Rejected):
            return _error(422, decision.reject.reason_code, decision.reject.reason)
        if self.cases is not None and isinstance(decision.record, EventUpdate):
            refusal = self.cases.refuse(decision.record)
            if refusal is not None:
                return _error(*refusal)
        try:
            await _acknowledged(self.send(envelope), f"storing {id_field} {record_id}")
        except GridhubError as exc:
            return _unstored(exc, "record")
        if self.cases is not None and entity == "event":
            self.cases.note_report(record_id)
        answer = {"status": "accepted", id_field: record_id, "record_uid": envelope.record_uid, "photos": references}
        return web.json_response(answer, status=202)

    async def _read(self, request: web.Request, json_part: str) -> Submission | web.Response:
        """Read a JSON body, or a multipart form with a JSON part and ``photo`` file parts."""
        if request.content_type == "multipart/form-data":
            return await self._read_multipart(request, json_part)
        if request.content_type not in JSON_TYPES:
            return _error(
                415,
                "unsupported_media_type",
                f"send application/json or multipart/form-data, not {request.content_type!r}",
            )
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "too_large", f"body exceeds {self.limits.record_bytes} bytes")
        return _parse_record(raw)

    async def _read_multipart(self, request: web.Request, json_part: str) -> Submission | web.Response:
        record: Submission | web.Response | None = None
        photos: list[bytes] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                return _error(400, "bad_multipart", "nested multipart bodies are not accepted")
            if part.name == json_part:
                data = await _read_limited(part, self.limits.record_bytes)
                if data is None:
                    return _error(413, "too_large", f"the {json_part!r} part exceeds {self.limits.record_bytes} bytes")
                record = _parse_record(data)
            elif part.name == "photo":
                if len(photos) == self.limits.photos:
                    return _error(413, "too_many_photos", f"at most {self.limits.photos} photos per request")
                data = await _read_limited(part, self.photos.max_bytes)
                if data is None:
                    return _error(413, "photo_too_large", f"a photo exceeds {self.photos.max_bytes} bytes")
                photos.append(data)
            else:
                return _error(400, "bad_multipart", f"unexpected part {part.name!r}; send {json_part!r} and 'photo'")
        if record is None:
            return _error(400, "bad_multipart", f"the form has no {json_part!r} part with the JSON record")
        if isinstance(record, web.Response):
            return record
        record.photos = photos
        return record


def _parse_record(raw: bytes) -> Submission | web.Response:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _error(400, "bad_json", f"body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "bad_json", f"body must be a JSON object, got {type(body).__name__}")
    return Submission(record=body)


async def _read_limited(part: BodyPartReader, limit: int) -> bytes | None:
    """Read a multipart part, or None as soon as it grows past ``limit`` bytes."""
    chunks = bytearray()
    while chunk := await part.read_chunk(65536):
        chunks.extend(chunk)
        if len(chunks) > limit:
            return None
    return bytes(chunks)
