"""The department liaison desk's side of dispatch: read work orders, post back what was done."""

from __future__ import annotations

import json
import mimetypes
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from foundation.access import caller_token
from foundation.door_client import call_door
from foundation.logs import get_logger
from foundation.settings import Settings
from gridhub.cli_common import UsageError
from gridhub.running import running_gateway
from schemas import TOWN_TIMEZONE
from schemas.rejects import describe_error

log = get_logger(__name__)
LONG_POLL_S = 5.0
"""How long one request for orders waits for a new one before it asks again."""


def _report_skipped(where: str, error: str) -> None:
    log.warning("skipped a work order that cannot be shown", message=where, error=error)


def show_or_skip(
    message: dict[str, Any], show: Callable[[dict[str, Any]], None], skipped: Callable[[str, str], None]
) -> bool:
    """Show one work order; one that cannot be read or shown is reported with its place and skipped.

    A listener that died on one malformed message would stop showing the desk its orders, and,
    having moved its cursor no further, die on it again at every start.
    """
    try:
        order = json.loads(message["value"])
        if not isinstance(order, dict):
            raise TypeError(f"a work order is a JSON object, not {type(order).__name__}")
        show(order)
    except (ValueError, KeyError, TypeError) as exc:
        skipped(f"{message['topic']}[{message['partition']}]@{message['offset']}", describe_error(exc))
        return False
    return True


def _call_gateway(settings: Settings, path: str, body: bytes | None = None, content_type: str = "") -> dict[str, Any]:
    """One request to the running gateway as the caller of ``GRIDHUB_TOKEN``; refusals in the error taxonomy."""
    gateway = running_gateway(settings)
    return call_door(f"{gateway}{path}", caller_token(settings), body, content_type or "application/json")


def listen(
    settings: Settings,
    department: str | None,
    show: Callable[[dict[str, Any]], None],
    from_beginning: bool = False,
    once: bool = False,
    skipped: Callable[[str, str], None] = _report_skipped,
) -> int:
    """Show the desk each new work order, through the gateway, as the desk of ``GRIDHUB_TOKEN``.

    A desk's token names its desk unit (``department`` may repeat it; the enforcement bureau's own
    desk may name one of its squads, ``enforcement.wansui``); a commander names one.
    With ``once`` it returns when the backlog is shown (for scripts and checks), having told the
    gateway so, which saves the desk's position; otherwise it waits for new orders until
    interrupted. A message that is no readable work order is passed to ``skipped`` (its place
    and the error; logged by default) and passed over. Returns how many orders were shown.
    """
    query: dict[str, str] = {"department": department} if department else {}
    if from_beginning:
        query["start"] = "beginning"
    shown = 0
    while True:
        query["wait"] = "0" if once and "after" in query else str(LONG_POLL_S)
        answer = _call_gateway(settings, f"/v1/orders?{urlencode(query)}")
        for message in answer["orders"]:
            if show_or_skip(message, show, skipped):
                shown += 1
        query.pop("start", None)
        query["after"] = answer["cursor"]
        if once and not answer["orders"]:
            return shown


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
    actor: str | None,
    note: str | None = None,
    photo: Path | None = None,
    department: str | None = None,
) -> dict[str, Any]:
    """Post a lifecycle update (with an optional photo) to the patrol gateway, as the desk's app would.

    The token says in which role the update acts; ``actor`` names the person at the desk (default: the token's name).
    ``department`` is where a commander's re-dispatch sends the case, when not back to its own.
    """
    if photo is not None and not photo.is_file():
        raise UsageError(f"no such photo: {photo}")
    update = {
        "update_id": uuid.uuid4().hex,
        "event_id": case_id,
        "status": status,
        "at": datetime.now(TOWN_TIMEZONE).isoformat(),
        "note": note,
        **({"actor": actor} if actor else {}),
        **({"department": department} if department else {}),
    }
    body, content_type = _multipart({"update": json.dumps(update, ensure_ascii=False).encode()}, photo)
    return _call_gateway(settings, "/v1/updates", body, content_type)
