"""The patrol gateway's copy of every case, so a desk learns at once that a step is illegal.

The case agent decides every transition, but it answers through the rejects, after the
desk's app has moved on. The gateway therefore follows ``canonical.case`` (the agent's
output), rebuilds each case from its record (``streams.case_state``) and checks each update
against the same case flow with the same state machine (``streams.case_machine``) before
accepting it: an update for an unknown case gets 404, an illegal step 409, each with the
agent's own reason. The agent still re-checks, so a race between two gateways ends in a
reject, never in a wrong case.

The copy may trail the agent by a moment. Updates this gateway accepts are applied to the
copy at once (so a desk can post "in handling" then "handled" back to back), and a record
older than the copy (by transition count) is ignored. Updates to a report this gateway accepted
but the agent has not yet filed are let through and applied once the case appears.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from foundation.logs import get_logger
from schemas.records import CaseRecord, EventUpdate
from schemas.rejects import describe_error
from schemas.topics import canonical_topic, desk_covers, split_unit
from streams.case_flow import INITIAL_STATUS, CaseFlow
from streams.case_machine import IllegalTransition, apply, auto_advance, command_for
from streams.case_state import Case

log = get_logger(__name__)
QUIET_MS = 1000
FETCH_WAIT_MS = 200
"""How long the broker may hold a fetch to gather more case records.

