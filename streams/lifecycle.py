"""The case state machine of the "one grid" loop: discover → report → dispatch → handle → verify → close.

Everything here is pure: no Kafka, no I/O beyond reading the flow file once. A stream agent keeps
:class:`Case` values in a Faust table (hence ``to_dict``/``from_dict``), feeds each incoming command
through :func:`apply` and publishes the :class:`Transition` it gets back, so the KPIs of
domain-standards §3.6 (结案率, 按期结案率, 返工率, ...) are queries over that log. HTTP and CLI callers show
the :class:`IllegalTransition` message verbatim to a desk clerk, so every refusal says what the case
is, what it could do instead and what to send next time.

Which moves are allowed, and by whom, is data (``schemas/data/case_flow.yaml``) so a town can change
it without a release; :func:`load_flow` refuses a file that would leave cases stuck or unreachable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import yaml

from foundation import packaged
from foundation.errors import ConfigurationError, InputRejected
from schemas import TOWN_TIMEZONE
from schemas.records import EVENT_STATUSES, ActorRole, EventUpdate

Role = ActorRole
ROLES: tuple[str, ...] = get_args(Role)

INITIAL_STATUS = "reported"
# Statuses in which a case is finished whatever the flow file says: overdue checks, duplicate
# matching and report merging need no flow, and the canonical records know only these two endings.
FINISHED_STATUSES: frozenset[str] = frozenset({"closed", "rejected", "cancelled"})
# Actions whose transitions the KPIs count (返工数 and 回退数); see the comment in case_flow.yaml.
REWORK_ACTION = "rework"
DECLINE_ACTION = "decline"
CLOSED_STATUS = "closed"
EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), good to ~0.5 % for haversine distances


class FlowError(ConfigurationError):
    """The case flow file itself is wrong; the worker must not start on it."""


class IllegalTransition(InputRejected):
    """A command the case cannot take; ``str(exc)`` is a sentence a desk clerk can act on.

    ``code`` is stable for programs: ``illegal_transition`` (no such move from this status),
    ``already_in_status`` (the case is already there: usually a replayed command), ``unknown_status``,
    ``role_not_allowed``, ``photo_required``, ``case_closed`` (the case is closed or rejected),
    ``time_goes_backwards`` and ``wrong_case``.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, code)
        self.code = code
        self.reason = reason


def _aware(value: datetime) -> datetime:
    """Read a naive timestamp as China Standard Time, as schemas.records does for every feed.

    Mixing naive and aware datetimes would raise TypeError deep inside a comparison; deciding the
    zone once, at the edge of every value here, keeps the comparisons total.
    """
    return value.replace(tzinfo=TOWN_TIMEZONE) if value.tzinfo is None else value


