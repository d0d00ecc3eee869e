"""Guards of an HTTP door facing any network: a connection cap, and every failure answered as JSON.

A crowd of idle clients must not take all the gateway's file descriptors, so connections are
capped and those beyond the cap are told 503 and when to come back; and whatever goes wrong
inside a handler, a client gets ``{"error": code, "reason": sentence}``, never aiohttp's text
page or a traceback, while a bug is logged once in one short line.
"""

from __future__ import annotations

import asyncio
import json
import resource
import traceback
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web

from foundation.errors import InputRejected
from foundation.logs import get_logger

RESERVED_FDS = 256
"""File descriptors kept free of client connections: Kafka sockets, photo files, logs, and the
connections asyncio accepts in one go before the cap is looked at."""
RETRY_AFTER_S = 5
"""What a client beyond the connection cap is told to wait before it tries again."""
OVERLOADED_LINGER_S = 2.0
"""How long a connection beyond the cap may take to send its request before it is answered and closed."""
log = get_logger(__name__)


class RequestRefused(InputRejected):
    """A request the gateway answers with a 4xx: an HTTP ``status``, a reason code and a sentence saying what to fix."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason, code)
        self.status = status


def json_error(status: int, code: str, reason: str) -> web.Response:
    """The one shape of every refusal: ``{"error": code, "reason": sentence}``."""
    return web.json_response({"error": code, "reason": reason}, status=status)


# --- connections ---------------------------------------------------------------------------------------


def connection_cap(wanted: int) -> int:
    """The connection cap the process can afford: ``wanted``, or fewer if the file-descriptor limit is lower.

    The soft limit is first raised toward the hard one (often 1,024 against 4,096 or more on
    Linux), since a process may do so itself and the default cap needs more than 1,024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass  # the limit stays as it is, and so does the lower cap
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_FDS))


def _overloaded_answer(cap: int) -> bytes:
    body = json.dumps(
        {
            "error": "too_many_connections",
            "reason": f"the gateway already serves {cap} connections; retry in {RETRY_AFTER_S} seconds",
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Retry-After: {RETRY_AFTER_S}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Overloaded(asyncio.Protocol):
    """A connection beyond the cap: answered 503 once its request starts, then let go within a bounded time.

    Answering and closing before the request has arrived makes many clients see a reset instead
    of the answer, so the answer waits for the first bytes and the gateway then only half-closes
    (the client reads the answer and hangs up). A client that stays silent or never hangs up is
    answered and closed after :data:`OVERLOADED_LINGER_S`, so an idle crowd holds no descriptors.
    """

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._answered = False
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(OVERLOADED_LINGER_S, self._let_go)

    def data_received(self, data: bytes) -> None:
        self._answer_once()

    def eof_received(self) -> bool:
        self._answer_once()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _answer_once(self) -> None:
        if self._answered or self._transport is None or self._transport.is_closing():
            return
        self._answered = True
        self._transport.write(self._answer)
        if self._transport.can_write_eof():
            self._transport.write_eof()
        else:
            self._transport.close()

    def _let_go(self) -> None:
        self._answer_once()
        if self._transport is not None:
            self._transport.close()


def capped(server: web.Server, cap: int) -> Callable[[], asyncio.BaseProtocol]:
    """A protocol factory serving through ``server`` while fewer than ``cap`` connections are open."""
    answer = _overloaded_answer(cap)

    def protocol() -> asyncio.BaseProtocol:
        if len(server.connections) >= cap:
            return _Overloaded(answer)
        return server()

    return protocol


# --- errors of any kind as JSON ----------------------------------------------------------------------

_HTTP_REASONS = {
    404: ("not_found", "no such endpoint; post to /v1/reports, /v1/updates or /v1/tracks"),
    405: ("method_not_allowed", "this method is not allowed here; post records, get photos and /healthz"),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as ``{"error", "reason"}``: refusals with their 4xx, aiohttp's own errors, and bugs.

    A bug is logged once, in one line with where it happened: the full traceback (with the
    locals a console renderer adds) of a request carrying a large body would flood the log.
    """
    try:
        return await handler(request)
    except RequestRefused as exc:
        return json_error(exc.status, exc.reason_code, str(exc))
    except web.HTTPException as exc:
        code, reason = _HTTP_REASONS.get(exc.status, (f"http_{exc.status}", exc.reason))
        return json_error(exc.status, code, reason)
    except ConnectionError:
        raise  # the client hung up: there is nobody to answer
    except Exception as exc:  # noqa: BLE001 - a bug must still get a JSON answer, not aiohttp's text page
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        log.error(
            "the patrol gateway failed on a request (a bug: report it)",
            path=request.path[:100],
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
            at=f"{frame.filename}:{frame.lineno} in {frame.name}",
        )
        return json_error(500, "internal_error", "the gateway failed on this request and logged why; retry later")
