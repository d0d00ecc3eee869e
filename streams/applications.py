"""The application agent: each change row of the approval system becomes one fact, and late ones raise alerts.

Application changes arrive from the integrate agent on a single-partition topic, so this
agent alone remembers every application, in a Faust table backed by a changelog. It
decides each change's outcome itself instead of the generic content dedup: after a
connector crash the approval system's rows are re-sent in order, and an old change
(status ``accepted``) re-sent after a newer one (``approved``) differs in content from
what was seen last, so content alone would count it again and briefly turn the
application back. The approval system's change number settles it: a change numbered at
or below the last one applied is a duplicate.

An overdue clock ticks through the same topic and raises one alert on
``alerts.applications`` for each application that passes its item's statutory time limit
unfinished; the table remembers the alert, so a restarted worker does not raise it again.
The alert is sent before the table notes it, so it is never lost: a worker killed in the
instant between the two repeats it after its restart, with the same key and the same bytes
(the tick it answers is read again), which a subscriber can drop.
An application must be found overdue by two checks in a row, with no change of it in
between: a tick can fall between two changes of one batch, and the change that finishes
an application in time may be right behind it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import faust

from foundation.settings import Settings
from schemas.approvals import CHANGE_SEQ_FIELD, ApprovalCatalogue
from schemas.messages import canonical_message, duplicate_message
from schemas.records import Application, RawEnvelope
from schemas.topics import APPLICATION_ALERTS, APPLICATION_CHANGES, DUPLICATES, canonical_topic
from schemas.working_time import WEEKDAYS_ONLY, WorkingCalendar, load_calendar
from streams.clocked import BadCommand, Send, register_clocked_agent, topic_sender
from streams.normalise import Accepted

FINISHED_APPLICATION_STATUSES = frozenset({"approved", "refused", "withdrawn"})
"""Statuses after which the applicant waits for nothing more: the time limit no longer runs."""


def change_message(accepted: Accepted) -> bytes:
    """An application change, handed from the integrate agent to the application agent."""
    number = accepted.envelope.payload.get(CHANGE_SEQ_FIELD)
    return json.dumps(
        {
            "type": "application",
            "envelope": accepted.envelope.model_dump(mode="json"),
            "record": accepted.record.model_dump(mode="json"),
            "fingerprint": accepted.fingerprint,
            "change_seq": number if isinstance(number, int) and not isinstance(number, bool) else None,
        },
        ensure_ascii=False,
    ).encode()


@dataclass(frozen=True)
class Tracked:
    """What the agent remembers of one application: its last applied change and its clock."""

    application: Application
    change_seq: int | None
    fingerprint: str
    due_at: datetime | None
    overdue_alerted: bool = False
    overdue_seen: bool = False

    @property
    def finished(self) -> bool:
        """Decided or withdrawn: nothing is owed to the applicant any more."""
        return self.application.status in FINISHED_APPLICATION_STATUSES

    def is_overdue(self, now: datetime) -> bool:
        """Still unfinished after its time limit; an application without a known limit never is."""
        return not self.finished and self.due_at is not None and now > self.due_at

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the Faust table."""
        return {
            "application": self.application.model_dump(mode="json"),
            "change_seq": self.change_seq,
            "fingerprint": self.fingerprint,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "overdue_alerted": self.overdue_alerted,
            "overdue_seen": self.overdue_seen,
        }

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Tracked:
        """Back from the Faust table."""
        return cls(
            application=Application.model_validate(stored["application"]),
            change_seq=stored["change_seq"],
            fingerprint=stored["fingerprint"],
            due_at=datetime.fromisoformat(stored["due_at"]) if stored["due_at"] else None,
            overdue_alerted=bool(stored["overdue_alerted"]),
            overdue_seen=bool(stored["overdue_seen"]),
        )


def outcome_of(
    stored: Tracked | None, change_seq: int | None, fingerprint: str
) -> Literal["new", "update", "duplicate"]:
    """Whether a change is the application's first, a later one, or one already applied.

    A change numbered at or below the last applied one is a re-send; without numbers (a
    publisher that has none), unchanged content is. A numbered change with content equal
    to the current state changes nothing and is a duplicate too.
    """
    if stored is None:
        return "new"
    if change_seq is not None and stored.change_seq is not None and change_seq <= stored.change_seq:
        return "duplicate"
    return "duplicate" if fingerprint == stored.fingerprint else "update"


