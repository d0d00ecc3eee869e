"""The client side of a gridhub door: one authenticated JSON request, its refusals in the error taxonomy.

The CLI talks to the SQL endpoint and to the gateway the same way: it shows the caller's token,
waits out a 429 as its ``Retry-After`` says (a script that queries in a loop slows down instead
of failing), and turns every other refusal into the error class that makes the CLI print one line.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from foundation.access import Forbidden, RateLimited, Unauthenticated
from foundation.errors import InputRejected, RetryableError

RATE_LIMIT_RETRIES = 5
"""How many 429s in a row a client waits out before it gives up and says so."""
REFUSED_BY_STATUS: dict[int, type[InputRejected]] = {401: Unauthenticated, 403: Forbidden}


def call_door(
    url: str,
    token: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    refused: type[InputRejected] = InputRejected,
    timeout_s: float = 60,
) -> dict[str, Any]:
    """GET ``url`` (POST when there is a ``body``) as the caller of ``token``; the JSON answer.

    A 4xx other than 401, 403 and 429 raises ``refused`` with the door's reason and code; a 5xx
    or no answer at all raises :class:`RetryableError`.
    """
    request = urllib.request.Request(  # noqa: S310 - a door the hub announced or the settings name
        url, data=body, headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"}
    )
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            time.sleep(wait_or_raise(exc, url, refused, may_wait=attempt < RATE_LIMIT_RETRIES))
        except urllib.error.URLError as exc:
            raise RetryableError(f"{url} did not answer ({exc.reason})") from exc
    raise AssertionError("the loop returns or raises")  # pragma: no cover


def wait_or_raise(exc: urllib.error.HTTPError, url: str, refused: type[InputRejected], may_wait: bool) -> int:
    """The seconds a 429 asks to wait before asking again, while ``may_wait``; any other refusal, raised.

    A 4xx other than 401, 403 and 429 becomes ``refused`` with the door's reason and code, a 5xx
    :class:`RetryableError`: every client of a door reads its refusals the same way.
    """
    answer = json.loads(exc.read() or b"{}")
    reason = str(answer.get("reason", exc.reason))
    wait = int(exc.headers.get("Retry-After", "1") or 1)
    if exc.code == 429:
        if may_wait:
            return wait
        raise RateLimited(reason, wait) from exc
    if exc.code >= 500:
        raise RetryableError(f"{url} could not answer now, try again: {reason}") from exc
    if exc.code in REFUSED_BY_STATUS:
        raise REFUSED_BY_STATUS[exc.code](reason) from exc
    raise refused(reason, answer.get("error", refused.reason_code)) from exc
