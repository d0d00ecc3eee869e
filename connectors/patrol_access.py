"""What each caller may send through the patrol gateway, and as whom.

The role of an update's actor comes from the caller's token, never from the body or from the
look of an id: a phone acts as its own grid worker, a desk as its desk unit (a department, or
a squad of the enforcement bureau), command-centre staff as the command centre. So a phone cannot
report or patrol as another worker, a desk cannot move a case dispatched to another desk, and no
body can claim a role. A desk may name who acts (``actor``): the officer a case is assigned to.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.http_guard import json_error
from foundation.access import Caller, Forbidden, RateLimited, Role, Unauthenticated
from foundation.errors import InputRejected

ACTOR_ROLE: dict[Role, str] = {
    "device": "grid_worker",
    "desk": "desk",
    "commander": "command_centre",
    "service": "system",
}
"""The case flow's role (schemas/data/case_flow.yaml) of each token role that may post updates."""

REPORTERS: tuple[Role, ...] = ("device", "commander")
"""Who may post incident reports: a grid worker's phone, or command-centre staff entering one."""
UPDATERS: tuple[Role, ...] = ("device", "desk", "commander")
"""Who may move a case along (each as its own case-flow role, see :data:`ACTOR_ROLE`)."""
PATROLLERS: tuple[Role, ...] = ("device",)
"""Who may post patrol tracks: only a phone, as its own worker."""
PHOTO_READERS: tuple[Role, ...] = ("device", "desk", "commander")
"""Who may fetch a stored photo: those who take part in the cases the photos prove."""
ORDER_READERS: tuple[Role, ...] = ("desk", "commander")
"""Who may read work orders: a desk its own, the command centre any desk's."""
CASE_READERS: tuple[Role, ...] = ("device", "desk", "analyst", "commander", "admin")
"""Who may read a case's status (Open311): every role that sees cases; the answer carries no personal data."""


def refusal_status(error: InputRejected) -> tuple[int, dict[str, str]]:
    """The HTTP status of a caller the door refuses, 401, 403 or 429, and the headers that go with it."""
    if isinstance(error, Unauthenticated):
        return 401, {"WWW-Authenticate": 'Bearer realm="gridhub"'}
    if isinstance(error, RateLimited):
        return 429, {"Retry-After": str(error.retry_after_s)}
    return 403, {}


def refusal(error: InputRejected) -> web.Response:
    """The HTTP answer to a caller the door refuses: 401, 403 or 429 with its reason."""
    status, headers = refusal_status(error)
    response = json_error(status, error.reason_code, str(error))
    response.headers.update(headers)
    return response


def _as_worker(caller: Caller, claimed: Any, what: str) -> str | None:
    """A phone's own worker id; refuses a body that names another worker."""
    if caller.role != "device":
        return None
    if claimed not in (None, "", caller.worker):
        raise Forbidden(
            f"{caller.name} is the phone of {caller.worker}; it cannot send {what} as {str(claimed)[:64]!r}"
        )
    return caller.worker


def stamp_report(caller: Caller, payload: dict[str, Any]) -> None:
    """Bind a report to its reporter: a phone's report is always its worker's."""
    worker = _as_worker(caller, payload.get("reporter_id"), "a report")
    if worker:
        payload["reporter_id"] = worker


def stamp_update(caller: Caller, payload: dict[str, Any]) -> None:
    """Set who acts, in which role: a phone as its worker, anyone else as the actor named (or the token's name)."""
    worker = _as_worker(caller, payload.get("actor"), "an update")
    payload["actor"] = worker or payload.get("actor") or caller.name
    payload["actor_role"] = ACTOR_ROLE[caller.role]


def stamp_tracks(caller: Caller, payloads: list[tuple[str, dict[str, Any]]]) -> None:
    """Refuse a track of another worker than the phone's own."""
    for _, payload in payloads:
        _as_worker(caller, payload.get("worker_id"), "a patrol track")


def desk_department(caller: Caller) -> str | None:
    """The desk unit a desk's token is bound to (a department, or a squad of one: ``enforcement.wansui``), else None.

    It bounds the cases the caller may move and the orders it may read (:func:`schemas.topics.desk_covers`).
    """
    return caller.department if caller.role == "desk" else None
