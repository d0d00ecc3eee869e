"""The department liaison desk's side of dispatch: read work orders, post back what was done."""

from __future__ import annotations

import json
import mimetypes
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from foundation.errors import InputRejected, RetryableError
from foundation.logs import get_logger
from foundation.settings import Settings
from gridhub.cli_common import UsageError
from gridhub.running import running_bootstrap, running_gateway
from schemas import TOWN_TIMEZONE
from schemas.rejects import describe_error
from schemas.topics import dispatch_topic
from streams.routing import load_rules

log = get_logger(__name__)
QUIET_MS = 2000  # with --once, an empty poll this long after joining means the backlog is shown


def _report_skipped(where: str, error: str) -> None:
    log.warning("skipped a work order that cannot be shown", message=where, error=error)


def show_or_skip(
    message: ConsumerRecord, show: Callable[[dict[str, Any]], None], skipped: Callable[[str, str], None]
) -> bool:
    """Show one work order; one that cannot be read or shown is reported with its place and skipped.

    A listener that died on one malformed message would stop showing the desk its orders, and,
    having committed nothing past it, die on it again at every start.
    """
    try:
        order = json.loads(message.value)
        if not isinstance(order, dict):
            raise TypeError(f"a work order is a JSON object, not {type(order).__name__}")
        show(order)
    except (ValueError, KeyError, TypeError) as exc:
        skipped(f"{message.topic}[{message.partition}]@{message.offset}", describe_error(exc))
        return False
    return True


def listen(
    settings: Settings,
    department: str,
    show: Callable[[dict[str, Any]], None],
    from_beginning: bool = False,
    once: bool = False,
    skipped: Callable[[str, str], None] = _report_skipped,
) -> int:
    """Show the desk each new work order; remember what it has seen in the desk's consumer group.

    With ``once`` it returns when the backlog is shown (for scripts and checks);
    otherwise it waits for new orders until interrupted. A message that is no readable work
    order is passed to ``skipped`` (its place and the error; logged by default) and passed over.
    Returns how many orders were shown.
    """
    departments = load_rules(settings.routing_rules).departments
    if department not in departments:
        raise UsageError(f"unknown department {department!r}; known: {', '.join(sorted(departments))}")
    timeout_ms = int(settings.worker_rebalance_timeout_s * 1000)
    consumer = KafkaConsumer(
        dispatch_topic(department),
        bootstrap_servers=running_bootstrap(settings),
        group_id=f"gridhub-desk-{department}",
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        max_poll_interval_ms=max(timeout_ms, 10_000),
        session_timeout_ms=max(timeout_ms, 6_000),
        heartbeat_interval_ms=max(timeout_ms // 4, 1_000),
    )
    shown = 0
    joined_by = time.monotonic() + 60
    try:
        while True:
            batches = consumer.poll(timeout_ms=QUIET_MS)
            for messages in batches.values():
                for message in messages:
                    if show_or_skip(message, show, skipped):
                        shown += 1
            if batches:
                consumer.commit()
            elif once and (consumer.assignment() or time.monotonic() > joined_by):
                return shown
    finally:
        consumer.close()


def _multipart(fields: dict[str, bytes], photo: Path | None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: application/json\r\n\r\n".encode()
            + value
            + b"\r\n"
        )
    if photo is not None:
        kind = mimetypes.guess_type(photo.name)[0] or "application/octet-stream"
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="{photo.name}"\r\n'
            f"Content-Type: {kind}\r\n\r\n".encode()
            + photo.read_bytes()
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post_update(
    settings: Settings,
    case_id: str,
    status: str,
    actor: str,
    note: str | None = None,
    photo: Path | None = None,
) -> dict[str, Any]:
    """Post a lifecycle update (with an optional photo) to the patrol gateway, as the desk's app would."""
    if photo is not None and not photo.is_file():
        raise UsageError(f"no such photo: {photo}")
    gateway = running_gateway(settings)
    update = {
        "update_id": uuid.uuid4().hex,
        "event_id": case_id,
        "status": status,
        "at": datetime.now(TOWN_TIMEZONE).isoformat(),
        "actor": actor,
        "note": note,
    }
    body, content_type = _multipart({"update": json.dumps(update, ensure_ascii=False).encode()}, photo)
    request = urllib.request.Request(  # noqa: S310 - the gateway's own announced or configured URL
        f"{gateway}/v1/updates", data=body, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        answer = json.loads(exc.read() or b"{}")
        reason = answer.get("reason", exc.reason)
        if exc.code >= 500:
            raise RetryableError(f"the gateway could not take the update now, try again: {reason}") from exc
        raise InputRejected(f"the gateway refused the update: {reason}", answer.get("error")) from exc
    except urllib.error.URLError as exc:
        raise RetryableError(f"the patrol gateway at {gateway} did not answer ({exc.reason})") from exc
