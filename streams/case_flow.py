"""The case flow file: which moves a case may make, by whom, and with what proof.

Which moves are allowed is data (``schemas/data/case_flow.yaml``) so a town can change who may do
what without a release. The file is read once, when the case agent or the patrol gateway starts, and
a mistake in it would otherwise surface weeks later as cases stuck in the field; so :func:`load_flow`
checks it whole and refuses a file that names an unknown status or role, repeats an edge, lets a
terminal status lead anywhere, leaves a status with no way out, declares a status no case can
reach, or bars (``not_by``) the actors of an action no edge takes. It knows nothing of cases:
``streams.case_machine`` applies the flow to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml

from foundation import packaged
from foundation.errors import ConfigurationError
from schemas.records import EVENT_STATUSES, ActorRole

Role = ActorRole
ROLES: tuple[str, ...] = get_args(Role)

INITIAL_STATUS = "reported"
HANDLE_ACTION = "handle"
"""The action whose actors a case remembers (``Case.handled_by``): the only one an edge's ``not_by`` may name.

巡办分离 (patrol apart from handling) keeps whoever handled a case from verifying it; remembering
the actors of other actions would cost every case's state for a rule no town has asked for.
"""


class FlowError(ConfigurationError):
    """The case flow file itself is wrong; the worker must not start on it."""


def _join(items: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``: how a clerk would list alternatives."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


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
    not_by: frozenset[str] = frozenset()
    """Actions whose actors on the same case may not take this edge (巡办分离: who handled may not verify)."""
    note_required: bool = False
    """The command must say why in its note (挂账: the reason a case is parked)."""
    review_required: bool = False
    """A parking (挂账): the command's due_at is the review date, later than the command itself."""


@dataclass(frozen=True)
class EscalationLevel:
    """One level of supervision (督办) a case reaches ``after_hours`` past its deadline, still open."""

    level: int
    after_hours: float
    zh: str


DEFAULT_ESCALATION = (EscalationLevel(level=1, after_hours=0.0, zh="超期"),)
"""A flow file without ``escalation`` has one level: the overdue alert the moment the deadline passes."""


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
    escalation: tuple[EscalationLevel, ...] = DEFAULT_ESCALATION
    """Supervision levels in order; level 1 comes the moment a case is overdue (``after_hours: 0``)."""

    def allowed_from(self, status: str) -> list[Edge]:
        """The moves out of ``status``, in the order the flow file lists them."""
        return [edge for (source, _), edge in self.edges.items() if source == status]

    def terminal(self, status: str) -> bool:
        """Whether a case in ``status`` is finished for good."""
        return status in self.terminals

    def edge(self, source: str, target: str) -> Edge | None:
        """The edge from ``source`` to ``target``, if the flow has one."""
        return self.edges.get((source, target))

    def who(self, edge: Edge) -> str:
        """``grid_worker or command_centre``: the roles that may take ``edge``, in the file's order."""
        return _join([role for role in self.roles if role in edge.roles])

    def describe(self, edge: Edge) -> str:
        """``verified (grid_worker, photo)``: the target, who may move there and whether a photo is needed."""
        marks = [role for role in self.roles if role in edge.roles]
        if edge.photo_required:
            marks.append("photo")
        if edge.note_required:
            marks.append("note")
        if edge.review_required:
            marks.append("review date")
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
    flags = {name: entry.get(name, False) for name in ("photo", "deadline", "note", "review")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise FlowError(f"{where}: {name} must be true or false, got {value!r}")
    if flags["deadline"] and flags["review"]:
        raise FlowError(f"{where}: due_at is either a new deadline (deadline) or a review date (review), not both")
    not_by = entry.get("not_by", [])
    if not isinstance(not_by, list) or any(item != HANDLE_ACTION for item in not_by):
        raise FlowError(
            f"{where}: not_by must list actions whose actors a case remembers ({HANDLE_ACTION}), got {not_by!r}"
        )
    return Edge(
        source=source,
        target=target,
        action=action.strip(),
        roles=frozenset(edge_roles),
        photo_required=flags["photo"],
        deadline_required=flags["deadline"],
        not_by=frozenset(not_by),
        note_required=flags["note"],
        review_required=flags["review"],
    )


def _escalation(value: Any, path: Path) -> tuple[EscalationLevel, ...]:
    """The ``escalation`` section: levels 1, 2, ... in order, the first at 0 hours, each later than the last.

    Level 1 is the overdue alert itself (``Case.overdue_alerted`` means level 1 was raised), so it
    must come the moment the deadline passes; a level no later than the one before would never be
    raised on its own.
    """
    if value is None:
        return DEFAULT_ESCALATION
    if not isinstance(value, list) or not value:
        raise FlowError(f"{path}: 'escalation' must be a list of levels ({{level, after_hours, zh}}), got {value!r}")
    levels: list[EscalationLevel] = []
    for number, entry in enumerate(value, start=1):
        if not isinstance(entry, Mapping) or set(entry) != {"level", "after_hours", "zh"}:
            raise FlowError(f"{path}: escalation level {number} must have exactly level, after_hours and zh: {entry!r}")
        hours = entry["after_hours"]
        if entry["level"] != number or isinstance(hours, bool) or not isinstance(hours, int | float):
            raise FlowError(f"{path}: escalation level {number} must be numbered {number} with after_hours in hours")
        if (number == 1 and hours != 0) or (levels and hours <= levels[-1].after_hours):
            raise FlowError(
                f"{path}: escalation level {number} comes {hours} h past the deadline; level 1 must come at 0 h "
                "(it is the overdue alert) and each later level later than the one before"
            )
        levels.append(EscalationLevel(level=number, after_hours=float(hours), zh=str(entry["zh"])))
    return tuple(levels)


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
    actions = {edge.action for edge in edges.values()}
    for edge in edges.values():
        for barred in sorted(edge.not_by - actions):
            raise FlowError(
                f"{path}: {edge.source} → {edge.target} ({edge.action}) is not_by {barred}, but no transition "
                f"has action {barred}; the rule would never bar anyone"
            )

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
    return CaseFlow(
        edges=edges,
        statuses=tuple(statuses),
        roles=tuple(roles),
        terminals=frozenset(terminals),
        escalation=_escalation(document.get("escalation"), path),
    )
