"""The case agent: turns reports and updates into cases that follow the town's case flow.

Reports and lifecycle updates arrive re-keyed by case on a single-partition topic,
so this agent alone owns every case: it can spot two workers reporting the same
problem (same category, close in space and time) and it applies transitions in
order. Its state lives in Faust tables backed by changelog topics. Every outcome
leaves as messages: the report or update for the warehouse (with the intake
ledger's provenance), the case and each transition it took, the work order on the
dispatch topic of its desk (the department's, or its squad's: ``RoutingRules.desk_of``),
or a reject naming the illegal step. What may happen to a case is decided by pure
modules this agent calls: ``streams.case_flow`` (the flow file), ``streams.case_machine``
(each step) and ``streams.nearby`` (duplicate reports); a case's table entry is
``Case.to_dict`` with its opening report beside it.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import faust

from foundation.settings import Settings
from schemas.grid import Grid
from schemas.messages import (
    alert_message,
    canonical_message,
    derived_message,
    escalation_message,
    work_order_message,
)
from schemas.records import CaseRecord, CaseTransition, Event, EventUpdate, RawEnvelope
from schemas.topics import CASE_COMMANDS, ESCALATION_ALERTS, OVERDUE_ALERTS, canonical_topic, dispatch_topic
from schemas.working_time import load_calendar
from streams.case_flow import INITIAL_STATUS, CaseFlow, load_flow
from streams.case_machine import (
    IllegalTransition,
    apply,
    auto_advance,
    command_for,
    escalate,
    merge_report,
    open_case,
    review_due,
)
from streams.case_state import Case, Transition
from streams.clocked import RESTORE, BadCommand, Send, register_clocked_agent, topic_sender
from streams.nearby import OpenCases, find_duplicate
from streams.normalise import Accepted, rejection
from streams.routing import RoutingRules

OPENING_REPORT = "opening_report"
"""Key, in a case's table entry, of the report that opened the case."""


def command_message(
    accepted: Accepted, outcome: str, limit_hours: float | None, limit_working_days: int | None = None
) -> bytes:
    """A report or update, handed from the integrate agent to the case agent, with its category's time limit."""
    return json.dumps(
        {
            "type": accepted.record.kind,
            "envelope": accepted.envelope.model_dump(mode="json"),
            "record": accepted.record.model_dump(mode="json"),
            "fingerprint": accepted.fingerprint,
            "outcome": outcome,
            "limit_hours": limit_hours,
            "limit_working_days": limit_working_days,
        },
        ensure_ascii=False,
    ).encode()


def restore_message(record: CaseRecord, reports: list[Event]) -> bytes:
    """A case the warehouse holds, with its reports, handed back to the case agent of a new broker."""
    return json.dumps(
        {
            "type": RESTORE,
            "record": record.model_dump(mode="json"),
            "reports": [report.model_dump(mode="json") for report in reports],
        },
        ensure_ascii=False,
    ).encode()


