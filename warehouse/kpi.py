"""The command centre's KPI queries: case closure (§3.6), patrol compliance and the service centre.

The definitions (what counts as due, closed, on time, rework; what a patrol is; when an
application is due and finished) live in ``cases.sql`` and ``approvals.sql`` as the views
``kpi_case_facts``, ``patrol_sessions``, ``patrol_compliance`` and ``application_facts``, and the
roster in the table ``grid_cells``, so that an analyst's SQL and ``gridhub kpi`` cannot disagree.
This module only chooses the grouping and the period and aggregates those views. The screen calls
the same builders, so its panels and ``gridhub kpi`` print the same numbers.

The SQL is built as text because the grouping column cannot be a bound parameter (and the screen
and the CLI send it as one statement through the SQL door). Only fixed identifiers from this
module's tables and ``DATE`` literals rendered from a :class:`datetime.date` are ever
interpolated, never caller text, so the result is safe to hand to the read-only query path. Every
day is an Asia/Shanghai day: the views compute it with ``timezone()``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal, get_args

Grouping = Literal["squad", "department", "grid", "worker"]
GROUPINGS: tuple[str, ...] = get_args(Grouping)

# The CLI's word for a grouping -> the kpi_case_facts column it groups by (also the output name).
GROUP_COLUMNS: dict[str, str] = {
    "squad": "squad",
    "department": "department",
    "grid": "grid_code",
    "worker": "worker",
}

PatrolGrouping = Literal["squad"]
ApprovalGrouping = Literal["department", "item", "window"]
APPROVAL_GROUPINGS: tuple[str, ...] = get_args(ApprovalGrouping)

# The CLI's word for an approvals grouping -> the application_facts columns it groups by. A window
# shows the department staffing it; applications with no window number are told apart by channel
# (online, at a window that was not recorded, or not said).
APPROVAL_GROUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "department": ("department",),
    "item": ("item_code",),
    "window": ("window_no", "window_department", "channel"),
}

TREND_MAX_DAYS = 366
"""The longest trend: a year of days, leap day included, so one query stays small for the screen."""

_DUE = "count(*) FILTER (WHERE is_due)"
CASE_MEASURES: tuple[str, ...] = (
    f"{_DUE} AS cases_due",
    "count(*) FILTER (WHERE is_closed) AS closed",
    "count(*) FILTER (WHERE is_on_time) AS closed_on_time",
    f"round(CAST(count(*) FILTER (WHERE is_closed) AS DOUBLE) / nullif({_DUE}, 0), 4) AS closure_rate",
    f"round(CAST(count(*) FILTER (WHERE is_on_time) AS DOUBLE) / nullif({_DUE}, 0), 4) AS on_time_rate",
    f"round(CAST(coalesce(sum(rework_count) FILTER (WHERE is_due), 0) AS DOUBLE) / nullif({_DUE}, 0), 4)"
    " AS rework_rate",
    "round(quantile_cont(hours_to_close, 0.5) FILTER (WHERE is_closed), 2) AS median_hours_to_close",
    "round(quantile_cont(hours_to_close, 0.9) FILTER (WHERE is_closed), 2) AS p90_hours_to_close",
    "count(*) FILTER (WHERE is_parked) AS parked",
    "count(*) FILTER (WHERE is_escalated) AS escalated",
    f"round(CAST(count(*) FILTER (WHERE is_escalated) AS DOUBLE) / nullif({_DUE}, 0), 4) AS escalation_rate",
)
"""The case KPIs over rows of ``kpi_case_facts``, shared by :func:`kpi_sql` and :func:`kpi_trend_sql`.

