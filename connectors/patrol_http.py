"""Patrol devices: grid workers' phones post incident reports and lifecycle updates over HTTP.

A report is answered 202 only once it is in the gateway's journal on disk and Kafka has it,
so a phone that got 202 may forget the report: it reaches the warehouse even if the broker
dies next. Anything else (4xx with a JSON reason, or 503 with ``Retry-After`` when Kafka is
unreachable or the gateway is closing) tells the phone to fix or retry. Reports are checked
with the same rules the stream applies, so a phone learns at once that a category is unknown.
What a body may hold is :mod:`connectors.patrol_bodies`; the connection cap and the JSON
answer to every failure are :mod:`connectors.http_guard`; photos are stored only once the
record they came with is accepted.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from connectors.base import Connector
from connectors.case_view import CaseView
from connectors.gateway_openapi import documentation_routes
from connectors.http_guard import RETRY_AFTER_S, RequestRefused, capped, connection_cap, json_error, json_errors
from connectors.http_metrics import timed_requests
from connectors.open311 import Open311
from connectors.patrol_access import (
    ORDER_READERS,
    PATROLLERS,
    PHOTO_READERS,
    REPORTERS,
    UPDATERS,
    desk_department,
    refusal,
    stamp_report,
    stamp_tracks,
    stamp_update,
)
from connectors.patrol_bodies import parse_record, report_payload, track_payloads, update_payload
from connectors.photos import Photo, PhotoRejected, PhotoStore
from connectors.publisher import RawPublisher, kafka_failure
from connectors.work_orders import WorkOrders
from foundation.access import Caller, Doorkeeper, Forbidden, RateLimited, Role, Unauthenticated
from foundation.errors import BrokerUnavailable, GridhubError, InputRejected, RetryableError
from foundation.logs import get_logger
from schemas.grid import Grid
from schemas.records import EntityKind, EventUpdate, RawEnvelope
from schemas.topics import RAW_PATROL, desk_covers, split_unit
from streams.normalise import Rejected, normalise_envelope
from streams.routing import RoutingRules

JSON_TYPES = {"application/json"}
ACK_TIMEOUT_S = 15.0
"""How long a phone waits for Kafka's acknowledgement before it is told to retry (503)."""
log = get_logger(__name__)


class GatewayClosing(RetryableError):
    """The gateway was asked to stop: it finishes what it holds and takes nothing new."""


def _retry_later(code: str, reason: str) -> web.Response:
    """503 with ``Retry-After``: nothing was stored, and the phone should send the same record again."""
    response = json_error(503, code, reason)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