With the default (answer as soon as one byte is there) the view fetched about once per case
record on a busy day, and each fetch cost this gateway and the broker CPU the incident lane
needed. A fifth of a second more lag is harmless: updates to reports this gateway accepted are
let through until the case appears, and the agent re-checks every update anyway.
"""
FETCH_MIN_BYTES = 256 * 1024
"""...unless this much is waiting already (a backlog is read at full speed)."""


@dataclass(frozen=True)
class PublishedCase:
    """A case as the agent last published it, and when (the broker's time of the record; None if it has none).

    The view's own copy may be a step ahead (updates this gateway accepted); this is what the
    agent decided, which is what the gateway tells a reader (Open311).
    """

    record: CaseRecord
    published_at: datetime | None


class CaseView:
    """Cases by id and reports by case, kept current by a background consumer."""

    def __init__(self, bootstrap: str, flow: CaseFlow, client_options: Mapping[str, Any] | None = None) -> None:
        self.flow = flow
        self._bootstrap = bootstrap
        self._client_options = dict(client_options or {})
        """kafka-python's SASL options (:func:`foundation.kafka_security.kafka_python_options`)."""
        self._lock = threading.Lock()
        self._cases: dict[str, Case] = {}
        self._published: dict[str, PublishedCase] = {}
        self._report_case: dict[str, str] = {}
        self._pending: set[str] = set()
        self._accepted_updates: set[str] = set()
        self._unapplied: dict[str, list[EventUpdate]] = {}
        self._caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="case-view", daemon=True)

    def start(self) -> None:
        """Start following the case topic from its beginning."""
        self._thread.start()

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _follow(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            fetch_min_bytes=FETCH_MIN_BYTES,
            **self._client_options,
        )
        topic = canonical_topic("case")
        try:
            partitions = [
                TopicPartition(topic, number) for number in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            while not self._stop.is_set():
                polled = consumer.poll(timeout_ms=QUIET_MS)
                if not polled:
                    self._caught_up.set()
                for messages in polled.values():
                    for message in messages:
                        self._take_logged(message)
        finally:
            consumer.close()

    def _take_logged(self, message: ConsumerRecord) -> None:
        """Take one case record; one that cannot be read or applied is skipped and logged, never fatal.

        An exception here would end the following thread, and the gateway would judge every later
        update against cases that no longer change. The agent re-checks every update anyway.
        """
        try:
            published_at = datetime.fromtimestamp(message.timestamp / 1000, UTC) if message.timestamp > 0 else None
            self._take(message.value or b"", published_at)
        except Exception as exc:  # noqa: BLE001 - a record the view cannot use must not stop it following
            log.warning(
                "case view skipped a case record it could not use",
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                error=describe_error(exc),
            )

    def _take(self, value: bytes, published_at: datetime | None = None) -> None:
        """Apply one message of ``canonical.case`` to the copy; raises if it holds no readable case record."""
        record = CaseRecord.model_validate(json.loads(value)["record"])
        with self._lock:
            published = self._published.get(record.case_id)
            if published is None or published.record.seq <= record.seq:
                self._published[record.case_id] = PublishedCase(record, published_at)
            known = self._cases.get(record.case_id)
            if known is not None and known.seq > record.seq:
                return
            self._cases[record.case_id] = Case.from_dict(record.model_dump())
            for report_id in record.report_ids:
                self._report_case[report_id] = record.case_id
                self._pending.discard(report_id)
                for update in self._unapplied.pop(report_id, []):
                    with contextlib.suppress(IllegalTransition):  # already accepted; the agent rules on it
                        self._apply(record.case_id, update)

    @property
    def caught_up(self) -> bool:
        """Whether the view has read every case published before it started (a case it lacks then does not exist)."""
        return self._caught_up.is_set()

    def published(self, case_or_report_id: str) -> PublishedCase | None:
        """The case with this id, or the case a report with this id belongs to, as last published; None if unknown."""
        with self._lock:
            found = self._published.get(case_or_report_id)
            if found is None and case_or_report_id in self._report_case:
                found = self._published.get(self._report_case[case_or_report_id])
            return found

    def note_report(self, report_id: str) -> None:
        """A report this gateway accepted: until the agent files it, updates to it are let through."""
        with self._lock:
            if report_id not in self._report_case:
                self._pending.add(report_id)

    def refuse(self, update: EventUpdate, desk: str | None = None) -> tuple[int, str, str] | None:
        """Why the update cannot be accepted (HTTP status, code, reason), or None to accept it.

        With ``desk`` (a desk unit the gateway knows: a department, or one of its squads), only a
        case that desk covers may be moved (:func:`schemas.topics.desk_covers`).
        """
        with self._lock:
            if update.update_id in self._accepted_updates:
                return None  # a phone resending an update it already got 202 for: dedup absorbs it
            case_id = self._report_case.get(update.event_id)
            if desk is not None:
                case = self._cases.get(case_id or "")
                if case is None and (update.event_id in self._pending or not self._caught_up.is_set()):
                    return (
                        503,
                        "case_not_seen_yet",
                        f"this gateway has not yet seen the case of report {update.event_id!r}, so it cannot tell "
                        "which desk it is dispatched to; send the update again in a moment",
                    )
                if case is None:
                    return (
                        404,
                        "unknown_case",
                        f"no case has report {update.event_id!r}; an update must name the report_id of a work order",
                    )
                if not desk_covers(desk, case.department, case.squad):
                    return 403, "forbidden", _not_yours(case, desk)
            if case_id is None:
                if update.event_id in self._pending or not self._caught_up.is_set():
                    self._unapplied.setdefault(update.event_id, []).append(update)
                    self._accepted_updates.add(update.update_id)
                    return None
                return (
                    404,
                    "unknown_case",
                    f"no case has report {update.event_id!r}; an update must name the report_id of a reported case",
                )
            try:
                self._apply(case_id, update)
            except IllegalTransition as exc:
                return 409, exc.code, str(exc)
            self._accepted_updates.add(update.update_id)
            return None

    def _apply(self, case_id: str, update: EventUpdate) -> None:
        """Move the copy of a case along, as the agent will (call with the lock held).

        The copy does not know when the last transition happened, so only the report time bounds
        the command's time here; the agent checks the real order.
        """
        case = self._cases[case_id]
        command = command_for(case_id, update)
        moved, transition = apply(self.flow, dataclasses.replace(case, updated_at=case.reported_at), command)
        if transition.from_status == INITIAL_STATUS:
            # As the agent does: a case held for verification on site, once a person has filed it, is dispatched.
            steps = auto_advance(self.flow, moved, command.at)
            moved = steps[-1][0] if steps else moved
        self._cases[case_id] = moved


def _not_yours(case: Case, desk: str) -> str:
    """Why ``desk`` may not move ``case``: another department's, or (for a squad desk) another area's."""
    department, squad = split_unit(desk)
    if squad is None or department != case.department:
        return f"case {case.case_id} is dispatched to {case.department}, not to {desk}; a desk moves only its own cases"
    area = f"squad {case.squad}'s area" if case.squad else "no squad's area (outside every grid cell)"
    return (
        f"case {case.case_id} of {case.department} lies in {area}, and the squad desk {desk} moves only cases of "
        f"squad {squad}'s area; the squad of its area or the {department} desk may move it"
    )