class CaseDesk:
    """The decisions of the case agent, separated from Faust so each step reads plainly."""

    def __init__(self, settings: Settings, rules: RoutingRules, grid: Grid, flow: CaseFlow, send: Send) -> None:
        self.settings = settings
        self.rules = rules
        self.grid = grid
        self.flow = flow
        self.send = send
        self.calendar = load_calendar(settings.holidays)
        self.cases: Any = {}
        self.reports: Any = {}
        self._open: OpenCases | None = None

    def _index(self) -> OpenCases:
        """The open cases, indexed by place, built from the table on first use.

        Decoding every stored case for each new report made a busy day quadratic, and so did
        comparing the report with every open case of its category; the index is built once
        from the table (which a restarted worker recovers from its changelog), then follows
        every case this desk stores, and hands :func:`find_duplicate` only the cases near a report.
        """
        if self._open is None:
            self._open = OpenCases(self.settings.duplicate_distance_m)
            for item in self.cases.values():
                self._open.follow(Case.from_dict(item))
        return self._open

    def open_cases(self, category: str | None = None) -> list[Case]:
        """Unfinished cases (of one category)."""
        return self._index().cases(category)

    def reindex(self) -> None:
        """Forget the index; the next lookup rebuilds it from the table (after a rebalance recovered it)."""
        self._open = None

    def _follow(self, case: Case) -> None:
        if self._open is not None:
            self._open.follow(case)

    def case_record(self, case: Case) -> CaseRecord:
        """The warehouse's view of a case, with names looked up from the code tables."""
        category = self.rules.categories.get(case.category)
        cell = self.grid.cells.get(case.grid_code or "")
        return case.to_record(category.name if category else None, cell.community if cell else None)

    async def _store(
        self, envelope: RawEnvelope | None, case: Case, transitions: list[Transition], first_report: Event | None = None
    ) -> None:
        """Keep the case, publish it and its transitions, and a work order for each dispatch.

        The case's entry in the table also carries the report that opened it (``first_report``
        when the caller holds it, a fresh report, else what the entry held): a report that
        opens a case then costs one table write and one changelog message, not two.
        """
        entry = case.to_dict()
        opening = (
            first_report.model_dump(mode="json")
            if first_report
            else (self.cases.get(case.case_id) or {}).get(OPENING_REPORT)
        )
        if opening is not None:
            entry[OPENING_REPORT] = opening
        self.cases[case.case_id] = entry
        self._follow(case)
        await self.send(
            canonical_topic("case"), case.case_id.encode(), derived_message(envelope, self.case_record(case))
        )
        for transition in transitions:
            record = CaseTransition.model_validate(transition.to_dict())
            await self.send(
                canonical_topic("case_transition"), case.case_id.encode(), derived_message(envelope, record)
            )
            if transition.to_status == "dispatched":
                await self._work_order(case, first_report)

    async def _work_order(self, case: Case, first_report: Event | None) -> None:
        report = first_report or Event.model_validate(self._report(case.report_ids[0]))
        category = self.rules.categories.get(case.category)
        limit = (
            category.limit_hours
            if category and category.limit_hours
            else (case.due_at - case.reported_at).total_seconds() / 3600
        )
        message = work_order_message(report.model_copy(update={"status": "dispatched"}), case.department, limit)
        desk = self.rules.desk_of(case.department, case.squad)
        await self.send(dispatch_topic(desk), case.case_id.encode(), message)

    async def _reject(self, raw: bytes, envelope: RawEnvelope, code: str, reason: str) -> None:
        reject = rejection(raw, "lifecycle", code, reason, envelope).reject
        await self.send("rejects", reject.record_uid.encode(), reject.model_dump_json().encode())

    async def handle(self, message: dict[str, Any], raw: bytes) -> None:
        """One command of the case topic: a report or an update; anything else is no command of this desk."""
        if message["type"] == "event":
            await self.report(message)
        elif message["type"] == "event_update":
            await self.update(raw, message)
        elif message["type"] == RESTORE:
            self.restore(message)
        else:
            raise BadCommand(f"the case desk takes event, event_update and restore commands, not {message['type']!r}")

    def restore(self, message: dict[str, Any]) -> None:
        """Take back a case from the warehouse, unless this desk already holds it at the same or a later step.

        Nothing is published: the warehouse already has the case, and the supervisor puts the
        record back on ``canonical.case`` itself for the gateways that follow it.
        """
        record = CaseRecord.model_validate(message["record"])
        stored = self.cases.get(record.case_id)
        if stored is not None and Case.from_dict(stored).seq >= record.seq:
            return
        case = Case.from_dict(record.model_dump())
        entry = case.to_dict()
        for document in message["reports"]:
            report = Event.model_validate(document)
            if report.event_id == case.case_id:
                entry[OPENING_REPORT] = report.model_dump(mode="json")
            else:
                self.reports[report.event_id] = report.model_dump(mode="json")
        self.cases[case.case_id] = entry
        self._follow(case)

    async def report(self, message: dict[str, Any]) -> None:
        """A new report opens a case (accepted and dispatched at once) or joins an open one.

        A report from a source whose reports are verified on site (``RoutingRules.verify_on_site``,
        the 12345 hotline) opens its case and leaves it ``reported`` for a person to accept.
        """
        envelope = RawEnvelope.model_validate(message["envelope"])
        event = Event.model_validate(message["record"])
        known = self._report(event.event_id)
        if message["outcome"] == "update" and known is not None:
            event = event.model_copy(update={"case_id": known["case_id"]})
            self._keep_report(event)
            await self._emit_report(envelope, event, message, "update")
            return
        match = find_duplicate(
            self._index().near(event.category, event.lat, event.lon),
            category=event.category,
            lat=event.lat,
            lon=event.lon,
            at=event.reported_at,
            max_distance_m=self.settings.duplicate_distance_m,
            max_minutes=self.settings.duplicate_window_minutes,
        )
        if match is not None:
            case, transitions = merge_report(match, event.event_id), []
        else:
            case, opened = open_case(
                case_id=event.event_id,
                report_id=event.event_id,
                category=event.category,
                department=event.department or "",
                squad=event.squad,
                grid_code=event.grid_code,
                lat=event.lat,
                lon=event.lon,
                reporter_id=event.reporter_id,
                reported_at=event.reported_at,
                limit_hours=None if message["limit_hours"] is None else float(message["limit_hours"]),
                limit_working_days=message.get("limit_working_days"),
                calendar=self.calendar,
            )
            held = envelope.source in self.rules.verify_on_site
            steps = [] if held else auto_advance(self.flow, case, event.reported_at)
            transitions = [opened, *(transition for _, transition in steps)]
            case = steps[-1][0] if steps else case
        event = event.model_copy(update={"case_id": case.case_id, "status": case.status})
        if match is not None:
            self._keep_report(event)
        await self._emit_report(envelope, event, message, "new")
        await self._store(envelope, case, transitions, event if match is None else None)

    def _report(self, report_id: str) -> dict[str, Any] | None:
        """A stored report: in its case's entry if it opened the case, else in the reports table.

        The case's entry is asked first because a report that opened its case is kept there
        (older tables kept every report in the reports table, which still answers for them).
        """
        opened = self.cases.get(report_id)
        if opened is not None and OPENING_REPORT in opened:
            return dict(opened[OPENING_REPORT])
        return self.reports.get(report_id)

    def _keep_report(self, event: Event) -> None:
        """Store a report (already filed in its case) where :meth:`_report` finds it."""
        document = event.model_dump(mode="json")
        stored = self.cases.get(event.event_id)
        if event.case_id == event.event_id and stored is not None:
            self.cases[event.event_id] = {**stored, OPENING_REPORT: document}
        else:
            self.reports[event.event_id] = document

    async def _emit_report(self, envelope: RawEnvelope, event: Event, message: dict[str, Any], outcome: str) -> None:
        body = canonical_message(envelope, event, message["fingerprint"], outcome)  # type: ignore[arg-type]
        await self.send(canonical_topic("event"), event.event_id.encode(), body)

    async def update(self, raw: bytes, message: dict[str, Any]) -> None:
        """An update moves its case along the flow, or is rejected with the reason it is illegal."""
        envelope = RawEnvelope.model_validate(message["envelope"])
        update = EventUpdate.model_validate(message["record"])
        report = self._report(update.event_id)
        stored = self.cases.get(report["case_id"]) if report else None
        if stored is None:
            await self._reject(
                raw,
                envelope,
                "unknown_case",
                f"no case has report {update.event_id!r}; an update must name the report_id of a reported case",
            )
            return
        if update.department is not None and update.department not in self.rules.departments:
            known = ", ".join(sorted(self.rules.departments))
            await self._reject(
                raw, envelope, "unknown_department", f"no department {update.department!r}; departments: {known}"
            )
            return
        try:
            command = command_for(stored["case_id"], update)
            case, transition = apply(self.flow, Case.from_dict(stored), command)
        except IllegalTransition as exc:
            await self._reject(raw, envelope, exc.code, str(exc))
            return
        update = update.model_copy(update={"actor_role": command.actor_role})
        body = canonical_message(envelope, update, message["fingerprint"], message["outcome"])
        await self.send(canonical_topic("event_update"), update.update_id.encode(), body)
        # A case held for verification on site, once a person has filed it, is dispatched as any other.
        steps = auto_advance(self.flow, case, command.at) if transition.from_status == INITIAL_STATUS else []
        case = steps[-1][0] if steps else case
        await self._store(envelope, case, [transition, *(step for _, step in steps)])

    async def tick(self, now: datetime) -> None:
        """Raise the supervision (督办) of each late case and remind of each parked case past its review date.

        Every level a case reaches is raised once, on ``alerts.escalation``; reaching level 1, the
        moment it passes its deadline unfinished, also raises the one overdue alert on
        ``alerts.overdue``. A parked case (挂账) is late for nothing, but once its review date passes
        it raises one ``review_due`` alert. The case is stored with what was raised, so a restarted
        worker does not raise it again.
        """
        for case in self.open_cases():
            escalated, levels = escalate(self.flow, case, now)
            reminded = review_due(case, now)
            if not levels and not reminded:
                continue
            case = dataclasses.replace(escalated, review_alerted=escalated.review_alerted or reminded)
            record = self.case_record(case)
            key = case.case_id.encode()
            if levels and levels[0].level == 1:
                await self.send(OVERDUE_ALERTS, key, alert_message(record, now))
            for level in levels:
                await self.send(ESCALATION_ALERTS, key, escalation_message(record, now, level.level, level.zh))
            if reminded:
                await self.send(ESCALATION_ALERTS, key, escalation_message(record, now, None, "挂账到期复核"))
            await self._store(None, case, [])


def register_case_agent(app: faust.App, settings: Settings, rules: RoutingRules, grid: Grid) -> faust.TopicT:
    """Add the case agent, its tables and its overdue clock to the app; return its command topic."""
    send = topic_sender(app)
    desk = CaseDesk(settings, rules, grid, load_flow(), send)
    desk.cases = app.Table("cases", default=None, partitions=1, key_type=str)
    desk.reports = app.Table("case-reports", default=None, partitions=1, key_type=str)

    async def reindex(sender: faust.App, assigned: Any, **_: Any) -> None:
        desk.reindex()

    app.on_partitions_assigned.connect(reindex)

    return register_clocked_agent(
        app, CASE_COMMANDS, "cases", settings.overdue_check_seconds, desk.handle, desk.tick, send
    )
