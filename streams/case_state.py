"""The values of a case's life: the case (案卷), each step it takes, and what a caller asks of it.

A :class:`Case` leaves its process in three shapes: the case agent keeps one per case id in a Faust
table (:meth:`Case.to_dict`, read back by :meth:`Case.from_dict`) and publishes it for the warehouse
(:meth:`Case.to_record`), and the patrol gateway rebuilds its own copy from that published record
(:meth:`Case.from_dict` again). This is the one mapping between them, driven by the dataclass's own
fields, so a field added to a case cannot be forgotten in one shape. The table's JSON must keep its
shape (the same keys, ISO timestamps, lists), because a restarted worker recovers its tables from
changelog topics written by earlier versions.

Every timestamp is pinned to a zone on the way in (:func:`aware`), so the state machine above this
module can compare any two of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from typing import Any

from schemas import TOWN_TIMEZONE
from schemas.records import CaseRecord
from streams.case_flow import Role


def aware(value: datetime) -> datetime:
    """Read a naive timestamp as China Standard Time, as schemas.records does for every feed.

    Mixing naive and aware datetimes would raise TypeError deep inside a comparison; deciding the
    zone once, at the edge of every value here, keeps the comparisons total.
    """
    return value.replace(tzinfo=TOWN_TIMEZONE) if value.tzinfo is None else value


def _when(value: Any) -> datetime:
    """A datetime from an ISO string (as a Faust table stores it) or a datetime left as is."""
    return aware(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


def _when_if_any(value: Any) -> datetime | None:
    return None if value is None else _when(value)


def _as_is(value: Any) -> Any:
    return value


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value)


_READERS: dict[str, Callable[[Any], Any]] = {
    "str": str,
    "str | None": _as_is,
    "float": float,
    "int": int,
    "bool": bool,
    "datetime": _when,
    "datetime | None": _when_if_any,
    "tuple[str, ...]": _strings,
}
"""How :meth:`Case.from_dict` reads a field, by its annotation; an annotation not listed fails at import."""

_STAND_INS = {"updated_at": "reported_at"}
"""Fields a warehouse case record does not carry, each with the field read in its place.

A record does not carry the time of the last transition, so a case rebuilt from one takes its report
time instead, the earliest its last change can be; the case agent, which keeps the real time, checks
the order of commands again.
"""


def _json_safe(instance: Case | Transition, names: tuple[str, ...]) -> dict[str, Any]:
    """The ``names`` fields of a case or transition, in that order, with ISO timestamps and lists for tuples."""
    document: dict[str, Any] = {}
    for name in names:
        value = getattr(instance, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        document[name] = value
    return document


@dataclass(frozen=True)
class Case:
    """One case (案卷): the state a stream agent keeps per case id.

    ``updated_at`` is the time of the last transition; it is what lets the state machine refuse a
    command dated before it (a phone with a wrong clock, or a stale command replayed out of order).
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
    handled_by: tuple[str, ...] = ()
    """Everyone who took action ``handle`` on the case, so 巡办分离 can bar them from verifying it.

    Fields added after cases were first stored come last, with a default: it is what a table entry
    or record written before the field existed means (no handler known), see :meth:`from_dict`.
    """
    escalation_level: int = 0
    """The highest supervision level (督办) raised under the current deadline; a new deadline starts again at 0."""
    escalated_at: datetime | None = None
    """When the case first reached level 2 (督办), kept for the KPIs whatever deadline follows."""
    review_at: datetime | None = None
    """The review date of its last parking (挂账): a case parked past it raises an alert."""
    review_alerted: bool = False
    """Whether that alert was raised (once per parking)."""

    def __post_init__(self) -> None:
        """Pin every timestamp to a zone and the id lists to tuples, whatever the caller passed."""
        for name in ("reported_at", "due_at", "updated_at"):
            object.__setattr__(self, name, aware(getattr(self, name)))
        for name in ("closed_at", "escalated_at", "review_at"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, aware(getattr(self, name)))
        object.__setattr__(self, "report_ids", tuple(self.report_ids))
        object.__setattr__(self, "handled_by", tuple(self.handled_by))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (ISO timestamps, lists) for the case agent's Faust table."""
        return _json_safe(self, _CASE_FIELDS)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Case:
        """Rebuild a case from :meth:`to_dict` output or a case record's ``model_dump``.

        Keys that are not fields (the report kept beside a case in its table entry, the names a
        record carries) are ignored; a field with a default may be missing (an entry written before
        the field existed); any other missing field is named in the error.
        """
        values: dict[str, Any] = {}
        for name, stand_in, read in _READ:
            key = name if name in data else stand_in
            if key in data:
                values[name] = read(data[key])
            elif name not in _DEFAULTED:
                raise ValueError(f"case record lacks field {key!r}")
        return cls(**values)

    def to_record(self, category_name: str | None, community: str | None) -> CaseRecord:
        """The warehouse's view of the case, with the names a case does not hold looked up by the caller."""
        carried = {name: getattr(self, name) for name in _RECORD_FIELDS}
        return CaseRecord(
            **carried, category_name=category_name, community=community, report_count=len(self.report_ids)
        )


_CASE_FIELDS = tuple(field.name for field in fields(Case))
_READ = tuple((field.name, _STAND_INS.get(field.name, field.name), _READERS[field.type]) for field in fields(Case))
"""Per field of a case, in field order: its name, the key read when the name is absent, and how to read it."""
_DEFAULTED = frozenset(field.name for field in fields(Case) if field.default is not MISSING)
_RECORD_FIELDS = tuple(name for name in _CASE_FIELDS if name in CaseRecord.model_fields)


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
        return _json_safe(self, _TRANSITION_FIELDS)


_TRANSITION_FIELDS = tuple(field.name for field in fields(Transition))


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
    department: str | None = None
    """The department a re-dispatch (改派) sends the case to, for a redispatch only."""

    def __post_init__(self) -> None:
        """A naive time is read as China Standard Time, like every other timestamp here."""
        object.__setattr__(self, "at", aware(self.at))
