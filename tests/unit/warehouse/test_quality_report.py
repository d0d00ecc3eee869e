"""The quality report's tables, read through the SQL door from a warehouse file, as each role reads them."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, date, datetime

import pytest
from pydantic import SecretStr

from foundation.access import Forbidden, Role, TokenBook
from foundation.settings import Settings
from schemas.topics import canonical_topic
from tests.support.identities import resident_id
from tests.unit.warehouse.test_quality import BAD_ID, REGEX, TOPIC_IDS, person_message
from warehouse.contract import BatchContract
from warehouse.decode import decode_message
from warehouse.quality import replace_expectations
from warehouse.quality_report import QualityReport, gather, period_condition
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.sink import IsolatingWriter
from warehouse.writer import WarehouseWriter, connect

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
_numbers = itertools.count()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A warehouse file holding one batch with a failing person and one that passes, and no hub running."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("quality"))
    contract = BatchContract()
    resolver = Resolver(ResolutionRules.load())
    connection = connect(settings.warehouse_file, resolver)
    replace_expectations(connection, contract.expectations())
    writer = IsolatingWriter(WarehouseWriter(connection, resolver, contract.table_violations), TOPIC_IDS, contract)
    writer.write(decode_message(canonical_topic("person"), 0, 0, person_message(BAD_ID, "p1")), threading.Event())
    good = person_message("11010519491231002X", resident_id())
    writer.write(decode_message(canonical_topic("person"), 0, 1, good), threading.Event())
    connection.close()
    return settings


def as_role(settings: Settings, role: Role, **binding: str) -> Settings:
    token = TokenBook(settings.tokens_file).add(f"{role}-{next(_numbers)}", role, **binding)
    return settings.model_copy(update={"token": SecretStr(token)})


@pytest.mark.parametrize("role", ["analyst", "commander", "admin"])
def test_every_role_that_may_query_reads_the_expectations_days_and_sources(settings: Settings, role: Role) -> None:
    report = gather(as_role(settings, role), None, NOW)

    regex = next(row for row in report.expectations.rows if (row["expectation_type"], row["checked_column"]) == REGEX)
    assert (regex["kind"], regex["target_table"], regex["rows_checked"], regex["rows_failing"]) == (
        "person",
        "person_sources",
        2,
        1,
    )
    assert (regex["validations"], regex["failed_validations"]) == (2, 1)
    assert regex["last_failure"] is not None
    assert {row["kind"] for row in report.expectations.rows} >= {"person", "event", "case"}
    [day] = report.days.rows
    assert (day["validations"], day["rows_checked"], day["rows_failing"]) == (2, 2, 1)
    assert [(row["expectation_type"], row["rows_failing"]) for row in report.day_expectations.rows] == [
        ("expect_column_values_to_match_regex", 1)
    ]
    assert [(row["source"], row["rows_checked"], row["rows_failing"]) for row in report.sources.rows] == [
        ("rogue", 2, 1)
    ]
    assert [row["source"] for row in report.source_expectations.rows] == ["rogue"]
    [failure] = report.failures.rows
    assert (failure["topic"], failure["message_offset"], failure["failing_record_uids"]) == (
        "canonical.person",
        0,
        ["uid-p1"],
    )


def test_a_role_that_may_not_query_gets_no_report(settings: Settings) -> None:
    with pytest.raises(Forbidden, match="role desk"):
        gather(as_role(settings, "desk", department="water"), None, NOW)


def test_a_period_after_every_check_is_empty_but_still_lists_the_expectations(settings: Settings) -> None:
    report: QualityReport = gather(as_role(settings, "commander"), date(2999, 1, 1), NOW)
    assert (report.days.rows, report.sources.rows, report.failures.rows) == ([], [], [])
    assert "rows_checked" in report.days.columns, "an empty table still names its columns"
    assert report.expectations.rows, "the expectations are listed even when nothing was checked"
    assert period_condition(None) == "true"
    with pytest.raises(TypeError):
        period_condition(NOW)  # type: ignore[arg-type]