def _join(items: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``: how a clerk would list alternatives."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


# The flow ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """One allowed move: from ``source`` to ``target``, stored as ``action``, by one of ``roles``."""

    source: str
    target: str
    action: str
    roles: frozenset[str]
    photo_required: bool
    deadline_required: bool = False
    """An extension (延期): the command must carry a new deadline later than the current one."""


@dataclass(frozen=True)
class CaseFlow:
    """The transition table as loaded from YAML, keyed by ``(source, target)``.

    Callers name the target status rather than the action, so there is at most one edge per pair.
    ``statuses`` and ``roles`` keep the file's order, which is the order reasons list them in.
    """

    edges: dict[tuple[str, str], Edge]
    statuses: tuple[str, ...]
    roles: tuple[str, ...]
    terminals: frozenset[str]

    def allowed_from(self, status: str) -> list[Edge]:
        """The moves out of ``status``, in the order the flow file lists them."""
        return [edge for (source, _), edge in self.edges.items() if source == status]

    def terminal(self, status: str) -> bool:
        """Whether a case in ``status`` is finished for good."""
        return status in self.terminals

    def edge(self, source: str, target: str) -> Edge | None:
        """The edge from ``source`` to ``target``, if the flow has one."""
        return self.edges.get((source, target))

    def describe(self, edge: Edge) -> str:
        """``verified (grid_worker, photo)``: the target, who may move there and whether a photo is needed."""
        marks = [role for role in self.roles if role in edge.roles]
        if edge.photo_required:
            marks.append("photo")
        return f"{edge.target} ({', '.join(marks)})"

    def options(self, status: str) -> str:
        """A sentence fragment listing where a case in ``status`` may go next."""
        edges = self.allowed_from(status)
        if not edges:
            return f"from {status} it can go nowhere"
        return f"from {status} it can go to {_join([self.describe(edge) for edge in edges])}"


def _names(value: Any, what: str, path: Path) -> list[str]:
    """A YAML list (or mapping, for statuses with metadata) of non-empty names."""
    if isinstance(value, Mapping):
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise FlowError(f"{path}: '{what}' must be a list of names, got {value!r}")
    names = [item.strip() for item in value]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise FlowError(f"{path}: '{what}' lists {', '.join(repeated)} more than once")
    return names


def _edge(entry: Any, number: int, path: Path, statuses: list[str], roles: list[str]) -> Edge:
    """Check one transition entry; ``number`` is 1-based so the message matches a reader's count."""
    where = f"{path}: transition {number}"
    if not isinstance(entry, Mapping):
        raise FlowError(f"{where} must be a mapping with from, to, action, roles and photo; got {entry!r}")
    missing = [key for key in ("from", "to", "action", "roles") if key not in entry]
    if missing:
        raise FlowError(f"{where} ({entry!r}) lacks {', '.join(missing)}")
    source, target, action = entry["from"], entry["to"], entry["action"]
    where = f"{where} ({source} → {target})"
    for status in (source, target):
        if status not in statuses:
            raise FlowError(f"{where} names unknown status {status!r}; declared statuses: {', '.join(statuses)}")
    if not isinstance(action, str) or not action.strip():
        raise FlowError(f"{where} needs an action name, got {action!r}")
    edge_roles = entry["roles"]
    if not isinstance(edge_roles, list) or not edge_roles:
        raise FlowError(f"{where} must list at least one role, got {edge_roles!r}")
    for role in edge_roles:
        if role not in roles:
            raise FlowError(f"{where} names unknown role {role!r}; declared roles: {', '.join(roles)}")
    photo, deadline = entry.get("photo", False), entry.get("deadline", False)
    if not isinstance(photo, bool):
        raise FlowError(f"{where}: photo must be true or false, got {photo!r}")
    if not isinstance(deadline, bool):
        raise FlowError(f"{where}: deadline must be true or false, got {deadline!r}")
    return Edge(
        source=source,
        target=target,
        action=action.strip(),
        roles=frozenset(edge_roles),
        photo_required=photo,
        deadline_required=deadline,
    )


def _reachable(edges: Iterable[Edge]) -> set[str]:
    """Every status a case can reach from the initial status."""
    seen = {INITIAL_STATUS}
    frontier = [INITIAL_STATUS]
    edges = list(edges)
    while frontier:
        status = frontier.pop()
        for edge in edges:
            if edge.source == status and edge.target not in seen:
                seen.add(edge.target)
                frontier.append(edge.target)
    return seen


def load_flow(path: Path | None = None) -> CaseFlow:
    """Read and check a case flow file (default: the packaged ``schemas/data/case_flow.yaml``).

    The checks are the ones that would otherwise surface as cases stuck in the field: statuses the
    records cannot carry, roles no caller has, two edges for one move, a terminal status that leads
    somewhere, a status with no way out, or a status no case can ever reach.
    """
    path = packaged.CASE_FLOW if path is None else path
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FlowError(f"cannot read case flow {path}: {exc}") from exc
    sections = ("statuses", "terminal", "roles", "transitions")
    if not isinstance(document, dict) or any(section not in document for section in sections):
        raise FlowError(f"{path} must have {', '.join(repr(s) for s in sections)} sections")

    statuses = _names(document["statuses"], "statuses", path)
    for status in statuses:
        if status not in EVENT_STATUSES:
            raise FlowError(f"{path}: unknown status {status!r}; event records only carry {', '.join(EVENT_STATUSES)}")
    if INITIAL_STATUS not in statuses:
        raise FlowError(f"{path}: status {INITIAL_STATUS!r} must be declared; every case starts there")
    roles = _names(document["roles"], "roles", path)
    for role in roles:
        if role not in ROLES:
            raise FlowError(f"{path}: unknown role {role!r}; callers can only act as {', '.join(ROLES)}")
    terminals = _names(document["terminal"], "terminal", path)
    if not terminals:
        raise FlowError(f"{path}: no terminal status is declared, so no case could ever finish")
    for status in terminals:
        if status not in statuses:
            raise FlowError(f"{path}: unknown status {status!r} under terminal; declare it under statuses")

    entries = document["transitions"]
    if not isinstance(entries, list):
        raise FlowError(f"{path}: 'transitions' must be a list, got {entries!r}")
    edges: dict[tuple[str, str], Edge] = {}
    for number, entry in enumerate(entries, start=1):
        edge = _edge(entry, number, path, statuses, roles)
        if (edge.source, edge.target) in edges:
            raise FlowError(f"{path}: duplicate edge: transition {number} repeats {edge.source} → {edge.target}")
        if edge.source in terminals:
            raise FlowError(
                f"{path}: terminal status {edge.source} has an outgoing edge to {edge.target} ({edge.action}); "
                "a terminal status must be final"
            )
        edges[(edge.source, edge.target)] = edge

    sources = {source for source, _ in edges}
    for status in statuses:
        if status not in terminals and status not in sources:
            raise FlowError(
                f"{path}: status {status} is not terminal but no edge leaves it; cases there would be stuck"
            )
    reachable = _reachable(edges.values())
    unreachable = [status for status in statuses if status not in reachable]
    if unreachable:
        raise FlowError(f"{path}: no case can reach {', '.join(unreachable)} from {INITIAL_STATUS}")
    return CaseFlow(edges=edges, statuses=tuple(statuses), roles=tuple(roles), terminals=frozenset(terminals))


# Cases and transitions ----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _when(value: Any) -> datetime:
    """A datetime from an ISO string (as a Faust table stores it) or a datetime left as is."""
    return _aware(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


@dataclass(frozen=True)
class Case:
    """One case (案卷): the state a stream agent keeps per case id.

    ``updated_at`` is the time of the last transition; it is what lets :func:`apply` refuse a command
    dated before it (a phone with a wrong clock, or a stale command replayed out of order).
    """

    case_id: str
    category: str
    department: str
    squad: str | None
    grid_code: str | None
    lat: float
    lon: float
    reporter_id: str
    status: str
    reported_at: datetime
    due_at: datetime
    updated_at: datetime
    report_ids: tuple[str, ...]  # the first report and any merged duplicate reports
    seq: int  # number of transitions so far; the next transition gets seq + 1
    rework_count: int
    return_count: int
    closed_at: datetime | None
    overdue_alerted: bool

    def __post_init__(self) -> None:
        """Pin every timestamp to a zone and ``report_ids`` to a tuple, whatever the caller passed."""
        for name in ("reported_at", "due_at", "updated_at"):
            object.__setattr__(self, name, _aware(getattr(self, name)))
        if self.closed_at is not None:
            object.__setattr__(self, "closed_at", _aware(self.closed_at))
        object.__setattr__(self, "report_ids", tuple(self.report_ids))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (ISO timestamps, lists) for a Faust table or an HTTP answer."""
        return {
            "case_id": self.case_id,
            "category": self.category,
            "department": self.department,
            "squad": self.squad,
            "grid_code": self.grid_code,
            "lat": self.lat,
            "lon": self.lon,
            "reporter_id": self.reporter_id,
            "status": self.status,
            "reported_at": _iso(self.reported_at),
            "due_at": _iso(self.due_at),
            "updated_at": _iso(self.updated_at),
            "report_ids": list(self.report_ids),
            "seq": self.seq,
            "rework_count": self.rework_count,
            "return_count": self.return_count,
            "closed_at": _iso(self.closed_at),
            "overdue_alerted": self.overdue_alerted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Case:
        """Rebuild a case from :meth:`to_dict` output; a missing field is named in the error."""
        try:
            closed_at = data["closed_at"]
            return cls(
                case_id=str(data["case_id"]),
                category=str(data["category"]),
                department=str(data["department"]),
                squad=data["squad"],
                grid_code=data["grid_code"],
                lat=float(data["lat"]),
                lon=float(data["lon"]),
                reporter_id=str(data["reporter_id"]),
                status=str(data["status"]),
                reported_at=_when(data["reported_at"]),
                due_at=_when(data["due_at"]),
                updated_at=_when(data["updated_at"]),
                report_ids=tuple(str(item) for item in data["report_ids"]),
                seq=int(data["seq"]),
                rework_count=int(data["rework_count"]),
                return_count=int(data["return_count"]),
                closed_at=None if closed_at is None else _when(closed_at),
                overdue_alerted=bool(data["overdue_alerted"]),
            )
        except KeyError as exc:
            raise ValueError(f"case record lacks field {exc.args[0]!r}") from exc


@dataclass(frozen=True)
class Transition:
    """One step of a case's life, as stored in the log the KPIs are computed from.

    ``due_at`` is the case's deadline at that moment, so on-time rates need no join back to cases.
    """

    case_id: str
    seq: int
    from_status: str | None
    to_status: str
    action: str
    actor: str
    actor_role: str
    at: datetime
    due_at: datetime
    note: str | None
    photo_ref: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for a Kafka message or a warehouse row."""
        return {
            "case_id": self.case_id,
            "seq": self.seq,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "action": self.action,
            "actor": self.actor,
            "actor_role": self.actor_role,
            "at": _iso(self.at),
            "due_at": _iso(self.due_at),
            "note": self.note,
            "photo_ref": self.photo_ref,
        }


@dataclass(frozen=True)
class Command:
    """What a caller asks for: move ``case_id`` to ``status``, acting as ``actor`` in ``actor_role``."""

    case_id: str
    status: str
    actor: str
    actor_role: Role
    at: datetime
    note: str | None = None
    photo_ref: str | None = None
    due_at: datetime | None = None
    """The new deadline, for an extension (延期) only."""

    def __post_init__(self) -> None:
        """A naive time is read as China Standard Time, like every other timestamp here."""
        object.__setattr__(self, "at", _aware(self.at))


def role_of(actor: str) -> ActorRole:
    """Who an actor id belongs to when an update does not say: GW… workers, desk-… desks."""
    if actor.upper().startswith("GW"):
        return "grid_worker"
    if actor.lower().startswith("desk-"):
        return "desk"
    return "system" if actor == "system" else "command_centre"


def command_for(case_id: str, update: EventUpdate) -> Command:
    """The command an update asks for; its actor's role is read from the id when the update omits it."""
    return Command(
        case_id=case_id,
        status=update.status,
        actor=update.actor,
        actor_role=update.actor_role or role_of(update.actor),
        at=update.occurred_at,
        note=update.note,
        photo_ref=update.photo_ref,
        due_at=update.new_due_at,
    )


def open_case(
    *,
    case_id: str,
    report_id: str,
    category: str,
    department: str,
    squad: str | None,
    grid_code: str | None,
    lat: float,
    lon: float,
    reporter_id: str,
    reported_at: datetime,
    limit_hours: float,
) -> tuple[Case, Transition]:
    """Open a case for a fresh report: status ``reported``, seq 1, due ``limit_hours`` after the report.

    The deadline runs from the report, not from dispatch, because the town is judged on the time the
    resident waited (按期结案率). Hours are calendar hours; working-time arithmetic is not applied.
    """
    if not limit_hours > 0:
        raise ValueError(f"limit_hours must be a positive number of hours, got {limit_hours!r}")
    reported_at = _aware(reported_at)
    due_at = reported_at + timedelta(hours=limit_hours)
    case = Case(
        case_id=case_id,
        category=category,
        department=department,
        squad=squad,
        grid_code=grid_code,
        lat=lat,
        lon=lon,
        reporter_id=reporter_id,
        status=INITIAL_STATUS,
        reported_at=reported_at,
        due_at=due_at,
        updated_at=reported_at,
        report_ids=(report_id,),
        seq=1,
        rework_count=0,
        return_count=0,
        closed_at=None,
        overdue_alerted=False,
    )
    transition = Transition(
        case_id=case_id,
        seq=1,
        from_status=None,
        to_status=INITIAL_STATUS,
        action="report",
        actor=reporter_id,
        actor_role="grid_worker",
        at=reported_at,
        due_at=due_at,
        note=None,
        photo_ref=None,
    )
    return case, transition


def _refuse(flow: CaseFlow, case: Case, command: Command) -> IllegalTransition | None:
    """The reason ``command`` cannot apply to ``case``, or None; checks run from the most basic up."""
    name = f"case {case.case_id}"
    target = command.status
    if command.case_id != case.case_id:
        return IllegalTransition("wrong_case", f"the command is for case {command.case_id}, not {name}")
    if flow.terminal(case.status):
        return IllegalTransition(
            "case_closed",
            f"{name} is {case.status}, a final status; nothing more can happen to it (asked for {target}); "
            "if the problem is back, report it again to open a new case",
        )
    if case.status not in flow.statuses:
        return IllegalTransition(
            "unknown_status",
            f"{name} is in status {case.status}, which the case flow does not declare; "
            "ask the command centre to move it by hand",
        )
    if command.at < case.updated_at:
        return IllegalTransition(
            "time_goes_backwards",
            f"{name} is {case.status} since {case.updated_at.isoformat()}, and this command is dated "
            f"{command.at.isoformat()}, earlier than that; check the device clock and send it again",
        )
    if target not in flow.statuses:
        return IllegalTransition(
            "illegal_transition",
            f"{name} is {case.status}; {target!r} is not a case status (statuses: {', '.join(flow.statuses)}); "
            f"{flow.options(case.status)}",
        )
    if target == case.status:
        return IllegalTransition("already_in_status", f"{name} is already {target}; {flow.options(case.status)}")
    edge = flow.edge(case.status, target)
    if edge is None:
        return IllegalTransition(
            "illegal_transition", f"{name} is {case.status}; {flow.options(case.status)}, not to {target}"
        )
    if command.actor_role not in edge.roles:
        allowed = _join([role for role in flow.roles if role in edge.roles])
        return IllegalTransition(
            "role_not_allowed",
            f"{name} is {case.status}; moving it to {target} ({edge.action}) is for {allowed} only, "
            f"and {command.actor} acts as {command.actor_role}",
        )
    if edge.photo_required and not (command.photo_ref and command.photo_ref.strip()):
        return IllegalTransition(
            "photo_required",
            f"{name} is {case.status}; moving it to {target} ({edge.action}) needs a photo: "
            "attach one (photo_ref) and send again",
        )
    if edge.deadline_required and (command.due_at is None or _aware(command.due_at) <= case.due_at):
        return IllegalTransition(
            "deadline_required",
            f"{name} is {case.status}, due {case.due_at.isoformat()}; moving it to {target} ({edge.action}) "
            "needs a new deadline (due_at) later than that",
        )
    return None


def apply(flow: CaseFlow, case: Case, command: Command) -> tuple[Case, Transition]:
    """Apply one command; return the new case and the transition to publish, or raise IllegalTransition.

    A refused command changes nothing, so the caller may simply report the reason and move on.
    Counters follow the action: ``rework`` adds to ``rework_count`` (返工), ``decline`` to
    ``return_count`` (回退). ``closed_at`` is set on entering ``closed``.
    """
    refusal = _refuse(flow, case, command)
    if refusal is not None:
        raise refusal
    edge = flow.edges[(case.status, command.status)]
    photo_ref = command.photo_ref.strip() if command.photo_ref and command.photo_ref.strip() else None
    updated = replace(
        case,
        status=edge.target,
        updated_at=command.at,
        seq=case.seq + 1,
        rework_count=case.rework_count + (edge.action == REWORK_ACTION),
        return_count=case.return_count + (edge.action == DECLINE_ACTION),
        closed_at=command.at if edge.target == CLOSED_STATUS else case.closed_at,
        due_at=_aware(command.due_at) if edge.deadline_required and command.due_at else case.due_at,
        overdue_alerted=case.overdue_alerted and not edge.deadline_required,
    )
    transition = Transition(
        case_id=case.case_id,
        seq=updated.seq,
        from_status=case.status,
        to_status=edge.target,
        action=edge.action,
        actor=command.actor,
        actor_role=command.actor_role,
        at=command.at,
        due_at=updated.due_at,
        note=command.note,
        photo_ref=photo_ref,
    )
    return updated, transition


def auto_advance(flow: CaseFlow, case: Case, at: datetime) -> list[tuple[Case, Transition]]:
    """Take every step the command centre's automation may take on its own, and return each.

    From ``reported`` with the packaged flow this is accept then dispatch. It follows an edge only if it
    is the single photo-free edge open to role ``system`` from the current status, and never re-enters a
    status within one call, so it cannot loop. It follows whatever the flow allows: on a ``verified``
    case it closes it, and on a ``returned`` case it redispatches to the same department, so the
    agent calls it for fresh reports (and after verification if the town lets the system close).
    """
    steps: list[tuple[Case, Transition]] = []
    visited = {case.status}
    current = case
    while True:
        options = [edge for edge in flow.allowed_from(current.status) if "system" in edge.roles]
        if len(options) != 1 or options[0].photo_required or options[0].target in visited:
            return steps
        edge = options[0]
        command = Command(
            case_id=case.case_id,
            status=edge.target,
            actor="system",
            actor_role="system",
            at=at,
            note=f"automatic {edge.action}",
        )
        current, transition = apply(flow, current, command)
        steps.append((current, transition))
        visited.add(edge.target)


def is_overdue(case: Case, now: datetime) -> bool:
    """Whether the case is still open after its deadline (超期); a finished case never is."""
    return case.status not in FINISHED_STATUSES and _aware(now) > case.due_at


# Duplicate reports --------------------------------------------------------------------------------------


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres between two WGS84 points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def find_duplicate(
    open_cases: Iterable[Case],
    *,
    category: str,
    lat: float,
    lon: float,
    at: datetime,
    max_distance_m: float,
    max_minutes: float,
) -> Case | None:
    """The open case a new report most likely repeats, or None.

    Two grid workers photographing the same pile of rubbish should make one case, not two work orders.
    A match has the same category, is not closed or rejected, lies within ``max_distance_m`` and was
    reported within ``max_minutes`` either side of ``at`` (both limits inclusive). The nearest match
    wins; ties go to the earlier report, then the smaller case id, so the answer never depends on order.
    """
    at = _aware(at)
    window = timedelta(minutes=max_minutes)
    best: tuple[float, datetime, str, Case] | None = None
    for case in open_cases:
        if case.category != category or case.status in FINISHED_STATUSES:
            continue
        if abs(at - case.reported_at) > window:
            continue
        distance = distance_m(lat, lon, case.lat, case.lon)
        if distance > max_distance_m:
            continue
        candidate = (distance, case.reported_at, case.case_id, case)
        if best is None or candidate[:3] < best[:3]:
            best = candidate
    return None if best is None else best[3]


class OpenCases:
    """The open cases, by category and by square of the duplicate distance, for :func:`find_duplicate`.

    Comparing each new report with every open case of its category made a busy day quadratic
    (cases stay open for hours). Cases here sit in squares one ``max_distance_m`` on a side
    (in degrees of latitude and, at the equator, of longitude); :meth:`near` returns the cases
    of every square a circle of that radius around the report can touch, widening the band
    of longitude with the latitude, so it always holds every case :func:`find_duplicate` could
    choose and the answer is the one a full scan gives. Near a pole or across the 180th
    meridian, where the squares stop being a small neighbourhood, it returns the whole category.
    """

    MAX_COLUMNS = 64
    """Beyond this many squares east and west of the report, a scan of the category is cheaper."""

    def __init__(self, max_distance_m: float) -> None:
        if not max_distance_m > 0:
            raise ValueError(f"max_distance_m must be positive, got {max_distance_m!r}")
        self._radius = max_distance_m / EARTH_RADIUS_M  # the duplicate distance as an angle, radians
        self._side = math.degrees(self._radius)
        self._by_category: dict[str, dict[str, Case]] = {}
        self._squares: dict[tuple[str, int, int], dict[str, Case]] = {}
        self._square_of: dict[str, tuple[str, int, int]] = {}

    def _square(self, case: Case) -> tuple[str, int, int]:
        return case.category, math.floor(case.lat / self._side), math.floor(case.lon / self._side)

    def follow(self, case: Case) -> None:
        """Keep the latest state of ``case``: open cases are indexed, finished ones dropped."""
        previous = self._square_of.pop(case.case_id, None)
        if previous is not None:
            self._by_category[previous[0]].pop(case.case_id, None)
            self._squares[previous].pop(case.case_id, None)
        if case.status in FINISHED_STATUSES:
            return
        square = self._square(case)
        self._square_of[case.case_id] = square
        self._by_category.setdefault(case.category, {})[case.case_id] = case
        self._squares.setdefault(square, {})[case.case_id] = case

    def cases(self, category: str | None = None) -> list[Case]:
        """Every open case, or those of one category."""
        if category is not None:
            return list(self._by_category.get(category, {}).values())
        return [case for cases in self._by_category.values() for case in cases.values()]

    def near(self, category: str, lat: float, lon: float) -> list[Case]:
        """Open cases of ``category`` that may lie within the duplicate distance of a point.

        Within distance d, latitudes differ by at most d/R, and by the haversine formula
        sin(Δλ/2) ≤ sin(d/2R) / cos φ, where φ is the largest latitude either point can have
        (the report's plus d/R); these bound the squares to look in. Both bounds are widened by
        a thousandth against rounding.
        """
        radius = self._radius * 1.001
        widest = math.radians(abs(lat)) + radius
        ratio = math.sin(radius / 2) / math.cos(widest) if widest < math.pi / 2 else math.inf
        if ratio >= 1:
            return self.cases(category)
        reach = math.degrees(2 * math.asin(ratio))
        if abs(lon) + reach > 180 or reach > self.MAX_COLUMNS * self._side:
            return self.cases(category)
        reach_lat = math.degrees(radius)
        rows = range(math.floor((lat - reach_lat) / self._side), math.floor((lat + reach_lat) / self._side) + 1)
        columns = range(math.floor((lon - reach) / self._side), math.floor((lon + reach) / self._side) + 1)
        found: list[Case] = []
        for row in rows:
            for column in columns:
                square = self._squares.get((category, row, column))
                if square:
                    found.extend(square.values())
        return found


def merge_report(case: Case, report_id: str) -> Case:
    """Attach a duplicate report to ``case``; a report already attached changes nothing.

    Idempotence matters because Kafka may deliver the same report twice. A closed or rejected case takes
    no new reports: the problem is back, so it needs a new case with its own deadline.
    """
    if report_id in case.report_ids:
        return case
    if case.status in FINISHED_STATUSES:
        raise IllegalTransition(
            "case_closed",
            f"case {case.case_id} is {case.status}, so report {report_id} cannot be merged into it; "
            "open a new case for it",
        )
    return replace(case, report_ids=(*case.report_ids, report_id))