def alert_message(tracked: Tracked, catalogue: ApprovalCatalogue, now: datetime) -> bytes:
    """An overdue alert for ``alerts.applications``: the application, its item, and how late it is."""
    application = tracked.application
    item = catalogue.get(application.item_code)
    due_at = tracked.due_at or now
    document = {
        "alert": "application_overdue",
        "application": application.model_dump(mode="json"),
        "item": {
            "code": application.item_code,
            "name": item.name if item else application.item_name,
            "department": item.department if item else None,
            "department_name": item.department_name if item else None,
            "time_limit_days": item.time_limit_days if item else None,
            "time_limit_unit": item.time_limit_unit if item else None,
        },
        "due_at": due_at.isoformat(),
        "days_late": round((now - due_at).total_seconds() / 86400, 2),
        "at": now.isoformat(),
    }
    return json.dumps(document, ensure_ascii=False).encode()


class ApplicationDesk:
    """The decisions of the application agent, separated from Faust so each step reads plainly."""

    def __init__(self, catalogue: ApprovalCatalogue, send: Send, calendar: WorkingCalendar = WEEKDAYS_ONLY) -> None:
        self.catalogue = catalogue
        self.send = send
        self.calendar = calendar
        self.applications: Any = {}

    def _tracked(self, application_id: str) -> Tracked | None:
        stored = self.applications.get(application_id)
        return Tracked.from_dict(stored) if stored else None

    async def handle(self, message: dict[str, Any], raw: bytes) -> None:
        """One command of the application topic; anything but a change is no command of this desk."""
        if message["type"] != "application":
            raise BadCommand(f"the application desk takes application commands, not {message['type']!r}")
        await self.change(message)

    async def change(self, message: dict[str, Any]) -> None:
        """Apply one change row: forward it as new or update, or note it as a duplicate."""
        envelope = RawEnvelope.model_validate(message["envelope"])
        application = Application.model_validate(message["record"])
        change_seq, fingerprint = message["change_seq"], message["fingerprint"]
        stored = self._tracked(application.application_id)
        outcome = outcome_of(stored, change_seq, fingerprint)
        if outcome == "duplicate":
            await self.send(DUPLICATES, envelope.record_uid.encode(), duplicate_message(envelope, fingerprint))
            return
        item = self.catalogue.get(application.item_code)
        tracked = Tracked(
            application=application,
            change_seq=change_seq,
            fingerprint=fingerprint,
            due_at=item.due_at(application.submitted_at, self.calendar) if item else None,
            overdue_alerted=stored.overdue_alerted if stored else False,
        )
        self.applications[application.application_id] = tracked.to_dict()
        body = canonical_message(envelope, application, fingerprint, outcome)
        await self.send(canonical_topic("application"), application.key.encode(), body)

    async def tick(self, now: datetime) -> None:
        """Raise one alert per application found past its time limit unfinished at two checks in a row."""
        for stored in list(self.applications.values()):
            if stored["overdue_alerted"] or stored["due_at"] is None:
                continue
            tracked = Tracked.from_dict(stored)
            if not tracked.is_overdue(now):
                continue
            key = tracked.application.application_id
            if not tracked.overdue_seen:
                self.applications[key] = replace(tracked, overdue_seen=True).to_dict()
                continue
            tracked = replace(tracked, overdue_alerted=True)
            await self.send(APPLICATION_ALERTS, key.encode(), alert_message(tracked, self.catalogue, now))
            self.applications[key] = tracked.to_dict()


def register_application_agent(app: faust.App, settings: Settings, catalogue: ApprovalCatalogue) -> faust.TopicT:
    """Add the application agent, its table and its overdue clock to the app; return its change topic."""
    send = topic_sender(app)
    desk = ApplicationDesk(catalogue, send, load_calendar(settings.holidays))
    desk.applications = app.Table("applications", default=None, partitions=1, key_type=str)

    return register_clocked_agent(
        app, APPLICATION_CHANGES, "applications", settings.approvals_overdue_check_seconds, desk.handle, desk.tick, send
    )