Every measure filters on the flag it counts, never on ``count(*)``: the rows are those due or
parked (挂账, visible in ``parked`` and out of every other figure), and the trend LEFT JOINs every
day to the facts, so a day with nothing due has one row of NULLs, which must count as zero cases
due (and give NULL rates), not as one. So the two builders compute each number identically.
"""

_ROWS = "(is_due OR is_parked)"
"""The rows of ``kpi_case_facts`` the measures read: cases due, and parked cases to count apart."""


def _date_literal(day: date) -> str:
    """Render a day as a DATE literal, refusing anything that is not exactly a calendar date.

    A ``datetime`` is a ``date`` subclass whose isoformat carries a time (and maybe an offset), so
    it would silently pick a different day than the caller meant; make the caller choose the
    Asia/Shanghai day explicitly instead.
    """
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"day must be a datetime.date (the Asia/Shanghai day), not {type(day).__name__}")
    return f"DATE '{day.isoformat()}'"


def _group_column(by: str | None) -> str | None:
    """Map a grouping to its column; an unknown one is refused rather than interpolated."""
    if by is None:
        return None
    try:
        return GROUP_COLUMNS[by]
    except KeyError:
        raise ValueError(f"unknown grouping {by!r}; expected one of {', '.join(GROUPINGS)}") from None


def parse_month(text: str) -> date:
    """The first day of a month written ``YYYY-MM`` (as ``--month`` and the screen take it); ValueError otherwise."""
    found = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text)
    if found is None or not 1 <= int(found[2]) <= 12:
        raise ValueError(f"a month looks like 2026-11, not {text!r}")
    return date(int(found[1]), int(found[2]), 1)


def _month_bounds(month: date) -> tuple[date, date]:
    """The first day of ``month``'s calendar month and the first day of the next one."""
    _date_literal(month)  # the same refusal of a datetime or of text as for a day
    first = month.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    return first, after


def _period_condition(day_expression: str, day: date | None, month: date | None) -> str | None:
    """The condition that ``day_expression`` (a fixed SQL expression of a DATE) lies in the period.

    A day is one Asia/Shanghai day; a month is the whole calendar month of the date given. Both at
    once would be two periods: refused. No period: None (the caller counts everything).
    """
    if day is not None and month is not None:
        raise ValueError("give a day or a month, not both")
    if day is not None:
        return f"{day_expression} = {_date_literal(day)}"
    if month is not None:
        first, after = _month_bounds(month)
        return f"{day_expression} >= {_date_literal(first)} AND {day_expression} < {_date_literal(after)}"
    return None


def kpi_sql(by: Grouping | None = None, day: date | None = None, month: date | None = None) -> str:
    """Case KPIs over ``kpi_case_facts``, optionally per group and for one Asia/Shanghai day or month.

    Columns: the group column (if any), cases_due (应结案数), closed (结案数), closed_on_time
    (按期结案数), closure_rate, on_time_rate, rework_rate (ratios to cases_due, 4 places, NULL
    when nothing is due, because "0 %" would read as a failure), median_hours_to_close and
    p90_hours_to_close (over closed cases, 2 places), then parked (挂账, not among cases_due),
    escalated (督办: cases due that reached escalation level 2) and escalation_rate (to cases_due).
    Without a grouping the query always returns one row, so "nothing due that day" shows as a row of
    zeros and NULLs, not as no answer.

    ``month`` is any date inside the month: the period is every ``period_date`` of that calendar
    month. Each case belongs to exactly one day (see ``cases.sql``), so a month's counts are the
    sums of its days' counts (its rates and hours are of the month's cases, not sums). ``day`` and
    ``month`` together raise ValueError.
    """
    column = _group_column(by)
    conditions = [_ROWS]
    period = _period_condition("period_date", day, month)
    if period is not None:
        conditions.append(period)
    select = ([column] if column else []) + list(CASE_MEASURES)
    sql = "SELECT " + ", ".join(select) + " FROM kpi_case_facts WHERE " + " AND ".join(conditions)
    if column:
        sql += f" GROUP BY {column} ORDER BY {column} NULLS LAST"
    return sql


