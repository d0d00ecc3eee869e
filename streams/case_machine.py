"""The case state machine of the "one grid" loop: discover → report → dispatch → handle → verify → close.

Everything here is pure: no Kafka, no I/O. A stream agent keeps :class:`~streams.case_state.Case`
values in a Faust table, feeds each incoming command through :func:`apply` and publishes the
:class:`~streams.case_state.Transition` it gets back, so the KPIs of domain-standards §3.6 (结案率,
按期结案率, 返工率, ...) are queries over that log. The patrol gateway runs the same :func:`apply` on its
copy of the cases, so a desk hears at once what the agent would decide. HTTP and CLI callers show the
:class:`IllegalTransition` message verbatim to a desk clerk, so every refusal says what the case is,
what it could do instead and what to send next time.

Which moves exist is the flow file's business (``streams.case_flow``); this module decides what a
move does to a case: counters, deadlines, the closing time, and the steps the automation takes alone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from foundation.errors import InputRejected
from schemas.records import EventUpdate
from schemas.working_time import WorkingCalendar
from streams.case_flow import HANDLE_ACTION, INITIAL_STATUS, CaseFlow, EscalationLevel
from streams.case_state import Case, Command, Transition, aware

# Statuses in which a case is finished whatever the flow file says: overdue checks, duplicate
# matching and report merging need no flow. They are the three endings among the canonical event
# statuses, and the packaged flow declares exactly these three terminal.
FINISHED_STATUSES: frozenset[str] = frozenset({"closed", "rejected", "cancelled"})
# Actions whose transitions the KPIs count (返工数 and 回退数); see the comment in case_flow.yaml.
REWORK_ACTION = "rework"
DECLINE_ACTION = "decline"
REDISPATCH_ACTION = "redispatch"
CLOSED_STATUS = "closed"
PARKED_STATUS = "parked"
"""挂账: a long-term case set aside with a reason and a review date; its deadline does not run."""
ESCALATED_LEVEL = 2
"""The level from which a case counts as escalated (督办): level 1 is the plain overdue alert."""


class IllegalTransition(InputRejected):
    """A command the case cannot take; ``str(exc)`` is a sentence a desk clerk can act on.

    ``code`` is stable for programs: ``illegal_transition`` (no such move from this status),
    ``already_in_status`` (the case is already there: usually a replayed command), ``unknown_status``,
    ``role_not_allowed``, ``photo_required``, ``deadline_required`` (an extension without a later
    deadline), ``note_required`` (a parking without its reason), ``review_date_required`` (a parking
    without a review date after it), ``case_closed`` (the case has ended: closed, rejected or cancelled),
    ``same_hands`` (巡办分离: who handled the case may not verify it), ``time_goes_backwards`` and
    ``wrong_case``.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, code)
        self.code = code
        self.reason = reason


def command_for(case_id: str, update: EventUpdate) -> Command:
    """The command an update asks for, in the role the door that took it gave it.

    The role comes from the caller's token (``connectors.patrol_access``), never from the look of
    an actor id: an update that carries none did not come through a door, and acts as nobody.
    """
    if update.actor_role is None:
        raise IllegalTransition(
            "role_not_allowed",
            f"update {update.update_id} does not say in which role {update.actor} acts; "
            "send it through the gateway with the actor's token",
        )
    return Command(
        case_id=case_id,
        status=update.status,
        actor=update.actor,
        actor_role=update.actor_role,
        at=update.occurred_at,
        note=update.note,
        photo_ref=update.photo_ref,
        due_at=update.new_due_at,
        department=update.department,
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
    limit_hours: float | None = None,
    limit_working_days: int | None = None,
    calendar: WorkingCalendar | None = None,
) -> tuple[Case, Transition]:
    """Open a case for a fresh report: status ``reported``, seq 1, due after the category's limit.

    The deadline runs from the report, not from dispatch, because the town is judged on the time the
    resident waited (按期结案率). A limit is either ``limit_hours``, calendar hours (urgent work does
    not stop for a holiday), or ``limit_working_days`` counted on ``calendar`` (工作日, see
    ``schemas.working_time``): exactly one of them.
    """
    reported_at = aware(reported_at)
    if limit_working_days is not None and limit_hours is None and calendar is not None:
        due_at = calendar.add_working_days(reported_at, limit_working_days)
    elif limit_working_days is None and limit_hours is not None and limit_hours > 0:
        due_at = reported_at + timedelta(hours=limit_hours)
    else:
        raise ValueError(
            "give limit_hours (a positive number of hours) or limit_working_days with a calendar, "
            f"not limit_hours={limit_hours!r}, limit_working_days={limit_working_days!r}"
        )
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
        return IllegalTransition(
            "role_not_allowed",
            f"{name} is {case.status}; moving it to {target} ({edge.action}) is for {flow.who(edge)} only, "
            f"and {command.actor} acts as {command.actor_role}",
        )
    if HANDLE_ACTION in edge.not_by and command.actor in case.handled_by:
        return IllegalTransition(
            "same_hands",
            f"{name} is {case.status}; {command.actor} handled it, and by 巡办分离 (patrol apart from handling) "
            f"whoever handled a case may not {edge.action} it: another {flow.who(edge)} must",
        )
    if command.department and edge.action != REDISPATCH_ACTION:
        return IllegalTransition(
            "department_not_allowed",
            f"{name} is {case.status}; only a re-dispatch ({REDISPATCH_ACTION}) names a department, "
            f"and moving it to {target} is {edge.action}: send it again without department",
        )
    if edge.photo_required and not (command.photo_ref and command.photo_ref.strip()):
        return IllegalTransition(
            "photo_required",
            f"{name} is {case.status}; moving it to {target} ({edge.action}) needs a photo: "
            "attach one (photo_ref) and send again",
        )
    if edge.deadline_required and (command.due_at is None or aware(command.due_at) <= case.due_at):
        return IllegalTransition(
            "deadline_required",
            f"{name} is {case.status}, due {case.due_at.isoformat()}; moving it to {target} ({edge.action}) "
            "needs a new deadline (due_at) later than that",
        )
    if edge.note_required and not (command.note and command.note.strip()):
        return IllegalTransition(
            "note_required",
            f"{name} is {case.status}; moving it to {target} ({edge.action}) needs the reason in a note",
        )
    if edge.review_required and (command.due_at is None or aware(command.due_at) <= command.at):
        return IllegalTransition(
            "review_date_required",
            f"{name} is {case.status}; moving it to {target} ({edge.action}) needs a review date (due_at) "
            f"later than the command's time, {command.at.isoformat()}",
        )
    return None


