"""The stream's side of applications: unknown items refused, change numbers dedup, one alert when overdue."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from foundation.packaged import CATEGORIES
from schemas import TOWN_TIMEZONE
from schemas.approvals import CHANGE_SEQ_FIELD, ApprovalCatalogue, load_catalogue
from schemas.records import RawEnvelope
from schemas.topics import APPLICATION_ALERTS, DUPLICATES, canonical_topic
from streams.applications import ApplicationDesk, Tracked, change_message, outcome_of
from streams.normalise import Accepted, Rejected, normalise
from streams.routing import RoutingRules, load_rules

RULES_FILE = CATEGORIES
USCC = "91350100M000100Y43"
LONG_AGO = datetime(2020, 1, 1, 9, 0, tzinfo=TOWN_TIMEZONE)
ITEM = "320411-XK-001"  # 3 calendar days


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(RULES_FILE)


@pytest.fixture(scope="module")
def catalogue() -> ApprovalCatalogue:
    return load_catalogue()


def raw(application_id: str, status: str, number: int | None, *, item: str = ITEM, updated: timedelta) -> bytes:
    payload: dict[str, Any] = {
        "application_id": application_id,
        "item_code": item,
        "applicant_uscc": USCC,
        "status": status,
        "submitted_at": LONG_AGO.isoformat(),
        "updated_at": (LONG_AGO + updated).isoformat(),
    }
    if number is not None:
        payload[CHANGE_SEQ_FIELD] = number
    envelope = RawEnvelope(
        record_uid=f"uid-{application_id}-{number}-{status}",
        source="approvals",
        source_record_id=application_id,
        entity="application",
        received_at=datetime.now(TOWN_TIMEZONE),
        content_hash="h",
        payload=payload,
    )
    return envelope.model_dump_json().encode()


def accepted(data: bytes, rules: RoutingRules, catalogue: ApprovalCatalogue) -> Accepted:
    decision = normalise(data, rules, catalogue=catalogue)
    assert isinstance(decision, Accepted), decision
    return decision


def test_an_application_for_an_item_outside_the_catalogue_is_rejected_at_routing(
    rules: RoutingRules, catalogue: ApprovalCatalogue
) -> None:
    decision = normalise(raw("A1", "submitted", 1, item="320411-ZZ-404", updated=timedelta()), rules, None, catalogue)
    assert isinstance(decision, Rejected)
    assert (decision.reject.stage, decision.reject.reason_code) == ("route", "unknown_item")
    assert "320411-ZZ-404" in decision.reject.reason


def test_a_catalogued_application_gets_the_items_name(rules: RoutingRules, catalogue: ApprovalCatalogue) -> None:
    record = accepted(raw("A1", "submitted", 1, updated=timedelta()), rules, catalogue).record
    assert record.item_name == "个体工商户设立登记"  # type: ignore[attr-defined]


def test_change_message_carries_the_change_number_only_when_it_is_an_integer(
    rules: RoutingRules, catalogue: ApprovalCatalogue
) -> None:
    numbered = accepted(raw("A1", "submitted", 7, updated=timedelta()), rules, catalogue)
    assert json.loads(change_message(numbered))["change_seq"] == 7
    unnumbered = accepted(raw("A1", "submitted", None, updated=timedelta()), rules, catalogue)
    assert json.loads(change_message(unnumbered))["change_seq"] is None


def stored(change_seq: int | None, fingerprint: str, rules: RoutingRules, catalogue: ApprovalCatalogue) -> Tracked:
    record = accepted(raw("A1", "submitted", change_seq, updated=timedelta()), rules, catalogue).record
    return Tracked(application=record, change_seq=change_seq, fingerprint=fingerprint, due_at=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("previous", "number", "fingerprint", "outcome"),
    [
        (None, 1, "a", "new"),
        ((5, "a"), 6, "b", "update"),
        ((5, "a"), 5, "a", "duplicate"),
        ((5, "a"), 3, "z", "duplicate"),
        ((5, "a"), 6, "a", "duplicate"),
        ((None, "a"), None, "b", "update"),
        ((None, "a"), None, "a", "duplicate"),
    ],
)
def test_outcome_by_change_number_then_content(
    previous: tuple[int | None, str] | None,
    number: int | None,
    fingerprint: str,
    outcome: str,
    rules: RoutingRules,
    catalogue: ApprovalCatalogue,
) -> None:
    before = stored(previous[0], previous[1], rules, catalogue) if previous else None
    assert outcome_of(before, number, fingerprint) == outcome


class Desk:
    """An application desk with a plain dict for its table and a list for what it sends."""

    def __init__(self, catalogue: ApprovalCatalogue, table: dict[str, Any] | None = None) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.desk = ApplicationDesk(catalogue, self._send)
        self.desk.applications = {} if table is None else table

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append((topic, key.decode(), json.loads(value)))

    def change(self, accepted: Accepted) -> None:
        asyncio.run(self.desk.change(json.loads(change_message(accepted))))

    def tick(self, now: datetime) -> None:
        asyncio.run(self.desk.tick(now))

    def outcomes(self) -> list[str]:
        return [message["meta"]["outcome"] for topic, _, message in self.sent if topic != APPLICATION_ALERTS]

    def alerts(self) -> list[str]:
        return [key for topic, key, _ in self.sent if topic == APPLICATION_ALERTS]


def test_rows_resent_after_a_connector_crash_are_duplicates_and_never_turn_the_status_back(
    rules: RoutingRules, catalogue: ApprovalCatalogue
) -> None:
    rows = [raw("A1", "submitted", 1, updated=timedelta()), raw("A1", "accepted", 2, updated=timedelta(hours=1))]
    desk = Desk(catalogue)
    for data in [*rows, *rows, raw("A1", "approved", 3, updated=timedelta(days=1))]:
        desk.change(accepted(data, rules, catalogue))
    assert desk.outcomes() == ["new", "update", "duplicate", "duplicate", "update"]
    topics = [topic for topic, _, _ in desk.sent]
    assert topics == [canonical_topic("application")] * 2 + [DUPLICATES] * 2 + [canonical_topic("application")]
    statuses = [message["record"]["status"] for topic, _, message in desk.sent if topic != DUPLICATES]
    assert statuses == ["submitted", "accepted", "approved"]


def test_an_application_past_its_limit_at_two_checks_raises_one_alert_even_after_a_restart(
    rules: RoutingRules, catalogue: ApprovalCatalogue
) -> None:
    desk = Desk(catalogue)
    desk.change(accepted(raw("late", "accepted", 1, updated=timedelta(hours=1)), rules, catalogue))
    desk.change(accepted(raw("in-time", "submitted", 2, updated=timedelta()), rules, catalogue))
    desk.change(accepted(raw("in-time", "approved", 3, updated=timedelta(days=2)), rules, catalogue))
    desk.tick(LONG_AGO + timedelta(days=3))
    assert desk.alerts() == [], "due exactly at the limit is not late yet"
    desk.tick(LONG_AGO + timedelta(days=3, seconds=1))
    desk.tick(LONG_AGO + timedelta(days=4))
    assert desk.alerts() == ["late"]
    alert = desk.sent[-1][2]
    assert alert["item"]["time_limit_days"] == 3 and alert["application"]["status"] == "accepted"
    assert alert["due_at"] == (LONG_AGO + timedelta(days=3)).isoformat()

    restarted = Desk(catalogue, table=desk.desk.applications)
    restarted.tick(LONG_AGO + timedelta(days=5))
    assert restarted.alerts() == []


def test_a_later_change_keeps_the_alert_remembered(rules: RoutingRules, catalogue: ApprovalCatalogue) -> None:
    desk = Desk(catalogue)
    desk.change(accepted(raw("late", "accepted", 1, updated=timedelta()), rules, catalogue))
    desk.tick(LONG_AGO + timedelta(days=4))
    desk.tick(LONG_AGO + timedelta(days=4, minutes=1))
    desk.change(accepted(raw("late", "in_review", 2, updated=timedelta(days=4)), rules, catalogue))
    desk.tick(LONG_AGO + timedelta(days=5))
    desk.tick(LONG_AGO + timedelta(days=5, minutes=1))
    assert desk.alerts() == ["late"]


def test_a_change_finishing_the_application_right_behind_a_check_raises_nothing(
    rules: RoutingRules, catalogue: ApprovalCatalogue
) -> None:
    desk = Desk(catalogue)
    desk.change(accepted(raw("in-time", "submitted", 1, updated=timedelta()), rules, catalogue))
    desk.tick(LONG_AGO + timedelta(days=30))
    desk.change(accepted(raw("in-time", "approved", 2, updated=timedelta(days=1)), rules, catalogue))
    desk.tick(LONG_AGO + timedelta(days=30, minutes=1))
    assert desk.alerts() == []


def test_an_open_application_changed_between_checks_is_confirmed_again_before_its_alert(
    rules: RoutingRules, catalogue: ApprovalCatalogue
) -> None:
    desk = Desk(catalogue)
    desk.change(accepted(raw("late", "submitted", 1, updated=timedelta()), rules, catalogue))
    desk.tick(LONG_AGO + timedelta(days=30))
    desk.change(accepted(raw("late", "accepted", 2, updated=timedelta(days=1)), rules, catalogue))
    desk.tick(LONG_AGO + timedelta(days=30, minutes=1))
    assert desk.alerts() == []
    desk.tick(LONG_AGO + timedelta(days=30, minutes=2))
    assert desk.alerts() == ["late"]