def kpi_trend_sql(end: date, days: int = 30) -> str:
    """Case KPIs for each Asia/Shanghai day from ``end - days + 1`` to ``end``, every day present.

    A chart of a month with gaps would draw a line straight across a day nothing fell due on, so
    the days come from ``generate_series`` and are LEFT JOINed to the facts: a day with nothing due
    is a row of zeros and NULL rates, as :func:`kpi_sql` gives for it. Columns: ``day``, then the
    columns of :func:`kpi_sql` (the same :data:`CASE_MEASURES`), ordered by day; each row equals
    ``kpi_sql(day=that_day)``. ``days`` is 1 to :data:`TREND_MAX_DAYS` (ValueError otherwise; a
    non-integer is a TypeError).
    """
    if isinstance(days, bool) or not isinstance(days, int):
        raise TypeError(f"days must be an int, not {type(days).__name__}")
    if not 1 <= days <= TREND_MAX_DAYS:
        raise ValueError(f"days must be between 1 and {TREND_MAX_DAYS}, not {days}")
    last = _date_literal(end)
    first = _date_literal(end - timedelta(days=days - 1))
    calendar = (
        f"(SELECT CAST(moment AS DATE) AS day FROM generate_series({first}, {last}, INTERVAL 1 DAY) AS series(moment))"
    )
    return (
        "SELECT calendar.day, " + ", ".join(CASE_MEASURES) + f" FROM {calendar} AS calendar"
        f" LEFT JOIN (SELECT * FROM kpi_case_facts WHERE {_ROWS}) AS facts ON facts.period_date = calendar.day"
        " GROUP BY calendar.day ORDER BY calendar.day"
    )


def patrol_sql(day: date | None = None, by: PatrolGrouping | None = None) -> str:
    """Patrol compliance per worker and Asia/Shanghai day, or per squad and day; optionally for one day.

    Both are judged against the roster (``grid_cells``: each cell's squad and workers, the grid the
    sink runs with), so a worker who never went out counts as not compliant instead of vanishing. The
    days are those with any track point in the warehouse (only ``day`` when given).

    Without ``by``: one row per rostered worker and day, plus any id that sent tracks but is on no
    roster. Columns worker_id, day, patrols (sessions long enough to count, see ``patrol_rules``),
    total_minutes (all sessions), compliant (false for a worker without a track), then squad and
    own_cell (from the roster, NULL off it) and own_cell_share (of the day's track points, the share
    in the worker's own cell, ``patrol_coverage``; NULL without a track or a roster). Ordered by
    day, then worker, so a multi-day answer reads as a register.

    With ``by="squad"``: one row per squad and day. Columns: squad, day, workers (grid workers on the
    squad's roster), patrolling (of them, with any track point that day), compliant (of them,
    compliant that day per ``patrol_compliance``), compliance_rate (compliant / workers, 4 places),
    own_cell_share (of the squad's workers' track points that day, the share in their own cells, 4
    places). Tracks of ids not on the roster count for no squad. Ordered by day, then squad.
    """
    if by is not None and by != "squad":
        raise ValueError(f"unknown patrol grouping {by!r}; expected squad")
    # The day is a literal inside each CTE over tracks, where DuckDB pushes it under the sessions' window
    # functions: joined in from another CTE it would sessionise a whole year of tracks first (5 s, not 0.3 s).
    on_day = f" WHERE day = {_date_literal(day)}" if day is not None else ""
    common = (
        "WITH roster AS (SELECT DISTINCT squad, code AS own_cell, unnest(workers) AS worker_id FROM grid_cells), "
        f"compliance AS (SELECT worker_id, day, patrols, total_minutes, compliant FROM patrol_compliance{on_day}), "
        f"coverage AS (SELECT worker_id, day, points, own_cell_points, own_cell_share FROM patrol_coverage{on_day}), "
        "days AS (SELECT DISTINCT day FROM compliance)"
    )
    if by is None:
        return (
            f"{common}, worker_days AS (SELECT roster.worker_id, days.day FROM roster CROSS JOIN days "
            "UNION SELECT worker_id, day FROM compliance) "
            "SELECT w.worker_id, w.day, coalesce(c.patrols, 0) AS patrols, "
            "coalesce(c.total_minutes, 0) AS total_minutes, coalesce(c.compliant, false) AS compliant, "
            "roster.squad, roster.own_cell, v.own_cell_share "
            "FROM worker_days AS w LEFT JOIN roster ON roster.worker_id = w.worker_id "
            "LEFT JOIN compliance AS c ON c.worker_id = w.worker_id AND c.day = w.day "
            "LEFT JOIN coverage AS v ON v.worker_id = w.worker_id AND v.day = w.day "
            "ORDER BY w.day, w.worker_id"
        )
    return (
        f"{common} "
        "SELECT roster.squad, days.day, count(*) AS workers, "
        "count(compliance.worker_id) AS patrolling, "
        "count(*) FILTER (WHERE compliance.compliant) AS compliant, "
        "round(CAST(count(*) FILTER (WHERE compliance.compliant) AS DOUBLE) / nullif(count(*), 0), 4) "
        "AS compliance_rate, "
        "round(CAST(sum(coverage.own_cell_points) AS DOUBLE) / nullif(sum(coverage.points), 0), 4) "
        "AS own_cell_share "
        "FROM roster CROSS JOIN days "
        "LEFT JOIN compliance ON compliance.worker_id = roster.worker_id AND compliance.day = days.day "
        "LEFT JOIN coverage ON coverage.worker_id = roster.worker_id AND coverage.day = days.day "
        "GROUP BY roster.squad, days.day ORDER BY days.day, roster.squad"
    )


