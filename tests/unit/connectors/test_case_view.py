"""The gateway's case view: refuses what is certainly illegal, lets through what it cannot know yet."""

from __future__ import annotations

import json

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from structlog.testing import capture_logs

from connectors.case_view import CaseView
from schemas.records import CaseRecord, EventUpdate
from streams.case_flow import load_flow
from tests.support.patrol import gateway_role


def record(case_id: str, status: str, seq: int, reports: list[str] | None = None) -> bytes:
    case = CaseRecord(
        case_id=case_id,
        category="0404",
        department="water",
        reporter_id="GW021",
        status=status,  # type: ignore[arg-type]
        reported_at="2026-11-25T08:30:00+08:00",  # type: ignore[arg-type]
        due_at="2026-11-25T20:30:00+08:00",  # type: ignore[arg-type]
        report_ids=reports or [case_id],
        report_count=len(reports or [case_id]),
        seq=seq,
        rework_count=0,
        return_count=0,
        lat=31.97,
        lon=119.85,
    )
    return json.dumps({"record": case.model_dump(mode="json")}).encode()


def update(event_id: str, status: str, minute: int, actor: str = "desk-water", **extra: str) -> EventUpdate:
    return EventUpdate.model_validate(
        {
            "update_id": f"{event_id}-{status}-{minute}",
            "event_id": event_id,
            "status": status,
            "at": f"2026-11-25T09:{minute:02d}:00+08:00",
            "actor": actor,
            "actor_role": gateway_role(actor),
            **extra,
        }
    )


@pytest.fixture
def view() -> CaseView:
    view = CaseView("unused:9092", load_flow())  # never started: records are fed by hand
    view._caught_up.set()
    return view


def test_unknown_case_is_404_once_caught_up_and_a_report_this_gateway_took_is_let_through(view: CaseView) -> None:
    assert view.refuse(update("R-1", "in_handling", 1))[:2] == (404, "unknown_case")  # type: ignore[index]
    view.note_report("R-2")
    assert view.refuse(update("R-2", "in_handling", 1)) is None


def test_illegal_step_is_409_and_legal_steps_may_follow_each_other_at_once(view: CaseView) -> None:
    view._take(record("R-1", "dispatched", 3))
    status, code, reason = view.refuse(update("R-1", "closed", 1, actor="command-centre"))  # type: ignore[misc]
    assert (status, code) == (409, "illegal_transition")
    assert "in_handling" in reason
    assert view.refuse(update("R-1", "in_handling", 2)) is None
    assert view.refuse(update("R-1", "handled", 3, photo_ref="sha256:" + "a" * 64)) is None
    assert view.refuse(update("R-1", "handled", 3, photo_ref="sha256:" + "a" * 64)) is None, "a resend is absorbed"


def test_updates_accepted_before_the_case_appeared_are_applied_when_it_does(view: CaseView) -> None:
    view.note_report("R-3")
    assert view.refuse(update("R-3", "in_handling", 1)) is None
    assert view.refuse(update("R-3", "handled", 2, photo_ref="sha256:" + "b" * 64)) is None
    view._take(record("R-3", "dispatched", 3))
    verify = update("R-3", "verified", 3, actor="GW021", photo_ref="sha256:" + "c" * 64)
    assert view.refuse(verify) is None, "the view caught up with the two updates it let through"


def test_a_record_older_than_the_view_is_ignored(view: CaseView) -> None:
    view._take(record("R-4", "dispatched", 3))
    assert view.refuse(update("R-4", "in_handling", 1)) is None
    view._take(record("R-4", "dispatched", 3))
    assert view.refuse(update("R-4", "in_handling", 2))[:2] == (409, "already_in_status")  # type: ignore[index]
    view._take(record("R-4", "in_handling", 4))
    assert view.refuse(update("R-4", "handled", 3, photo_ref="sha256:" + "d" * 64)) is None


def test_a_merged_report_routes_its_updates_to_the_case_it_joined(view: CaseView) -> None:
    view._take(record("R-5", "dispatched", 3, reports=["R-5", "R-6"]))
    assert view.refuse(update("R-6", "in_handling", 1)) is None
    assert view.refuse(update("R-5", "in_handling", 2))[:2] == (409, "already_in_status")  # type: ignore[index]


def consumed(offset: int, value: bytes) -> ConsumerRecord:
    """A message of canonical.case as the view's consumer hands it over."""
    return ConsumerRecord("canonical.case", 0, -1, offset, 0, 0, None, value, [], None, 0, len(value), 0)


@pytest.mark.parametrize(
    "value",
    [b"not json", b"[1, 2]", b'{"record": {"case_id": "R-9"}}', json.dumps({"record": "R-9"}).encode()],
    ids=["not-json", "array", "incomplete-case", "record-as-text"],
)
def test_an_unreadable_case_record_is_skipped_and_logged_and_the_view_keeps_following(
    view: CaseView, value: bytes
) -> None:
    with capture_logs() as logs:
        view._take_logged(consumed(7, value))
    assert [(log["event"], log["offset"]) for log in logs] == [("case view skipped a case record it could not use", 7)]
    view._take_logged(consumed(8, record("R-9", "dispatched", 3)))
    assert view.refuse(update("R-9", "in_handling", 1)) is None


def test_a_held_case_a_worker_accepts_is_dispatched_at_once_as_the_agent_dispatches_it(view: CaseView) -> None:
    """A hotline complaint waits ``reported`` for a worker's check; once accepted, the desk may start at once."""
    view._take(record("GD-1", "reported", 1))
    assert view.refuse(update("GD-1", "accepted", 1, actor="GW021")) is None
    assert view.refuse(update("GD-1", "in_handling", 2)) is None