def apply(flow: CaseFlow, case: Case, command: Command) -> tuple[Case, Transition]:
    """Apply one command; return the new case and the transition to publish, or raise IllegalTransition.

    A refused command changes nothing, so the caller may simply report the reason and move on.
    Counters follow the action: ``rework`` adds to ``rework_count`` (返工), ``decline`` to
    ``return_count`` (回退). ``closed_at`` is set on entering ``closed``. The actor of a ``handle``
    joins ``handled_by``, for the edges the flow bars to handlers (``not_by``). A new deadline starts
    the overdue alert and the escalation levels again; a parking (挂账) keeps its review date, and
    leaves the deadline as it was, since parked cases are judged on no deadline.
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
        department=command.department or case.department,
        due_at=aware(command.due_at) if edge.deadline_required and command.due_at else case.due_at,
        overdue_alerted=case.overdue_alerted and not edge.deadline_required,
        escalation_level=0 if edge.deadline_required else case.escalation_level,
        review_at=aware(command.due_at) if edge.review_required and command.due_at else case.review_at,
        review_alerted=case.review_alerted and not edge.review_required,
        handled_by=_with(case.handled_by, command.actor) if edge.action == HANDLE_ACTION else case.handled_by,
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


def _with(actors: tuple[str, ...], actor: str) -> tuple[str, ...]:
    """``actors`` and ``actor``, each once, in the order they first acted (a reworked case is handled again)."""
    return actors if actor in actors else (*actors, actor)


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
    """Whether the case is still open after its deadline (超期); a finished or parked (挂账) case never is."""
    return case.status not in FINISHED_STATUSES and case.status != PARKED_STATUS and aware(now) > case.due_at


def escalate(flow: CaseFlow, case: Case, now: datetime) -> tuple[Case, list[EscalationLevel]]:
    """The levels of supervision (督办) ``case`` reached by ``now`` and not raised yet, and the case raising them.

    Each level is raised once per deadline, in order: a case found 3 days late at its first check
    (a worker restarted, a report dated in the past) raises every level it passed. A case entry
    written before levels were kept, with its overdue alert raised, counts as at level 1.
    ``escalated_at`` keeps when the case became due for level 2 (督办): its deadline plus that level's hours,
    not the time of the check. The KPIs count a case escalated only if it was still open then, so a case a
    late check found overdue (a replay of history, a worker down for a day) but that was closed before
    督办 fell due is not counted, whatever the wall clock said when the check ran.
    """
    if not is_overdue(case, now):
        return case, []
    late_hours = (aware(now) - case.due_at).total_seconds() / 3600
    raised = max(case.escalation_level, int(case.overdue_alerted))
    levels = [item for item in flow.escalation if item.level > raised and late_hours > item.after_hours]
    if not levels:
        return case, []
    reached = levels[-1].level
    supervised = next((item for item in flow.escalation if item.level == ESCALATED_LEVEL), None)
    due_for_supervision = case.due_at + timedelta(hours=supervised.after_hours) if supervised else None
    escalated_at = case.escalated_at or (due_for_supervision if reached >= ESCALATED_LEVEL else None)
    updated = replace(case, escalation_level=reached, overdue_alerted=True, escalated_at=escalated_at)
    return updated, levels


def review_due(case: Case, now: datetime) -> bool:
    """Whether a parked case (挂账) passed its review date with no alert raised for it yet."""
    return (
        case.status == PARKED_STATUS
        and not case.review_alerted
        and case.review_at is not None
        and aware(now) > case.review_at
    )


def merge_report(case: Case, report_id: str) -> Case:
    """Attach a duplicate report to ``case``; a report already attached changes nothing.

    Idempotence matters because Kafka may deliver the same report twice. A finished case (closed,
    rejected or cancelled) takes no new reports: the problem is back, so it needs a new case with its
    own deadline.
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
