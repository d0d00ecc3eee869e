"""A simulated year of the town: days in a row ending on the demo day, cases that run across them.

``gridhub demo --days N`` checks the warehouse against :class:`simulation.year.TownYear`'s counts
and its closure rate, so these tests recount from the generated rows, as ``gridhub kpi`` would.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from foundation.packaged import CATEGORIES, ENFORCEMENT, MENGHE_GRID
from schemas.enforcement import load_bureau
from schemas.grid import Grid
from simulation import enforcement
from simulation.day import SECOND_REPORT_SUFFIX, Row, combine, simulate_day
from simulation.feeds import FEED_HEADERS, FEED_SOURCES, HOTLINE
from simulation.scale import CLOSURE_RATE, TRACK_DAYS, YEAR_APPLICATIONS
from simulation.town import DAY
from simulation.year import TownYear, simulate_year
from streams.routing import RoutingRules, load_rules

SEED = 7
EVENTS = 23


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(CATEGORIES)


@pytest.fixture(scope="module")
def days(rules: RoutingRules) -> TownYear:
    return simulate_year(9, SEED, rules, EVENTS)


def _moment(update: Row) -> datetime:
    return datetime.fromisoformat(update["at"])


def test_the_days_run_one_after_the_other_to_the_demo_day(days: TownYear) -> None:
    assert [day.day for day in days.days] == [DAY - timedelta(days=8 - index) for index in range(9)]
    assert days.first == DAY - timedelta(days=8)


def test_the_same_arguments_give_the_same_days(days: TownYear, rules: RoutingRules) -> None:
    again = simulate_year(9, SEED, rules, EVENTS)
    assert again.whole == days.whole
    assert [feeds.rows for feeds in again.feeds] == [feeds.rows for feeds in days.feeds]
    assert simulate_year(9, SEED + 1, rules, EVENTS).whole.reports != days.whole.reports


def test_counts_are_exact_per_day_and_add_up(days: TownYear, rules: RoutingRules) -> None:
    for day in days.days:
        reports = {body["report_id"]: body for body in day.reports}
        valid = [body for body in reports.values() if rules.resolve(str(body["category"])) is not None]
        assert day.expected["events"] == len(valid)
        assert len(valid) == EVENTS + len(day.corroborating) + (day.day == DAY)  # the article's example, that day
        assert day.expected["applications"] + day.expected["application_rows_invalid"] >= YEAR_APPLICATIONS
        assert day.expected["updates"] == len(day.updates)
    whole = days.whole
    for key in ("events", "updates", "reports_sent", "applications", "application_rows", "patrol_points"):
        assert whole.expected[key] == sum(day.expected[key] for day in days.days), key
    assert whole.expected["people"] == days.days[0].expected["people"], "the registers are the town's, sent once"
    assert combine(days.days, rules).expected == whole.expected


def test_ids_are_unique_across_days(days: TownYear) -> None:
    whole = days.whole
    reports = {body["report_id"] for body in whole.reports}
    assert len(reports) == len({(body["report_id"], body["reported_at"]) for body in whole.reports})
    for body in whole.reports:
        assert datetime.fromisoformat(body["reported_at"]).strftime("%Y%m%d") in body["report_id"] or (
            body["report_id"] == "R20261125-A00020"
        )
    assert len({update["update_id"] for update in whole.updates}) == len(whole.updates)
    applications = Counter(row["application_id"] for row in whole.applications if row["status"] == "submitted")
    assert max(applications.values()) == 1
    incidents = [row[FEED_HEADERS[source][0]] for source in FEED_SOURCES for row in days.whole_feeds.rows[source]]
    assert len(incidents) == len(set(incidents))
    assert not reports & set(incidents)


def test_a_case_runs_across_days_in_order_and_each_step_is_sent_on_its_day(days: TownYear) -> None:
    reported = {body["report_id"]: datetime.fromisoformat(body["reported_at"]) for body in days.whole.reports}
    last: dict[str, datetime] = {}
    spilled = 0
    for day in days.days:
        for update in day.updates:
            at = _moment(update)
            assert at.date() == day.day
            event = update["event_id"]
            assert at > last.get(event, reported.get(event, at - timedelta(seconds=1)))
            spilled += event in reported and reported[event].date() < day.day
            last[event] = at
    assert spilled > EVENTS, "many cases are finished on a later day than they were reported"


def test_closure_is_closed_over_due_as_gridhub_kpi_counts_it(days: TownYear) -> None:
    seconds = sum(len(day.corroborating) for day in days.days)
    feed_cases = sum(len(rows) for rows in days.whole_feeds.rows.values()) - len(days.whole_feeds.rejected)
    assert days.cases == days.whole.expected["events"] - seconds + feed_cases
    assert days.closed == len({u["event_id"] for u in days.whole.updates if u["status"] == "closed"})
    assert days.closure_rate == days.closed / days.cases
    open_at_end = {body["report_id"] for body in days.days[-1].reports} - {
        u["event_id"] for u in days.whole.updates if u["status"] == "closed"
    }
    assert open_at_end, "cases of the last day are still in progress when the run ends"


def test_a_long_run_is_calibrated_to_the_articles_closure_rate(rules: RoutingRules) -> None:
    long = simulate_year(120, SEED, rules, EVENTS, applications=1)
    assert abs(long.closure_rate - CLOSURE_RATE) <= 1 / long.cases
    stalled = {
        u["event_id"] for u in long.whole.updates if u["status"] == "in_handling" and u["event_id"].startswith("R")
    } - {u["event_id"] for u in long.whole.updates if u["status"] in ("handled", "closed")}
    assert stalled, "some cases stall in handling and are never closed"
    for event in stalled:
        assert not event.endswith(SECOND_REPORT_SUFFIX)


def test_feed_incidents_get_a_lifecycle_and_hotline_complaints_wait_for_a_worker(days: TownYear) -> None:
    hotline = {row["工单编号"] for row in days.whole_feeds.rows[HOTLINE]} - set(days.whole_feeds.rejected)
    first: dict[str, Row] = {}
    for update in days.whole.updates:
        first.setdefault(update["event_id"], update)
    for incident in hotline & set(first):
        assert first[incident]["status"] == "accepted"
        assert first[incident]["actor"].startswith("GW")
    assert sum(feeds.expected[HOTLINE]["awaiting_verification"] for feeds in days.feeds) == len(hotline - set(first))
    assert len(days.whole_feeds.rejected) == 3, "the feeds' faults belong to the demo day alone"


def test_every_case_file_names_a_party_the_registers_hold(days: TownYear) -> None:
    """A year draws thousands of parties: none may be a register row the hub refuses for want of a name."""
    files = enforcement.case_files(days.whole, Grid.load(MENGHE_GRID), load_bureau(ENFORCEMENT), SEED)
    assert files
    assert all(row["当事人"] for row in files)


def test_tracks_only_on_the_last_days(days: TownYear) -> None:
    with_tracks = [day.day for day in days.days if day.tracks]
    assert with_tracks == [day.day for day in days.days][-TRACK_DAYS:]


def test_one_day_stays_the_demo_day(rules: RoutingRules) -> None:
    """The defaults are the one demo day: its own registers, 60% of its cases moved, all within the day."""
    day = simulate_day(40, SEED, rules)
    assert day.day == DAY
    assert all(_moment(update).date() == DAY for update in day.updates)
    assert {update["event_id"] for update in day.updates} < {body["report_id"] for body in day.reports}


def test_a_run_is_one_to_366_days(rules: RoutingRules) -> None:
    for days in (0, 367):
        with pytest.raises(ValueError, match="1 to 366"):
            simulate_year(days, SEED, rules)
