"""The department incident feeds of the simulated day: they read through their own mappings into
exactly the events, rejects and merge the feeds promise."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connectors.exports import BadLine, ExportFile, export_records
from connectors.exports.columns import load_mappings
from foundation import packaged
from schemas.grid import Grid
from schemas.records import Event
from simulation.day import TownDay, simulate_day
from simulation.feeds import FEED_SOURCES, HOTLINE, TownFeeds, town_feeds, write_feeds
from streams.nearby import distance_m
from streams.normalise import Accepted, normalise_envelope
from streams.routing import RoutingRules, load_rules

SEED = 20261125


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(packaged.CATEGORIES)


@pytest.fixture(scope="module")
def day(rules: RoutingRules) -> TownDay:
    return simulate_day(200, SEED, rules)


@pytest.fixture(scope="module")
def feeds(day: TownDay, rules: RoutingRules) -> TownFeeds:
    return town_feeds(day, SEED, rules)


@pytest.fixture(scope="module")
def outcomes(feeds: TownFeeds, rules: RoutingRules, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """Each feed's rows as the hub's export door and stream would decide them (mapping, validation, placement)."""
    mappings = load_mappings(packaged.EXPORT_MAPPINGS)
    grid = Grid.load(packaged.MENGHE_GRID)
    decided: dict[str, list] = {}
    for path, source, entity in write_feeds(feeds, tmp_path_factory.mktemp("feeds")):
        export = ExportFile(path, entity, mappings.columns_for(source, entity))
        envelopes = list(export_records(source, export, "run"))
        assert not any(isinstance(item, BadLine) for item in envelopes)
        decided[source] = [normalise_envelope(item, rules, grid) for item in envelopes]
    return decided


def _events(outcomes: dict[str, list], source: str) -> list[Event]:
    return [item.record for item in outcomes[source] if isinstance(item, Accepted)]


def test_same_seed_same_feeds(day: TownDay, rules: RoutingRules, feeds: TownFeeds) -> None:
    again = town_feeds(day, SEED, rules)
    assert (again.rows, again.expected, again.rejected, again.merges) == (
        feeds.rows,
        feeds.expected,
        feeds.rejected,
        feeds.merges,
    )


def test_every_feed_lands_as_events_placed_and_routed(outcomes: dict[str, list], feeds: TownFeeds) -> None:
    for source in FEED_SOURCES:
        events = _events(outcomes, source)
        assert len(events) == feeds.expected[source]["events"] > 0, source
        assert all(event.grid_code and event.squad and event.coord_system == "wgs84" for event in events)
        assert {event.reporter_id for event in events} == {source}
    departments = {source: {event.department for event in _events(outcomes, source)} for source in FEED_SOURCES}
    assert departments["environment-monitoring"] == {"environment"}
    assert departments["land-resources"] == {"land"}
    assert "police" in departments["police"]
    assert "justice" in departments[HOTLINE]


def test_bad_rows_are_refused_for_their_own_reasons(outcomes: dict[str, list], feeds: TownFeeds) -> None:
    refused = {
        item.reject.source_record_id: item.reject.reason_code
        for items in outcomes.values()
        for item in items
        if not isinstance(item, Accepted)
    }
    assert refused == {key.upper(): code for key, code in feeds.rejected.items()}
    assert sorted(refused.values()) == ["missing_reported_at", "outside_town", "unknown_category"]


def test_an_alarm_says_which_station_which_pollutant_the_value_and_the_limit(
    outcomes: dict[str, list], feeds: TownFeeds
) -> None:
    rows = {row["报警编号"]: row for row in feeds.rows["environment-monitoring"]}
    for event in _events(outcomes, "environment-monitoring"):
        row = rows[event.event_id]
        for cell in (row["站点名称"], row["站点编号"], row["监测因子"], row["监测值"], row["标准限值"]):
            assert cell in event.description
        assert event.category == "0603"


def test_one_complaint_repeats_an_untouched_open_case_nearby(
    outcomes: dict[str, list], feeds: TownFeeds, day: TownDay, rules: RoutingRules
) -> None:
    ((complaint_id, report_id),) = feeds.merges.items()
    complaint = next(event for event in _events(outcomes, HOTLINE) if event.event_id == complaint_id)
    report = next(body for body in day.reports if body["report_id"] == report_id)
    assert report_id not in {update["event_id"] for update in day.updates}
    assert complaint.category == rules.resolve(report["category"]).code
    assert distance_m(complaint.lat, complaint.lon, report["lat"], report["lon"]) < 30
    assert abs(complaint.reported_at - datetime.fromisoformat(report["reported_at"])) <= timedelta(hours=1)


def test_no_other_feed_event_lands_near_an_incident_of_its_category(
    outcomes: dict[str, list], feeds: TownFeeds, day: TownDay, rules: RoutingRules
) -> None:
    seen = [
        (category.code, body["lat"], body["lon"], datetime.fromisoformat(body["reported_at"]), body["report_id"])
        for body in day.reports
        if (category := rules.resolve(str(body["category"]))) is not None
    ]
    for source in FEED_SOURCES:
        for event in _events(outcomes, source):
            if event.event_id in feeds.merges:
                continue
            close = [
                other
                for code, lat, lon, at, other in seen
                if code == event.category
                and abs(at - event.reported_at) <= timedelta(hours=2)
                and distance_m(lat, lon, event.lat, event.lon) <= 60
            ]
            assert close == [], event.event_id
            seen.append((event.category, event.lat, event.lon, event.reported_at, event.event_id))


def test_problems_compare_the_warehouse_with_what_each_feed_promises(feeds: TownFeeds) -> None:
    rows = [
        [source, counts["events"], counts["merged"], counts["awaiting_verification"], "x"]
        for source, counts in feeds.expected.items()
    ]
    assert feeds.problems(rows) == []
    assert feeds.expected[HOTLINE]["awaiting_verification"] == feeds.expected[HOTLINE]["events"] - 1
    assert feeds.cases == feeds.events - 1
    missing = feeds.problems(rows[1:])
    assert len(missing) == 1
    assert missing[0].startswith(f"feed {rows[0][0]}: warehouse has None")


def test_write_feeds_lays_one_csv_per_platform(feeds: TownFeeds, tmp_path: Path) -> None:
    written = write_feeds(feeds, tmp_path)
    assert [(path.name, source, entity) for path, source, entity in written] == [
        (f"{source}-incidents.csv", source, "event") for source in FEED_SOURCES
    ]
