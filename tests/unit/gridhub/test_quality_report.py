"""The quality report page: self-contained, every value escaped, the failing expectation and source named."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gridhub.cli_common import UsageError
from gridhub.cli_quality import _since
from gridhub.quality_report import render, write_report
from warehouse.quality_report import Dataset, QualityReport

HOSTILE = '<script>alert("x")</script>'
REGEX = "expect_column_values_to_match_regex"


def dataset(*rows: dict[str, object]) -> Dataset:
    return Dataset(list(rows[0]) if rows else ["source", "rows_checked", "rows_failing"], list(rows))


def report() -> QualityReport:
    """A report of one failing person whose source and record id are markup."""
    return QualityReport(
        generated_at=datetime(2026, 11, 26, 12, tzinfo=UTC),
        since=date(2026, 11, 1),
        expectations=dataset(
            {
                "kind": "person",
                "target_table": "person_sources",
                "expectation_type": REGEX,
                "checked_column": "id_number",
                "parameters": '{"regex": "^[0-9]{17}[0-9X]$"}',
                "rule": "id_number must match ^[0-9]{17}[0-9X]$ & <more>",
                "rows_checked": 200,
                "rows_failing": 3,
                "validations": 12,
                "failed_validations": 2,
                "last_failure": "2026-11-26T09:00:00+08:00",
            },
            {
                "kind": "event",
                "target_table": None,
                "expectation_type": "expect_table_row_count_to_be_between",
                "checked_column": None,
                "parameters": '{"max_value": 10}',
                "rule": None,
                "rows_checked": 0,
                "rows_failing": 0,
                "validations": 0,
                "failed_validations": 0,
                "last_failure": None,
            },
        ),
        days=dataset(
            {"day": "2026-11-26", "validations": 12, "failed_validations": 2, "rows_checked": 200, "rows_failing": 3}
        ),
        day_expectations=dataset(
            {
                "day": "2026-11-26",
                "kind": "person",
                "expectation_type": REGEX,
                "checked_column": "id_number",
                "rows_failing": 3,
            }
        ),
        sources=dataset(
            {"source": HOSTILE, "rows_checked": 50, "rows_failing": 3},
            {"source": "civil-affairs", "rows_checked": 150, "rows_failing": 0},
        ),
        source_expectations=dataset(
            {
                "source": HOSTILE,
                "kind": "person",
                "expectation_type": REGEX,
                "checked_column": "id_number",
                "rows_failing": 3,
            }
        ),
        failures=dataset(
            {
                "checked_at": "2026-11-26T09:00:00+08:00",
                "lane": "record",
                "kind": "person",
                "expectation_type": REGEX,
                "checked_column": "id_number",
                "parameters": "{}",
                "element_count": 5,
                "unexpected_count": 3,
                "unexpected_percent": 60.0,
                "failing_sources": [HOSTILE],
                "failing_source_rows": [3],
                "failing_record_uids": ["uid-1"],
                "failing_source_record_ids": ['"><img src=x onerror=alert(1)>'],
                "topic": "canonical.person",
                "partition": 0,
                "message_offset": 41,
            }
        ),
    )


def test_the_page_names_the_expectation_and_the_source_and_escapes_every_value() -> None:
    page = render(report())

    assert REGEX in page and "id_number" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script" not in page and "<img" not in page
    assert "&amp; &lt;more&gt;" in page
    assert "98.50%" in page, "the pass rate of the expectation"
    assert "<code>expect_table_row_count_to_be_between</code></td>" in page, "a type the page has no gloss for"
    assert "{&quot;max_value&quot;: 10}" in page, "an expectation without a rule shows its parameters"
    assert "100.00%" in page, "the worst source's share of the failing rows"
    assert '各表期望 <span class="en">Expectations per table</span>' in page, "Chinese first, English beside it"


def test_the_page_stands_alone_offline() -> None:
    page = render(report())
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "nothing is loaded from the network"
    assert "<style>" in page
    assert 'href="quality.json"' in page and 'href="sources.csv"' in page


def test_an_empty_report_says_so_rather_than_showing_empty_tables() -> None:
    empty = QualityReport(
        generated_at=datetime(2026, 11, 26, tzinfo=UTC),
        since=None,
        expectations=dataset(),
        days=dataset(),
        day_expectations=dataset(),
        sources=dataset(),
        source_expectations=dataset(),
        failures=dataset(),
    )
    page = render(empty)
    assert "No validations in this period." in page
    assert "No source sent a failing row." in page


def test_the_data_beside_the_page_holds_every_table_as_json_and_csv(tmp_path: Path) -> None:
    page = write_report(tmp_path / "report", report())
    assert page == tmp_path / "report" / "index.html"
    data = json.loads((tmp_path / "report" / "quality.json").read_text(encoding="utf-8"))
    assert data["since"] == "2026-11-01"
    assert data["failures"][0]["failing_sources"] == [HOSTILE]
    with (tmp_path / "report" / "failures.csv").open(encoding="utf-8") as file:
        [row] = list(csv.DictReader(file))
    assert json.loads(row["failing_record_uids"]) == ["uid-1"]
    assert row["expectation_type"] == REGEX


def test_the_period_is_a_day_or_a_number_of_days_never_both() -> None:
    today = date(2026, 11, 26)
    assert _since(None, None, today) is None
    assert _since("2026-11-01", None, today) == date(2026, 11, 1)
    assert _since(None, 7, today) == date(2026, 11, 20)
    with pytest.raises(UsageError, match="not both"):
        _since("2026-11-01", 7, today)
    with pytest.raises(UsageError, match="--since must be a day"):
        _since("'; DROP TABLE x; --", None, today)