SUBMITTED_DAY = "CAST(timezone('Asia/Shanghai', submitted_at) AS DATE)"
FINISHED_DAY = "CAST(timezone('Asia/Shanghai', finished_at) AS DATE)"


def approvals_kpi_sql(day: date | None = None, month: date | None = None, by: ApprovalGrouping | None = None) -> str:
    """The service centre's KPIs over ``application_facts``, optionally per department, item or window.

    Columns: the group columns if any (``department``; ``item_code`` for ``by="item"``;
    ``window_no``, ``window_department`` and ``channel`` for ``by="window"``), then

    - received: applications submitted in the period (the Asia/Shanghai day of ``submitted_at``),
      all applications when there is no period;
    - in_progress: not finished, as of now, whatever the period (a backlog is a snapshot; "in
      progress on a past day" cannot be told from the current state alone);
    - overdue_in_progress: of those, past their ``due_at`` now (``application_facts.overdue``);
    - finished: finished in the period (the Asia/Shanghai day of ``finished_at``, the time of the
      finishing change), whenever submitted; all finished applications when there is no period;
    - finished_on_time: of those, ``finished_at <= due_at`` (finishing at the deadline is on time;
      without a due_at, an item not in the catalogue, there was no deadline to meet: not on time,
      as for cases);
    - on_time_rate: finished_on_time / finished, 4 places, NULL when nothing finished;
    - fully_online_share: the share of ``received`` whose item is fully online (不见面审批), 4
      places, NULL when nothing was received;
    - overdue: of ``received``, those overdue as ``application_facts`` says (finished after
      ``due_at``, or unfinished and past it now);
    - online_share: the share of ``received`` taken online (channel ``online``: 外网受理、内网办理、
      快递送达), 4 places, NULL when nothing was received. It differs from fully_online_share by
      the applicants of fully online items who still came to a window.

    Received and finished count different applications on purpose: an application received in
    November and finished in December counts in November's received and December's finished, so
    each counts once in each column over any run of periods. Without a grouping the query always
    returns one row; with one, a group appears when it has something in any column, departments
    and items without one (not in the catalogue), applications without a window number, last.
    ``day`` and ``month`` together raise ValueError.
    """
    if by is None:
        columns: tuple[str, ...] = ()
    elif by in APPROVAL_GROUP_COLUMNS:
        columns = APPROVAL_GROUP_COLUMNS[by]
    else:
        raise ValueError(f"unknown grouping {by!r}; expected one of {', '.join(APPROVAL_GROUPINGS)}")
    received = _period_condition(SUBMITTED_DAY, day, month)
    finished = _period_condition(FINISHED_DAY, day, month)
    flags = [
        f"coalesce({received or 'true'}, false) AS is_received",
        "NOT finished AS is_in_progress",
        "NOT finished AND coalesce(overdue, false) AS is_overdue_in_progress",
        f"finished AND coalesce({finished or 'true'}, false) AS is_finished",
        f"finished AND coalesce({finished or 'true'}, false) AND coalesce(finished_at <= due_at, false) "
        "AS is_finished_on_time",
        "coalesce(fully_online, false) AS is_fully_online",
        "coalesce(overdue, false) AS is_overdue",
        "coalesce(channel = 'online', false) AS is_online",
    ]
    measures = [
        "count(*) FILTER (WHERE is_received) AS received",
        "count(*) FILTER (WHERE is_in_progress) AS in_progress",
        "count(*) FILTER (WHERE is_overdue_in_progress) AS overdue_in_progress",
        "count(*) FILTER (WHERE is_finished) AS finished",
        "count(*) FILTER (WHERE is_finished_on_time) AS finished_on_time",
        "round(CAST(count(*) FILTER (WHERE is_finished_on_time) AS DOUBLE) "
        "/ nullif(count(*) FILTER (WHERE is_finished), 0), 4) AS on_time_rate",
        "round(CAST(count(*) FILTER (WHERE is_received AND is_fully_online) AS DOUBLE) "
        "/ nullif(count(*) FILTER (WHERE is_received), 0), 4) AS fully_online_share",
        "count(*) FILTER (WHERE is_received AND is_overdue) AS overdue",
        "round(CAST(count(*) FILTER (WHERE is_received AND is_online) AS DOUBLE) "
        "/ nullif(count(*) FILTER (WHERE is_received), 0), 4) AS online_share",
    ]
    facts = "SELECT " + ", ".join([*columns, *flags]) + " FROM application_facts"
    sql = f"WITH facts AS ({facts}) SELECT " + ", ".join([*columns, *measures]) + " FROM facts"
    if columns:
        sql += (
            f" GROUP BY {', '.join(columns)}"
            " HAVING count(*) FILTER (WHERE is_received OR is_in_progress OR is_finished) > 0"
            f" ORDER BY {', '.join(f'{column} NULLS LAST' for column in columns)}"
        )
    return sql


