"""The command centre's KPI queries: case closure (§3.6) and patrol compliance.

The definitions (what counts as due, closed, on time, rework; what a patrol is) live in
``cases.sql`` as the views ``kpi_case_facts``, ``patrol_sessions`` and ``patrol_compliance``, so
that an analyst's SQL and ``gridhub kpi`` cannot disagree. This module only chooses the grouping
and the day and aggregates those views.

The SQL is built as text because the grouping column cannot be a bound parameter. Only fixed
identifiers from :data:`GROUP_COLUMNS` and a ``DATE`` literal rendered from a
:class:`datetime.date` are ever interpolated, never caller text, so the result is safe to hand to
the read-only query path.
"""

from __future__ import annotations

from datetime import date, datetime
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


def kpi_sql(by: Grouping | None = None, day: date | None = None) -> str:
    """Case KPIs over ``kpi_case_facts``, optionally per group and for one Asia/Shanghai day.

    Columns: the group column (if any), cases_due (应结案数), closed (结案数), closed_on_time
    (按期结案数), closure_rate, on_time_rate, rework_rate (ratios to cases_due, 4 places, NULL
    when nothing is due, because "0 %" would read as a failure), median_hours_to_close and
    p90_hours_to_close (over closed cases, 2 places). Without a grouping the query always returns
    one row, so "nothing due that day" shows as a row of zeros and NULLs, not as no answer.
    """
    column = _group_column(by)
    conditions = ["is_due"]
    if day is not None:
        conditions.append(f"period_date = {_date_literal(day)}")
    measures = [
        "count(*) AS cases_due",
        "count(*) FILTER (WHERE is_closed) AS closed",
        "count(*) FILTER (WHERE is_on_time) AS closed_on_time",
        "round(CAST(count(*) FILTER (WHERE is_closed) AS DOUBLE) / nullif(count(*), 0), 4) AS closure_rate",
        "round(CAST(count(*) FILTER (WHERE is_on_time) AS DOUBLE) / nullif(count(*), 0), 4) AS on_time_rate",
        "round(CAST(coalesce(sum(rework_count), 0) AS DOUBLE) / nullif(count(*), 0), 4) AS rework_rate",
        "round(quantile_cont(hours_to_close, 0.5) FILTER (WHERE is_closed), 2) AS median_hours_to_close",
        "round(quantile_cont(hours_to_close, 0.9) FILTER (WHERE is_closed), 2) AS p90_hours_to_close",
    ]
    select = ([column] if column else []) + measures
    sql = "SELECT " + ", ".join(select) + " FROM kpi_case_facts WHERE " + " AND ".join(conditions)
    if column:
        sql += f" GROUP BY {column} ORDER BY {column} NULLS LAST"
    return sql


def patrol_sql(day: date | None = None) -> str:
    """Patrol compliance per worker and Asia/Shanghai day, optionally for one day.

    Columns: worker_id, day, patrols (sessions long enough to count, see ``patrol_rules``),
    total_minutes (all sessions), compliant. Ordered by day, then worker, so a multi-day answer
    reads as a register.
    """
    sql = "SELECT worker_id, day, patrols, total_minutes, compliant FROM patrol_compliance"
    if day is not None:
        sql += f" WHERE day = {_date_literal(day)}"
    return sql + " ORDER BY day, worker_id"
