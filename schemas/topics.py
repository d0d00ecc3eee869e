"""Topic names: the addresses of the contracts in :mod:`schemas.records`."""

from __future__ import annotations

from schemas.records import CANONICAL_MODELS

RAW_PATROL = "raw.patrol"
RAW_APPROVALS = "raw.approvals"
RAW_EXPORTS = "raw.exports"
RAW_TOPICS = (RAW_PATROL, RAW_APPROVALS, RAW_EXPORTS)
DOOR_TOPICS = {"patrol": RAW_PATROL, "approvals": RAW_APPROVALS}
"""The raw topic of the sources that have a door of their own (the patrol gateway, the approval system's
poller); every other source (department exports, feeds, REST pulls) publishes to ``raw.exports``."""
RAW_BATCHES = "raw.batches"
"""The bulk lane's input: department exports as Arrow batches (:mod:`schemas.batches`), partitioned
like ``raw.exports`` so every version of a record stays in one partition, in order."""
CANONICAL_BATCHES = "canonical.batches"
"""The bulk lane's validated rows, in the partition their raw batch came from; the sink decides
new, update or duplicate against the copies it holds."""
BULK_SEEN = "bulk.seen"
"""What the worker's seen-rows memory learned, one compact message per validated batch
(:mod:`streams.seen_rows`): the worker reads it back whole at start. Only the worker uses it."""

CASE_COMMANDS = "cases.commands"
"""Reports and updates re-keyed by case, on ONE partition: one agent sees every open case, which
spatial duplicate detection needs, and incidents are few enough (thousands a year) for one."""
OVERDUE_ALERTS = "alerts.overdue"
ESCALATION_ALERTS = "alerts.escalation"
"""Supervision (督办): each escalation level a late case reaches, and parked cases (挂账) past their review date."""
APPLICATION_CHANGES = "applications.changes"
"""Application changes and the overdue clock's ticks, on ONE partition: the clock's tick then
reaches the one agent that holds every open application (tens of thousands a year at most)."""
APPLICATION_ALERTS = "alerts.applications"
SINGLE_PARTITION_TOPICS = frozenset({CASE_COMMANDS, APPLICATION_CHANGES})
REJECTS = "rejects"
DUPLICATES = "ledger.duplicates"
MATCH_DECISIONS = "resolution.decisions"
"""Reviewers' answers to weak matches (:mod:`schemas.decisions`), applied by the sink."""
RUNS = "runs"
"""Each run's notices (:mod:`schemas.runs`), sent by the door at its start and end, for the sink's run ledger."""
DISPATCH_PREFIX = "dispatch."


def canonical_topic(kind: str) -> str:
    """Topic of one canonical record kind, e.g. ``canonical.person``."""
    return f"canonical.{kind}"


CANONICAL_TOPICS = tuple(canonical_topic(kind) for kind in CANONICAL_MODELS)


UNIT_SEPARATOR = "."
"""Between a department and its squad in a desk unit: ``enforcement.wansui``."""


def desk_unit(department: str, squad: str | None = None) -> str:
    """The desk that receives a work order: the department's own, or (with ``squad``) one of its squad desks.

    This is the one place the name of a desk unit is made: the case agent publishes on its
    :func:`dispatch_topic`, the gateway lets a desk token bound to it read that topic, and the
    broker creates one topic per unit. Whether a department dispatches by squad is the routing
    rules' business (``dispatch_by_squad`` in ``schemas/data/categories.yaml``).
    """
    return f"{department}{UNIT_SEPARATOR}{squad}" if squad else department


def split_unit(unit: str) -> tuple[str, str | None]:
    """The department and squad (None for a department's own desk) of a desk unit: :func:`desk_unit` undone."""
    department, _, squad = unit.partition(UNIT_SEPARATOR)
    return department, squad or None


def desk_covers(desk: str, department: str, squad: str | None) -> bool:
    """Whether the desk unit ``desk`` may act on a case of ``department`` in ``squad``'s area.

    A department's own desk covers all its cases (the enforcement bureau oversees its squads);
    a squad desk covers only its department's cases of its squad's area.
    """
    return desk in (department, desk_unit(department, squad))


def dispatch_topic(unit: str) -> str:
    """Work-order topic a desk unit (:func:`desk_unit`: a department or one of its squads) subscribes to."""
    return f"{DISPATCH_PREFIX}{unit}"


def sink_topics() -> tuple[str, ...]:
    """Everything the warehouse sink consumes."""
    return (*CANONICAL_TOPICS, CANONICAL_BATCHES, REJECTS, DUPLICATES, MATCH_DECISIONS, RUNS)


SINK_ONLY_TOPICS = frozenset(sink_topics()) - {CANONICAL_BATCHES}
"""Topics no consumer group shares out, on ONE partition: the sink reads each whole (the screen's feed too).

A partition more would add no reader, yet every fetch names every partition its consumer
holds, even an idle fetch, and the embedded broker's work grows with them: 0.11 ms of its CPU
per partition a fetch names, so the sink's 64 partitions, fetched ten times a second, kept 8%
of a core busy on an idle hub. ``canonical.batches`` keeps its partitions: the worker sends each
batch's rows to the partition its raw batch came from.
"""