EnforcementGrouping = Literal["squad", "officer", "power"]
ENFORCEMENT_GROUPINGS: tuple[str, ...] = get_args(EnforcementGrouping)
ENFORCEMENT_GROUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "squad": ("squad", "squad_name"),
    "officer": ("officer_id", "squad"),
    "power": ("power_code", "power_name"),
}
FILED_DAY = "CAST(timezone('Asia/Shanghai', filed_at) AS DATE)"


def enforcement_kpi_sql(
    day: date | None = None, month: date | None = None, by: EnforcementGrouping | None = None
) -> str:
    """The enforcement bureau's KPIs over ``enforcement_case_facts``, optionally per squad, officer or power.

    Columns: the group columns if any, then

    - cases: cases filed (立案) in the period (the Asia/Shanghai day of ``filed_at``), all without one;
    - decided: of those, decided, or closed without a decision (撤案), so their clock has stopped;
    - on_time: of the decided, by the power's time limit from filing (``enforcement_case_facts.on_time``);
    - on_time_rate: on_time / decided, 4 places, NULL when none was decided;
    - overdue_open: of the cases, undecided and past their limit now;
    - closed: of the cases, closed (结案);
    - median_hours_to_decision: filing to decision, over the decided cases with a decision;
    - powers_used: distinct powers the cases used;
    - from_grid_cases: cases started by a grid case (linked by ``grid_case_id``).
    """
    if by is None:
        columns: tuple[str, ...] = ()
    elif by in ENFORCEMENT_GROUP_COLUMNS:
        columns = ENFORCEMENT_GROUP_COLUMNS[by]
    else:
        raise ValueError(f"unknown grouping {by!r}; expected one of {', '.join(ENFORCEMENT_GROUPINGS)}")
    filed = _period_condition(FILED_DAY, day, month)
    measures = [
        "count(*) AS cases",
        "count(*) FILTER (WHERE on_time IS NOT NULL) AS decided",
        "count(*) FILTER (WHERE on_time) AS on_time",
        "round(CAST(count(*) FILTER (WHERE on_time) AS DOUBLE) "
        "/ nullif(count(*) FILTER (WHERE on_time IS NOT NULL), 0), 4) AS on_time_rate",
        "count(*) FILTER (WHERE on_time IS NULL AND now() > due_at) AS overdue_open",
        "count(*) FILTER (WHERE status = 'closing') AS closed",
        "round(quantile_cont(hours_to_decision, 0.5), 2) AS median_hours_to_decision",
        "count(DISTINCT power_code) AS powers_used",
        "count(grid_case_id) AS from_grid_cases",
    ]
    sql = "SELECT " + ", ".join([*columns, *measures]) + " FROM enforcement_case_facts"
    if filed is not None:
        sql += f" WHERE {filed}"
    if columns:
        sql += f" GROUP BY {', '.join(columns)} ORDER BY {', '.join(f'{column} NULLS LAST' for column in columns)}"
    return sql
