"""The case state machine: opening, every path through the flow, refusals, automation, deadlines, merges."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas import TOWN_TIMEZONE
from schemas.records import EVENT_STATUSES
from streams.case_flow import ROLES
from streams.case_machine import IllegalTransition, apply, auto_advance, is_overdue, merge_report, open_case
from streams.case_state import Case, Command, Transition
from streams.routing import load_rules
from tests.support.cases import (
    DATA,
    FLOW,
    FLOW_FILE,
    LAT,
    LON,
    PHOTO,
    T0,
    TO_CLOSED,
    TO_HANDLED,
    at_status,
    command,
    flow_from,
    fresh,
    refusal,
    walk,
)

# Opening a case -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit_hours", [0.5, 1, 8, 72, 168])
def test_open_case_is_reported_with_seq_1_and_due_after_the_limit(limit_hours: float) -> None:
    case, transition = open_case(
        case_id="C-9",
        report_id="R-1",
        category="0102",
        department="sanitation",
        squad="Mengcheng",
        grid_code=None,
        lat=LAT,
        lon=LON,
        reporter_id="gw-7",
        reported_at=T0,
        limit_hours=limit_hours,
    )
    assert (case.status, case.seq, case.report_ids) == ("reported", 1, ("R-1",))
    assert case.due_at == T0 + timedelta(hours=limit_hours)
    assert (case.rework_count, case.return_count, case.closed_at, case.overdue_alerted) == (0, 0, None, False)
    assert case.updated_at == T0
    assert transition == Transition(
        case_id="C-9",
        seq=1,
        from_status=None,
        to_status="reported",
        action="report",
        actor="gw-7",
        actor_role="grid_worker",
        at=T0,
        due_at=T0 + timedelta(hours=limit_hours),
        note=None,
        photo_ref=None,
    )


@pytest.mark.parametrize(("code", "hours"), [("0403", 1), ("0102", 8), ("0115", 72)])
def test_due_at_follows_the_category_limit_hours(code: str, hours: float) -> None:
    category = load_rules(DATA / "categories.yaml").categories[code]
    assert category.limit_hours == hours
    case = fresh(category=code, department=category.department, limit_hours=category.limit_hours)
    assert case.due_at - case.reported_at == timedelta(hours=hours)


def test_illegal_farmland_use_is_due_in_five_working_days_on_the_calendar() -> None:
    from schemas.working_time import load_calendar

    category = load_rules(DATA / "categories.yaml").categories["0601"]
    assert (category.limit_hours, category.limit_working_days) == (None, 5)
    wednesday = datetime(2026, 11, 25, 9, 30, tzinfo=TOWN_TIMEZONE)
    case = fresh(
        category="0601", reported_at=wednesday, limit_hours=None, limit_working_days=5, calendar=load_calendar()
    )
    # Thu 26, Fri 27, (weekend), Mon 30, Tue 1, Wed 2: due at midnight after Wednesday 2 December.
    assert case.due_at == datetime(2026, 12, 3, 0, 0, tzinfo=TOWN_TIMEZONE)


@pytest.mark.parametrize("limit_hours", [0, -1, float("nan")])
def test_open_case_refuses_a_limit_that_is_not_positive(limit_hours: float) -> None:
    with pytest.raises(ValueError, match="limit_hours"):
        fresh(limit_hours=limit_hours)


def test_naive_report_time_is_read_as_china_standard_time() -> None:
    case = fresh(reported_at=datetime(2024, 5, 6, 9, 0))
    assert case.reported_at == T0 and case.reported_at.utcoffset() == timedelta(hours=8)


# Paths through the flow ---------------------------------------------------------------------------------


def test_happy_path_goes_through_every_status_to_closed() -> None:
    case, log = walk(fresh(), *TO_CLOSED)
    assert [(t.from_status, t.to_status, t.action) for t in log] == [
        ("reported", "accepted", "accept"),
        ("accepted", "dispatched", "dispatch"),
        ("dispatched", "in_handling", "start"),
        ("in_handling", "handled", "handle"),
        ("handled", "verified", "verify"),
        ("verified", "closed", "close"),
    ]
    assert [t.seq for t in log] == [2, 3, 4, 5, 6, 7]
    assert case.status == "closed" and case.seq == 7
    assert case.closed_at == log[-1].at == T0 + timedelta(minutes=60)
    assert (case.rework_count, case.return_count) == (0, 0)
    assert [t.photo_ref for t in log] == [None, None, None, PHOTO, PHOTO, None]
    assert all(t.due_at == case.due_at for t in log)
    roles = ["command_centre", "command_centre", "desk", "desk", "grid_worker", "command_centre"]
    assert [t.actor_role for t in log] == roles


def test_decline_then_redispatch_counts_a_return() -> None:
    case, log = walk(
        fresh(),
        *TO_HANDLED[:2],
        ("returned", "desk", None),
        ("dispatched", "command_centre", None),
        ("in_handling", "desk", None),
    )
    assert [t.action for t in log[2:]] == ["decline", "redispatch", "start"]
    assert (case.status, case.return_count, case.rework_count) == ("in_handling", 1, 0)


def test_a_redispatch_may_send_the_case_to_another_department() -> None:
    returned = at_status("returned")
    moved, step = apply(FLOW, returned, command(returned, "dispatched", "command_centre", department="water"))
    assert (moved.status, moved.department, step.action) == ("dispatched", "water", "redispatch")
    same, _ = apply(FLOW, returned, command(returned, "dispatched", "command_centre"))
    assert same.department == returned.department


@pytest.mark.parametrize(
    ("start", "target", "role"),
    [("dispatched", "extended", "command_centre"), ("dispatched", "cancelled", "command_centre"),
     ("dispatched", "in_handling", "desk")],
)  # fmt: skip
def test_only_a_redispatch_names_a_department(start: str, target: str, role: str) -> None:
    case = at_status(start)
    extra = {"due_at": case.due_at + timedelta(days=1)} if target == "extended" else {}
    refused = refusal(case, command(case, target, role, department="water", **extra))
    assert refused.code == "department_not_allowed" and "redispatch" in str(refused)


def test_failed_verification_goes_back_to_handling_and_counts_one_rework() -> None:
    case, log = walk(
        fresh(),
        *TO_HANDLED,
        ("returned", "grid_worker", None),
        ("in_handling", "desk", None),
        ("handled", "desk", "photo://p-2.jpg"),
        ("verified", "grid_worker", "photo://p-3.jpg"),
        ("closed", "system", None),
    )
    assert [t.action for t in log[4:]] == ["rework", "restart", "handle", "verify", "close"]
    assert (case.status, case.rework_count, case.return_count) == ("closed", 1, 0)
    assert case.closed_at is not None


def test_command_centre_may_also_send_a_handled_case_back() -> None:
    case, _ = walk(fresh(), *TO_HANDLED, ("returned", "command_centre", None))
    assert (case.status, case.rework_count) == ("returned", 1)


@pytest.mark.parametrize("start", ["reported", "returned"])
def test_command_centre_rejects_an_invalid_case(start: str) -> None:
    case, transition = apply(FLOW, at_status(start), command(at_status(start), "rejected", "command_centre"))
    assert (case.status, transition.action, case.closed_at) == ("rejected", "reject", None)


def test_a_desk_cannot_reject_a_report() -> None:
    assert refusal(fresh(), command(fresh(), "rejected", "desk")).code == "role_not_allowed"


def test_note_and_actor_are_kept_on_the_transition() -> None:
    case = at_status("dispatched")
    _, transition = apply(FLOW, case, command(case, "returned", "desk", actor="liaison-water", note="not ours: gas"))
    assert (transition.actor, transition.note) == ("liaison-water", "not ours: gas")


# Refusals -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "target"), [("in_handling", "handled"), ("handled", "verified")])
@pytest.mark.parametrize("photo", [None, "", "   "])
def test_handled_and_verified_need_a_photo(start: str, target: str, photo: str | None) -> None:
    case = at_status(start)
    role = "desk" if target == "handled" else "grid_worker"
    error = refusal(case, command(case, target, role, photo=photo))
    assert error.code == "photo_required"
    assert str(error) == (
        f"case C-1 is {start}; moving it to {target} ({FLOW.edges[(start, target)].action}) needs a photo: "
        "attach one (photo_ref) and send again"
    )


@pytest.mark.parametrize("role", ["desk", "command_centre", "system"])
def test_only_a_grid_worker_verifies(role: str) -> None:
    case = at_status("handled")
    error = refusal(case, command(case, "verified", role, photo=PHOTO, actor="someone"))
    assert error.code == "role_not_allowed"
    assert str(error) == (
        f"case C-1 is handled; moving it to verified (verify) is for grid_worker only, and someone acts as {role}"
    )


def test_who_handled_a_case_may_not_verify_it_but_another_grid_worker_may() -> None:
    """巡办分离: an officer who handled a case, out on patrol with his phone, cannot verify it himself."""
    case, _ = walk(fresh(), *TO_HANDLED[:3])
    case, _ = apply(FLOW, case, command(case, "handled", "desk", photo=PHOTO, actor="ZF01"))
    assert case.handled_by == ("ZF01",)
    refused = refusal(case, command(case, "verified", "grid_worker", photo=PHOTO, actor="ZF01"))
    assert refused.code == "same_hands"
    assert "ZF01 handled it" in str(refused) and "巡办分离" in str(refused) and "another grid_worker" in str(refused)
    verified, transition = apply(FLOW, case, command(case, "verified", "grid_worker", photo=PHOTO, actor="GW001"))
    assert (verified.status, transition.actor) == ("verified", "GW001")


def test_everyone_who_handled_a_reworked_case_is_barred_from_verifying_it() -> None:
    case, _ = walk(fresh(), *TO_HANDLED[:3])
    case, _ = apply(FLOW, case, command(case, "handled", "desk", photo=PHOTO, actor="ZF01"))
    case, _ = apply(FLOW, case, command(case, "returned", "grid_worker", actor="GW001"))
    case, _ = apply(FLOW, case, command(case, "in_handling", "desk", actor="ZF02"))
    case, _ = apply(FLOW, case, command(case, "handled", "desk", photo=PHOTO, actor="ZF02"))
    assert case.handled_by == ("ZF01", "ZF02")
    for officer in ("ZF01", "ZF02"):
        assert refusal(case, command(case, "verified", "grid_worker", photo=PHOTO, actor=officer)).code == "same_hands"


def test_a_case_stored_before_handlers_were_kept_may_be_verified_by_anyone() -> None:
    """An old entry knows no handler: nobody can be barred on evidence the case never kept."""
    case = replace(at_status("handled"), handled_by=())
    assert apply(FLOW, case, command(case, "verified", "grid_worker", photo=PHOTO, actor="desk-1"))[0].status == (
        "verified"
    )


def test_role_refusal_lists_every_allowed_role() -> None:
    case = at_status("handled")
    error = refusal(case, command(case, "returned", "desk", actor="d-1"))
    assert "is for grid_worker or command_centre only, and d-1 acts as desk" in str(error)


@pytest.mark.parametrize("terminal", ["closed", "rejected", "cancelled"])
@pytest.mark.parametrize("target", [*EVENT_STATUSES, "reopened"])
@pytest.mark.parametrize("role", ROLES)
def test_terminal_statuses_refuse_everything_naming_the_status(terminal: str, target: str, role: str) -> None:
    case = at_status(terminal)
    error = refusal(case, command(case, target, role, photo=PHOTO))
    assert error.code == "case_closed"
    assert str(error).startswith(f"case C-1 is {terminal}, a final status; nothing more can happen to it")


def test_reason_lists_the_allowed_next_statuses() -> None:
    case = at_status("handled")
    error = refusal(case, command(case, "accepted", "command_centre"))
    assert error.code == "illegal_transition"
    assert str(error) == (
        "case C-1 is handled; from handled it can go to verified (grid_worker, photo) "
        "or returned (grid_worker, command_centre), not to accepted"
    )


def test_reason_with_several_options() -> None:
    case = at_status("returned")
    error = refusal(case, command(case, "closed", "command_centre"))
    assert str(error) == (
        "case C-1 is returned; from returned it can go to dispatched (command_centre, system), "
        "in_handling (desk), rejected (command_centre), cancelled (command_centre) or "
        "parked (command_centre, note, review date), not to closed"
    )


def test_unknown_target_status_is_named_with_the_known_ones() -> None:
    case = at_status("dispatched")
    error = refusal(case, command(case, "done", "desk"))
    assert error.code == "illegal_transition"
    assert "'done' is not a case status" in str(error)
    assert "from dispatched it can go to in_handling (desk), returned (desk), extended" in str(error)


def test_asking_for_the_current_status_says_it_is_already_there() -> None:
    case = at_status("dispatched")
    error = refusal(case, command(case, "dispatched", "command_centre"))
    assert error.code == "already_in_status"
    assert str(error).startswith("case C-1 is already dispatched; from dispatched it can go to in_handling")


def test_a_command_dated_before_the_last_change_is_refused() -> None:
    case = at_status("dispatched")
    error = refusal(case, command(case, "in_handling", "desk", minutes=-1))
    assert error.code == "time_goes_backwards"
    assert case.updated_at.isoformat() in str(error) and "check the device clock" in str(error)


def test_a_command_at_the_same_instant_as_the_last_change_is_fine() -> None:
    case = at_status("dispatched")
    moved, _ = apply(FLOW, case, command(case, "in_handling", "desk", minutes=0))
    assert moved.updated_at == case.updated_at


def test_a_command_for_another_case_is_refused() -> None:
    case = at_status("dispatched")
    assert refusal(case, command(case, "in_handling", "desk", case_id="C-2")).code == "wrong_case"


def test_a_case_in_a_status_the_flow_no_longer_declares_is_refused(tmp_path: Path) -> None:
    """A town may shrink its flow while cases sit in a status it dropped; they must not crash the agent."""
    document = yaml.safe_load(FLOW_FILE.read_text(encoding="utf-8"))
    document["statuses"].pop("verified")
    document["transitions"] = [t for t in document["transitions"] if "verified" not in (t["from"], t["to"])]
    document["transitions"].append({"from": "handled", "to": "closed", "action": "close", "roles": ["grid_worker"]})
    smaller = flow_from(document, tmp_path)
    case = at_status("verified")
    assert refusal(case, command(case, "closed", "command_centre"), smaller).code == "unknown_status"


# Automation and deadlines -------------------------------------------------------------------------------


def test_auto_advance_accepts_and_dispatches_a_fresh_report() -> None:
    at = T0 + timedelta(seconds=3)
    steps = auto_advance(FLOW, fresh(), at)
    assert [(t.from_status, t.to_status, t.action) for _, t in steps] == [
        ("reported", "accepted", "accept"),
        ("accepted", "dispatched", "dispatch"),
    ]
    assert [(c.status, c.seq) for c, _ in steps] == [("accepted", 2), ("dispatched", 3)]
    assert all((t.actor, t.actor_role, t.at) == ("system", "system", at) for _, t in steps)


@pytest.mark.parametrize("status", ["dispatched", "in_handling", "handled", "closed", "rejected"])
def test_auto_advance_stops_where_the_system_may_not_act(status: str) -> None:
    case = at_status(status)
    assert auto_advance(FLOW, case, case.updated_at + timedelta(minutes=1)) == []


def test_auto_advance_closes_a_verified_case_because_the_flow_allows_it() -> None:
    case = at_status("verified")
    steps = auto_advance(FLOW, case, case.updated_at + timedelta(minutes=1))
    assert [c.status for c, _ in steps] == ["closed"] and steps[0][0].closed_at is not None


def test_auto_advance_refuses_to_go_back_in_time() -> None:
    with pytest.raises(IllegalTransition) as info:
        auto_advance(FLOW, fresh(), T0 - timedelta(seconds=1))
    assert info.value.code == "time_goes_backwards"


def test_overdue_only_after_the_deadline_and_only_while_open() -> None:
    case = fresh(limit_hours=8)
    assert not is_overdue(case, T0 + timedelta(hours=8))
    assert is_overdue(case, T0 + timedelta(hours=8, seconds=1))
    assert not is_overdue(at_status("closed"), T0 + timedelta(days=30))
    assert not is_overdue(at_status("rejected"), T0 + timedelta(days=30))
    assert is_overdue(at_status("handled"), T0 + timedelta(days=30))


def test_merge_report_adds_once() -> None:
    case = fresh()
    merged = merge_report(case, "R-2")
    assert merged.report_ids == ("R-C-1", "R-2")
    assert merge_report(merged, "R-2") == merged
    assert merge_report(merged, "R-C-1") == merged
    assert (merged.seq, merged.status) == (case.seq, case.status)


def test_merge_into_a_finished_case_is_refused_but_a_replay_is_harmless() -> None:
    closed = at_status("closed")
    with pytest.raises(IllegalTransition) as info:
        merge_report(closed, "R-9")
    assert info.value.code == "case_closed" and "open a new case" in str(info.value)
    assert merge_report(closed, "R-C-1") == closed


# Properties over random command sequences ------------------------------------------------------------------

RAW = yaml.safe_load(FLOW_FILE.read_text(encoding="utf-8"))
# An oracle read straight from the YAML, independent of load_flow: (from, to) -> (roles, photo).
ORACLE = {
    (t["from"], t["to"]): (
        set(t["roles"]),
        *(bool(t.get(flag, False)) for flag in ("photo", "deadline", "note", "review")),
    )
    for t in RAW["transitions"]
}
# 巡办分离 straight from the YAML: (from, to) -> actions whose actors may not take the edge, and each edge's action.
NOT_BY = {(t["from"], t["to"]): set(t.get("not_by", [])) for t in RAW["transitions"]}
ACTIONS = {(t["from"], t["to"]): t["action"] for t in RAW["transitions"]}
TERMINAL = set(RAW["terminal"])
TARGETS = [*EVENT_STATUSES, "done"]


Step = tuple[str, str, str, bool, int]
REACHED: set[str] = set()  # statuses the property runs reached; checked below so the runs cannot go shallow


@st.composite
def command_sequences(draw: st.DrawFn) -> list[Step]:
    """Per command: (mode, target if random, role if random, photo?, minutes later).

    Purely random targets and roles rarely get past ``accepted``, so most steps follow an edge of the
    current status: ``edge`` with a random role, ``edge+role`` with one of the edge's own roles (the
    photo stays random either way, so photo refusals keep happening deep in the flow).
    """
    step = st.tuples(
        st.sampled_from(["random", "edge", "edge+role", "edge+role"]),
        st.sampled_from(TARGETS),
        st.sampled_from(ROLES),
        st.booleans(),
        st.integers(min_value=0, max_value=600),
    )
    return draw(st.lists(step, min_size=1, max_size=40))


def run(commands: list[Step], *, backwards: int = 0) -> None:
    """Apply the commands to a fresh case and check every invariant after each one."""
    case = fresh()
    at = T0
    reworks = returns = 0
    handlers: list[str] = []
    for mode, random_target, random_role, photo, minutes in commands:
        options = sorted(target for source, target in ORACLE if source == case.status)
        target, role = random_target, random_role
        if mode != "random" and options:
            target = options[minutes % len(options)]
            if mode == "edge+role":
                allowed = sorted(ORACLE[(case.status, target)][0])
                role = allowed[minutes % len(allowed)]
        at = at + timedelta(minutes=minutes - backwards)
        # "photo" also decides whether the command brings a later deadline (what an extension needs),
        # which is also a review date (what a parking needs, if later than the command), and a note
        # Desks act as "a"; anyone else as "b" or "a", so someone sometimes verifies what they handled.
        actor = "a" if role == "desk" else "ba"[minutes // 7 % 2]
        cmd = Command(
            case_id=case.case_id,
            status=target,
            actor=actor,
            actor_role=role,  # type: ignore[arg-type]
            at=at,
            photo_ref=PHOTO if photo else None,
            due_at=case.due_at + timedelta(days=1) if photo else None,
            note="why" if photo else None,
        )
        expected_ok = (
            case.status not in TERMINAL
            and at >= case.updated_at
            and (case.status, target) in ORACLE
            and role in ORACLE[(case.status, target)][0]
            and (photo or not ORACLE[(case.status, target)][1])
            and (photo or not ORACLE[(case.status, target)][2])
            and (photo or not ORACLE[(case.status, target)][3])
            and not (ORACLE[(case.status, target)][4] and not (photo and case.due_at + timedelta(days=1) > at))
            and not ("handle" in NOT_BY[(case.status, target)] and actor in handlers)
        )
        before = case
        try:
            case, transition = apply(FLOW, case, cmd)
        except IllegalTransition as error:
            assert not expected_ok, f"refused a legal command: {error}"
            assert case == before
            assert error.code and str(error).startswith("case C-1 is ") and before.status in str(error)
            if before.status in TERMINAL:
                assert error.code == "case_closed"
            continue
        assert expected_ok, f"accepted {before.status} → {target} by {role} (photo {photo})"
        assert before.status not in TERMINAL
        assert (transition.from_status, transition.to_status) in FLOW.edges
        assert case.status in FLOW.statuses and case.status == target
        assert case.seq == transition.seq == before.seq + 1
        assert transition.at == case.updated_at >= before.updated_at
        reworks += transition.action == "rework"
        returns += transition.action == "decline"
        if ACTIONS[(before.status, target)] == "handle" and actor not in handlers:
            handlers.append(actor)
        assert (case.rework_count, case.return_count) == (reworks, returns)
        assert case.handled_by == tuple(handlers)
        assert (case.closed_at is not None) == (case.status == "closed")
        assert Case.from_dict(json.loads(json.dumps(case.to_dict()))) == case
        REACHED.add(case.status)


def scripted(*steps: tuple[str, str, bool]) -> list[Step]:
    """A fixed sequence of (target, role, photo) steps, five minutes apart, for @example."""
    return [("random", target, role, photo, 5) for target, role, photo in steps]


HAPPY_SCRIPT = scripted(*((status, role, photo is not None) for status, role, photo in TO_CLOSED))
REWORK_SCRIPT = scripted(
    *((status, role, photo is not None) for status, role, photo in TO_HANDLED),
    ("returned", "grid_worker", False),
    ("rejected", "command_centre", False),
    ("accepted", "command_centre", False),
)


@settings(max_examples=300, deadline=None)
@example(HAPPY_SCRIPT)
@example(REWORK_SCRIPT)
@given(command_sequences())
def test_random_commands_only_ever_follow_the_flow(commands: list[Step]) -> None:
    run(commands)


@settings(max_examples=200, deadline=None)
@given(command_sequences())
def test_random_commands_with_clocks_going_backwards(commands: list[Step]) -> None:
    run(commands, backwards=30)


def test_the_random_runs_reached_every_status() -> None:
    """Guards the two properties above: if the generator stopped reaching deep statuses they would prove little.

    Runs after them in file order; selected on its own (``-k``) it runs one of them first.
    """
    if not REACHED:
        test_random_commands_only_ever_follow_the_flow()
    assert {"accepted", "dispatched", "in_handling", "handled", "verified", "closed", "returned", "rejected"} <= REACHED


def test_an_extension_needs_a_later_deadline_and_moves_it() -> None:
    case = at_status("dispatched")
    early = Command(case.case_id, "extended", "command-centre", "command_centre", case.reported_at + timedelta(hours=1))
    with pytest.raises(IllegalTransition) as refused:
        apply(FLOW, case, early)
    assert refused.value.code == "deadline_required"
    later = case.due_at + timedelta(days=2)
    extended, transition = apply(FLOW, case, replace(early, due_at=later))
    assert (extended.status, extended.due_at, transition.due_at, transition.action) == (
        "extended",
        later,
        later,
        "extend",
    )
    resumed, _ = apply(
        FLOW, extended, Command(case.case_id, "in_handling", "desk-x", "desk", later - timedelta(days=1))
    )
    assert resumed.status == "in_handling" and resumed.due_at == later


def test_a_cancelled_case_is_final_and_no_longer_overdue() -> None:
    case = at_status("dispatched")
    cancelled, transition = apply(
        FLOW, case, Command(case.case_id, "cancelled", "command-centre", "command_centre", case.updated_at)
    )
    assert (cancelled.status, transition.action) == ("cancelled", "cancel")
    assert not is_overdue(cancelled, case.due_at + timedelta(days=30))
    with pytest.raises(IllegalTransition) as refused:
        apply(FLOW, cancelled, Command(case.case_id, "in_handling", "desk-x", "desk", cancelled.updated_at))
    assert refused.value.code == "case_closed"
