"""The frame shared by the stateful desks (cases, applications): one partition, a clock, no silent loss.

Each desk reads one single-partition topic that carries both its records and the
ticks of its own clock, so the clock's overdue checks are ordered with the
records instead of racing them. Every message ends as the desk's work or as a
reject placed at the message, because an exception escaping a Faust agent would
skip the message silently: one that is no command the desk can read (not JSON, no
type, a tick without a time, a record without its envelope) is refused as
``bad_command``, and whatever a handler raises keeps the record's provenance as an
``internal_error``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, cast

import faust
from pydantic import ValidationError

from foundation.errors import InputRejected
from foundation.logs import get_logger
from schemas import TOWN_TIMEZONE
from schemas.messages import reject_message
from schemas.records import RawEnvelope
from schemas.rejects import Reject
from schemas.topics import REJECTS
from streams.codec import RAW_CODEC
from streams.normalise import describe_validation_error, internal_failure

log = get_logger(__name__)
Send = Callable[[str, bytes, bytes], Awaitable[None]]
Handler = Callable[[dict[str, Any], bytes], Awaitable[None]]
Tick = Callable[[datetime], Awaitable[None]]
Place = tuple[str, int, int]
"""Where a message sits: topic, partition, offset."""


class BadCommand(InputRejected):
    """A message on a desk's topic that is no command the desk can read."""

    reason_code = "bad_command"


def topic_sender(app: faust.App) -> Send:
    """A ``send(topic, key, value)`` that hands each message straight to the app's producer.

    Faust's ``Topic.send`` took about 220 µs of CPU per message against the embedded broker,
    the producer's own send about 25 µs: Faust adds channel, future and sensor bookkeeping, and
    it yields to the event loop, so each message went out in a produce request of its own,
    where sent this way the messages one record causes share one. Nothing is weakened: it is
    the producer Faust flushes before it commits the offsets of the records consumed, and a
    message the broker finally refuses is logged, as Faust logs it.
    """

    async def send(topic: str, key: bytes, value: bytes) -> None:
        delivery = await app.producer.send(topic, key, value, partition=None, timestamp=None, headers=None)
        cast(asyncio.Future, delivery).add_done_callback(partial(_log_failure, topic))

    return send


def _log_failure(topic: str, delivery: asyncio.Future) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        log.warning("the broker refused a message", topic=topic, error=str(delivery.exception()))


def _envelope_bytes(raw: bytes) -> bytes:
    """The raw envelope inside a message, so a failed message keeps its record's provenance."""
    try:
        return json.dumps(json.loads(raw)["envelope"], ensure_ascii=False).encode()
    except (ValueError, KeyError, TypeError):
        return raw


RESTORE = "restore"
"""A command that hands a desk back state the warehouse holds, when a new broker started its tables empty."""


def read_command(raw: bytes) -> dict[str, Any]:
    """A desk's message: a JSON object with a type, a tick with its time, any other with its record's envelope."""
    try:
        message = json.loads(raw)
    except ValueError as exc:
        raise BadCommand(f"not JSON ({exc})") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BadCommand("a command is a JSON object with a text type")
    if message["type"] == "tick":
        at = message.get("at")
        try:
            aware = isinstance(at, str) and datetime.fromisoformat(at).tzinfo is not None
        except ValueError:
            aware = False
        if not aware:
            raise BadCommand(f"a tick carries its time, with its UTC offset, as ISO 8601 text in at, not {at!r}")
        return message
    if message["type"] == RESTORE:
        if not isinstance(message.get("record"), dict) or not isinstance(message.get("reports"), list):
            raise BadCommand("a restore command carries the record in record and the reports behind it in reports")
        return message
    try:
        RawEnvelope.model_validate(message.get("envelope"))
    except ValidationError as exc:
        _, problems = describe_validation_error(exc)
        raise BadCommand(
            f"a command of type {message['type']!r} carries its record's raw envelope ({problems})"
        ) from exc
    return message


async def take(raw: bytes, place: Place, handle: Handler, tick: Tick, send: Send) -> None:
    """One message of a desk's topic: a record to ``handle``, a tick to ``tick``, anything that fails to a reject."""
    topic, partition, offset = place
    try:
        message = read_command(raw)
        if message["type"] == "tick":
            await tick(datetime.fromisoformat(message["at"]))
        else:
            await handle(message, raw)
    except BadCommand as exc:
        reason = (
            f"this message on {topic} is no command its desk can read: {exc}; only gridhub's worker publishes there"
        )
        reject = Reject.build("decode", exc.reason_code, reason, raw).at(topic, partition, offset, exc)
        await send(REJECTS, reject.record_uid.encode(), reject_message(reject))
    except Exception as exc:  # noqa: BLE001 - an agent exception would skip the record silently
        reject = internal_failure(_envelope_bytes(raw), exc).reject.at(topic, partition, offset, exc)
        await send(REJECTS, reject.record_uid.encode(), reject_message(reject))


def register_clocked_agent(
    app: faust.App,
    topic_name: str,
    name: str,
    interval_s: float,
    handle: Handler,
    tick: Tick,
    send: Send,
) -> faust.TopicT:
    """Add an agent over ``topic_name`` that passes records to ``handle`` and clock ticks to ``tick``."""
    topic = app.topic(topic_name, partitions=1, **RAW_CODEC)

    async def consume(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            where = event.message
            await take(event.value, (where.topic, where.partition, where.offset), handle, tick, send)

    async def clock() -> None:
        at = {"type": "tick", "at": datetime.now(TOWN_TIMEZONE).isoformat()}
        await topic.send(key=b"tick", value=json.dumps(at).encode())

    app.agent(topic, name=name)(consume)
    app.timer(interval=interval_s, name=f"{name}-clock")(clock)
    return topic