@dataclass(frozen=True)
class Limits:
    """Size limits that keep one phone, or a crowd of them, from exhausting the gateway."""

    record_bytes: int
    photos: int
    track_points: int
    connections: int = 1000
    """Open client connections at most; further ones are answered 503 (see :func:`connection_cap`)."""
    keepalive_s: float = 15.0
    """An idle connection (no request yet, or none since the last answer) is closed after this long."""


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
        doorkeeper: Doorkeeper,
        cases: CaseView | None = None,
        orders: WorkOrders | None = None,
        address: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        super().__init__(publisher)
        self.rules = rules
        self.grid = grid
        self.cases = cases
        self.photos = photos
        self.limits = limits
        self.doorkeeper = doorkeeper
        self.orders = orders
        self.address = address
        self._socket: socket.socket | None = None
        self.draining = threading.Event()
        """Set when the gateway is told to stop: new records get 503 while those in hand finish."""
        self._in_flight = 0
        self.broker_failed_at: float | None = None
        """When Kafka last failed to acknowledge, until it next does: /healthz says so."""

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
        cap = connection_cap(self.limits.connections)
        if cap < self.limits.connections:
            log.warning(
                "the file-descriptor limit lowers the gateway's connection cap",
                wanted=self.limits.connections,
                cap=cap,
            )
        runner = web.AppRunner(self.application(), access_log=None, keepalive_timeout=self.limits.keepalive_s)
        await runner.setup()
        assert runner.server is not None  # set by setup()
        listener = await asyncio.get_running_loop().create_server(capped(runner.server, cap), sock=self._socket)
        await asyncio.to_thread(stop.wait)
        await self._close_the_door()
        listener.close()
        await runner.cleanup()

    async def _close_the_door(self) -> None:
        """Refuse new records with 503 and ``Retry-After`` until those in hand are stored (or time out)."""
        self.draining.set()
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def close(self) -> None:
        """Stop following the cases, release the port and the producer."""
        if self.cases is not None:
            self.cases.stop()
        if self._socket is not None:
            self._socket.close()
        super().close()

    def application(self) -> web.Application:
        """The aiohttp application with the gateway's routes."""
        app = web.Application(client_max_size=self.limits.record_bytes, middlewares=[timed_requests, json_errors])
        app.add_routes(
            [
                web.post("/v1/reports", self._door(self.post_report, *REPORTERS)),
                web.post("/v1/updates", self._door(self.post_update, *UPDATERS)),
                web.post("/v1/tracks", self._door(self.post_tracks, *PATROLLERS)),
                web.get("/v1/photos/{reference}", self._door(self.get_photo, *PHOTO_READERS)),
                web.get("/v1/orders", self._door(self.get_orders, *ORDER_READERS)),
                web.get("/healthz", self.health),
                *Open311(self.rules, self.cases).routes(self._door),
                *documentation_routes(self.limits),
            ]
        )
        return app

    def _door(
        self,
        handler: Callable[[web.Request, Caller], Awaitable[web.StreamResponse]],
        *roles: Role,
        refuse: Callable[[InputRejected], web.Response] = refusal,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``handler`` behind the token check: 401 without a known token, 403 for another role, 429 when too fast.

        ``refuse`` shapes those answers (Open311 has its own error shape).
        """

        async def admitted(request: web.Request) -> web.StreamResponse:
            try:
                caller = self.doorkeeper.admit(request.headers.get("Authorization"), *roles)
                return await handler(request, caller)
            except (Unauthenticated, Forbidden, RateLimited) as exc:
                return refuse(exc)

        return admitted

    async def health(self, _request: web.Request) -> web.Response:
        """Whether the gateway can take records now: 503 while it closes or while Kafka does not acknowledge."""
        if self.draining.is_set():
            return _retry_later("closing", "the gateway is closing")
        if self.broker_failed_at is not None:
            return _retry_later("kafka_unavailable", "Kafka did not acknowledge the last record; records are refused")
        return web.json_response({"status": "ok"})

    async def get_photo(self, request: web.Request, _caller: Caller) -> web.StreamResponse:
        """Serve a stored photo by its reference, for desks checking a case."""
        path = self.photos.find(request.match_info["reference"])
        if path is None:
            return json_error(
                404, "unknown_photo", "no photo with that reference; references look like sha256:<64 hex>"
            )
        return web.FileResponse(path)

    async def get_orders(self, request: web.Request, caller: Caller) -> web.Response:
        """A desk's work orders past its cursor (long-polls up to ``wait`` s); a commander names the desk unit.

        ``department`` names a desk unit (``water``, ``enforcement.wansui``). A desk reads its own
        unit's orders, and a department's own desk also any of its squads' (the bureau oversees
        them), in its own consumer group so the squad's position stays the squad's.
        """
        if self.orders is None:
            return json_error(404, "not_found", "this gateway serves no work orders")
        desk = desk_department(caller)
        asked = request.query.get("department", desk or "")
        if desk is not None and not desk_covers(desk, *split_unit(asked)):
            raise Forbidden(f"{caller.name} is the desk of {desk}; it cannot read the orders of {asked[:64]}")
        if asked not in self.rules.desk_units():
            return json_error(
                404,
                "unknown_department",
                f"no department {asked[:64]!r} (nor squad desk of one); desks: {self._desks()}",
            )
        start = "beginning" if request.query.get("start") == "beginning" else "committed"
        try:
            wait_s = max(0.0, float(request.query.get("wait", "0")))
        except ValueError:
            return json_error(400, "bad_wait", "wait is a number of seconds")
        try:
            orders, cursor = await asyncio.to_thread(
                self.orders.read, asked, request.query.get("after"), start, wait_s, desk
            )
        except KafkaError as exc:
            return _retry_later("kafka_unavailable", f"the work orders cannot be read now ({type(exc).__name__})")
        return web.json_response({"department": asked, "orders": orders, "cursor": cursor})

    def _desks(self) -> str:
        """The desk units work orders go to, for a reason that names an unknown one."""
        return ", ".join(sorted(self.rules.desk_units()))

    async def post_report(self, request: web.Request, caller: Caller) -> web.Response:
        """Accept one incident report; ``report_id`` lets a retrying phone be recognised."""
        submission = await self._read(request, "report")
        report_id, payload = report_payload(submission.record, self.limits.photos)
        stamp_report(caller, payload)
        return await self._publish(report_id, "event", payload, submission.photos, "report_id")

    async def post_update(self, request: web.Request, caller: Caller) -> web.Response:
        """Accept one lifecycle update of an event, optionally with a photo; the token says who acts."""
        desk = desk_department(caller)
        if desk is not None and desk not in self.rules.desk_units():
            return json_error(
                403,
                "unknown_desk",
                f"{caller.name} is the desk of {desk[:64]!r}, which no work order goes to; desks: {self._desks()}",
            )
        submission = await self._read(request, "update")
        update_id, payload = update_payload(submission.record)
        stamp_update(caller, payload)
        if payload.get("department") is not None and payload["department"] not in self.rules.departments:
            known = ", ".join(sorted(self.rules.departments))
            return json_error(
                422, "unknown_department", f"no department {payload['department']!r}; departments: {known}"
            )
        return await self._publish(update_id, "event_update", payload, submission.photos, "update_id", desk)

    async def post_tracks(self, request: web.Request, caller: Caller) -> web.Response:
        """Accept a batch of patrol track points from one worker, all or nothing."""
        submission = await self._read(request, "track")
        points = track_payloads(submission.record, self.limits.track_points)
        stamp_tracks(caller, points)
        envelopes = []
        for number, (point_id, payload) in enumerate(points):
            envelope = self.envelope(point_id, "track_point", payload)
            decision = normalise_envelope(envelope, self.rules, self.grid)
            if isinstance(decision, Rejected):
                return json_error(422, decision.reject.reason_code, f"point {number}: {decision.reject.reason}")
            envelopes.append(envelope)
        try:
            await self._store(envelopes, "storing a track point")
        except GridhubError as exc:
            return self._unstored(exc, "track")
        return web.json_response({"status": "accepted", "points": len(envelopes)}, status=202)

    async def _publish(
        self,
        record_id: str,
        entity: EntityKind,
        payload: dict[str, Any],
        photos: list[bytes],
        id_field: str,
        desk: str | None = None,
    ) -> web.Response:
        """Check the photos and the record with the stream's own rules, keep the photos, and answer once Kafka has it.

        Photos are written only after the record passed every check, so a refused record leaves nothing on disk.
        """
        checked = [self._photo(data) for data in photos]
        references = [photo.reference for photo in checked]
        if references and entity == "event":
            payload["photo_refs"] = [*payload.get("photo_refs", []), *references]
        elif references:
            payload["photo_ref"] = references[0]
        envelope = self.envelope(record_id, entity, payload)
        # The envelope is checked as built: the stream will read the same envelope from its JSON.
        decision = normalise_envelope(envelope, self.rules, self.grid)
        if isinstance(decision, Rejected):
            return json_error(422, decision.reject.reason_code, decision.reject.reason)
        if self.cases is not None and isinstance(decision.record, EventUpdate):
            refused = self.cases.refuse(decision.record, desk)
            if refused is not None:
                return _retry_later(*refused[1:]) if refused[0] == 503 else json_error(*refused)
        for photo in checked:
            self.photos.keep(photo)
        try:
            await self._store([envelope], f"storing {id_field} {record_id}")
        except GridhubError as exc:
            return self._unstored(exc, "record")
        if self.cases is not None and entity == "event":
            self.cases.note_report(record_id)
        answer = {"status": "accepted", id_field: record_id, "record_uid": envelope.record_uid, "photos": references}
        return web.json_response(answer, status=202)

    async def _store(self, envelopes: list[RawEnvelope], what: str) -> None:
        """Send, make the journal durable, and wait for Kafka: after this returns, a 202 is a promise kept.

        Sending and the journal's fsync run in a thread, off the event loop; requests arriving
        meanwhile share the next commit.
        """
        if self.draining.is_set():
            raise GatewayClosing("the gateway is closing")

        def send_durably() -> list[FutureRecordMetadata]:
            futures = [self.send(envelope) for envelope in envelopes]
            self.publisher.make_durable()
            return futures

        self._in_flight += 1
        try:
            futures = await asyncio.to_thread(send_durably)
            await asyncio.gather(*(_acknowledged(future, what) for future in futures))
        except BrokerUnavailable:
            self.broker_failed_at = time.monotonic()
            raise
        finally:
            self._in_flight -= 1
        self.broker_failed_at = None

    def _unstored(self, error: GridhubError, what: str) -> web.Response:
        """The answer when a record was not stored: too large is the phone's to fix, anything else a retry later."""
        if isinstance(error, InputRejected):
            return json_error(413, error.reason_code, str(error))
        if isinstance(error, GatewayClosing):
            return _retry_later("closing", f"the gateway is closing; {what} not stored, retry in {RETRY_AFTER_S} s")
        if not isinstance(error, RetryableError):
            log.error("Kafka refused a record; the gateway cannot store anything until this is fixed", error=str(error))
        return _retry_later("kafka_unavailable", f"{what} not stored, retry later ({error})")

    def _photo(self, data: bytes) -> Photo:
        try:
            return self.photos.check(data)
        except PhotoRejected as exc:
            status = 413 if exc.code in ("photo_too_large", "photo_too_many_pixels") else 415
            raise RequestRefused(status, exc.code, str(exc)) from None

    async def _read(self, request: web.Request, json_part: str) -> Submission:
        """Read a JSON body, or a multipart form with a JSON part and ``photo`` file parts."""
        if request.content_type == "multipart/form-data":
            return await self._read_multipart(request, json_part)
        if request.content_type not in JSON_TYPES:
            raise RequestRefused(
                415,
                "unsupported_media_type",
                f"send application/json or multipart/form-data, not {request.content_type[:100]!r}",
            )
        if (request.charset or "utf-8").lower() != "utf-8":
            raise RequestRefused(415, "unsupported_media_type", "send JSON encoded as UTF-8 (charset=utf-8)")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise RequestRefused(413, "too_large", f"body exceeds {self.limits.record_bytes} bytes") from None
        return Submission(parse_record(raw))

    async def _read_multipart(self, request: web.Request, json_part: str) -> Submission:
        try:
            return await self._read_parts(request, json_part)
        except (ValueError, RuntimeError, HttpProcessingError) as exc:  # what aiohttp raises on a malformed form
            raise RequestRefused(
                400, "bad_multipart", f"the multipart form is malformed ({type(exc).__name__}); send a valid form"
            ) from None

    async def _read_parts(self, request: web.Request, json_part: str) -> Submission:
        record: dict[str, Any] | None = None
        photos: list[bytes] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise RequestRefused(400, "bad_multipart", "nested multipart bodies are not accepted")
            if part.name == json_part and record is None:
                data = await _read_limited(part, self.limits.record_bytes)
                if data is None:
                    raise RequestRefused(
                        413, "too_large", f"the {json_part!r} part exceeds {self.limits.record_bytes} bytes"
                    )
                record = parse_record(data)
            elif part.name == "photo":
                if len(photos) == self.limits.photos:
                    raise RequestRefused(413, "too_many_photos", f"at most {self.limits.photos} photos per request")
                data = await _read_limited(part, self.photos.max_bytes)
                if data is None:
                    raise RequestRefused(413, "photo_too_large", f"a photo exceeds {self.photos.max_bytes} bytes")
                photos.append(data)
            else:
                raise RequestRefused(
                    400,
                    "bad_multipart",
                    f"unexpected part {str(part.name)[:100]!r}; send one {json_part!r} and 'photo'",
                )
        if record is None:
            raise RequestRefused(400, "bad_multipart", f"the form has no {json_part!r} part with the JSON record")
        return Submission(record, photos)


async def _read_limited(part: BodyPartReader, limit: int) -> bytes | None:
    """Read a multipart part, or None as soon as it grows past ``limit`` bytes."""
    chunks = bytearray()
    while chunk := await part.read_chunk(65536):
        chunks.extend(chunk)
        if len(chunks) > limit:
            return None
    return bytes(chunks)
