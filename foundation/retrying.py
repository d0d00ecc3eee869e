"""One back-off policy for everything that is worth trying again: only :class:`RetryableError`, never the rest.

Connectors call the same work again when the broker, a database or a department's API is
away for a while, waiting longer each time (1 s, 2 s, 4 s ... up to a minute) so a long outage
costs little; a service being stopped ends the waiting at once and lets the last error through,
so the caller keeps what it was carrying (a claimed file, an unmoved cursor) for the next start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import tenacity

from foundation.errors import RetryableError
from foundation.logs import get_logger

log = get_logger(__name__)
FIRST_WAIT_S = 1.0
LONGEST_WAIT_S = 60.0

OnRetry = Callable[[RetryableError, float], None]
"""Told of each failed attempt that will be tried again: the error and the seconds until the next try."""


def retrying(
    stop: threading.Event,
    what: str,
    on_retry: OnRetry | None = None,
    first_wait_s: float = FIRST_WAIT_S,
    longest_wait_s: float = LONGEST_WAIT_S,
) -> tenacity.Retrying:
    """A retry loop (``for attempt in retrying(...): with attempt: ...``) over :class:`RetryableError` only.

    Any other error leaves at once. When ``stop`` is set, the waiting ends and the last
    :class:`RetryableError` is raised to the caller.
    """

    failures: list[RetryableError] = []

    def tell(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        if not isinstance(error, RetryableError):
            return
        failures[:] = [error]
        log.warning("will try again", what=what, attempt=state.attempt_number, wait_s=wait, error=str(error))
        if on_retry is not None:
            on_retry(error, wait)

    def wait_unless_stopped(seconds: float) -> None:
        if stop.wait(seconds):
            raise failures[-1]

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RetryableError),
        wait=tenacity.wait_exponential(multiplier=first_wait_s, max=longest_wait_s),
        stop=lambda _state: stop.is_set(),
        sleep=wait_unless_stopped,
        before_sleep=tell,
        reraise=True,
    )
