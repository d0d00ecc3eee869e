"""What the quality report shows, read from the kept validations (``quality_results``) as the caller sees them.

The report runs through the SQL door (:func:`warehouse.reader.query_rows`), so it works with or
without a running hub, only for the roles that may query, and an analyst's report is built from
the masked views like any of their queries. Days are Asia/Shanghai days, as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from foundation.settings import Settings
from warehouse.reader import query

RECENT_FAILURES = 50
"""The latest failing results the report lists one by one (the counts cover the whole period)."""

_DAY = "CAST(timezone('Asia/Shanghai', checked_at) AS DATE)"

EXPECTATIONS = """
WITH r AS (SELECT * FROM quality_results WHERE {period}),
checked AS (
    SELECT kind, sum(element_count) AS rows_checked, count(*) AS validations
    FROM r WHERE expectation_type IS NULL GROUP BY kind
),
failed AS (
    SELECT kind, expectation_type, checked_column, any_value(parameters) AS parameters,
        sum(unexpected_count) AS rows_failing, count(*) FILTER (WHERE NOT success) AS failed_validations,
        max(checked_at) FILTER (WHERE NOT success) AS last_failure
    FROM r WHERE expectation_type IS NOT NULL GROUP BY kind, expectation_type, checked_column
),
expected AS (
    SELECT kind, target_table, expectation_type, checked_column, parameters, rule FROM quality_expectations
    UNION ALL
    SELECT kind, NULL, expectation_type, checked_column, parameters, NULL FROM failed f WHERE NOT EXISTS (
        SELECT 1 FROM quality_expectations e WHERE e.kind = f.kind AND e.expectation_type = f.expectation_type
        AND e.checked_column IS NOT DISTINCT FROM f.checked_column)
)
SELECT x.kind, x.target_table, x.expectation_type, x.checked_column, x.parameters, x.rule,
    coalesce(c.rows_checked, 0) AS rows_checked, coalesce(f.rows_failing, 0) AS rows_failing,
    coalesce(c.validations, 0) AS validations, coalesce(f.failed_validations, 0) AS failed_validations,
    f.last_failure
FROM expected x LEFT JOIN checked c ON c.kind = x.kind
LEFT JOIN failed f ON f.kind = x.kind AND f.expectation_type = x.expectation_type
    AND f.checked_column IS NOT DISTINCT FROM x.checked_column
ORDER BY x.kind, x.checked_column, x.expectation_type
"""
"""Every expectation (of the contract the sink runs, and any other that failed in the period) and its counts."""

DAYS = f"""
SELECT {_DAY} AS day, count(*) AS validations, count(*) FILTER (WHERE NOT success) AS failed_validations,
    sum(element_count) AS rows_checked, sum(unexpected_count) AS rows_failing
FROM quality_results WHERE expectation_type IS NULL AND {{period}} GROUP BY day ORDER BY day
"""
"""Per day: the suites validated and the rows they checked and failed (a row breaking two rules counts once)."""

DAY_EXPECTATIONS = f"""
SELECT {_DAY} AS day, kind, expectation_type, checked_column, sum(unexpected_count) AS rows_failing
FROM quality_results WHERE expectation_type IS NOT NULL AND NOT success AND {{period}}
GROUP BY ALL ORDER BY day, rows_failing DESC, kind, expectation_type, checked_column
"""
"""Per day and failing expectation: the rows it failed."""

SOURCES = """
WITH r AS (SELECT * FROM quality_results WHERE expectation_type IS NULL AND {period})
SELECT source, sum(checked) AS rows_checked, sum(failing) AS rows_failing FROM (
    SELECT unnest(sources) AS source, unnest(source_rows) AS checked, 0 AS failing FROM r
    UNION ALL
    SELECT unnest(failing_sources), 0, unnest(failing_source_rows) FROM r
) GROUP BY source ORDER BY rows_failing DESC, rows_checked DESC, source
"""
"""Per source: the rows checked and the rows that broke a rule."""

SOURCE_EXPECTATIONS = """
SELECT source, kind, expectation_type, checked_column, sum(failing) AS rows_failing FROM (
    SELECT unnest(failing_sources) AS source, unnest(failing_source_rows) AS failing,
        kind, expectation_type, checked_column
    FROM quality_results WHERE expectation_type IS NOT NULL AND NOT success AND {period}
) GROUP BY ALL ORDER BY source, rows_failing DESC, kind, expectation_type, checked_column
"""
"""Per source and expectation: the rows of the source it failed."""

FAILURES = f"""
SELECT checked_at, lane, kind, expectation_type, checked_column, parameters, element_count, unexpected_count,
    unexpected_percent, failing_sources, failing_source_rows, failing_record_uids, failing_source_record_ids,
    topic, partition, message_offset
FROM quality_results WHERE expectation_type IS NOT NULL AND NOT success AND {{period}}
ORDER BY checked_at DESC, kind, expectation_type, checked_column LIMIT {RECENT_FAILURES}
"""
"""The latest failing results, with the sources and ids of their failing rows and the batch's first message."""


@dataclass(frozen=True)
class Dataset:
    """One table of the report: its columns (known even when it has no rows, for a CSV header) and its rows."""

    columns: list[str]
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class QualityReport:
    """The kept validations of a period, summed up for the report page and its data files."""

    generated_at: datetime
    since: date | None
    expectations: Dataset
    days: Dataset
    day_expectations: Dataset
    sources: Dataset
    source_expectations: Dataset
    failures: Dataset

    def datasets(self) -> dict[str, Dataset]:
        """Each table of the report by name, as the data files beside the page hold it."""
        return {
            "expectations": self.expectations,
            "days": self.days,
            "day_expectations": self.day_expectations,
            "sources": self.sources,
            "source_expectations": self.source_expectations,
            "failures": self.failures,
        }


def period_condition(since: date | None) -> str:
    """The SQL condition on ``checked_at`` of the period starting on the Asia/Shanghai day ``since`` (or all)."""
    if since is None:
        return "true"
    if isinstance(since, datetime) or not isinstance(since, date):
        raise TypeError(f"since must be a datetime.date (the Asia/Shanghai day), not {type(since).__name__}")
    return f"{_DAY} >= DATE '{since.isoformat()}'"


def gather(settings: Settings, since: date | None, now: datetime) -> QualityReport:
    """Read the report's tables as the caller of ``GRIDHUB_TOKEN``, from the running sink or the warehouse file."""
    period = period_condition(since)

    def dataset(sql: str) -> Dataset:
        result = query(settings, sql.format(period=period))
        columns = list(result["columns"])
        return Dataset(columns, [dict(zip(columns, row, strict=True)) for row in result["rows"]])

    return QualityReport(
        generated_at=now,
        since=since,
        expectations=dataset(EXPECTATIONS),
        days=dataset(DAYS),
        day_expectations=dataset(DAY_EXPECTATIONS),
        sources=dataset(SOURCES),
        source_expectations=dataset(SOURCE_EXPECTATIONS),
        failures=dataset(FAILURES),
    )
