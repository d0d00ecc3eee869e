"""A year of Menghe town at the article's scale, for ``gridhub demo --days N``.

The article counts more than 8,000 events reported through the platform in a year, 99.1% of them
closed. A simulated year is ``days`` days of :func:`simulation.day.simulate_day` ending on the demo
day :data:`simulation.town.DAY`, each at the article's scale rather than the demo day's busy 200:

- :data:`~simulation.scale.YEAR_EVENTS` valid grid-worker reports a day (8,395 in 365 days), with the retries,
  unknown categories and second reports of any day; the four department feeds in the proportion
  the demo day has them (:func:`simulation.feeds.feed_sizes`), drawn report by report;
  :data:`~simulation.scale.YEAR_APPLICATIONS` applications a day at the service centre;
- the registers (people, organisations, places) are base data: made once and sent once;
- every case, a feed's too, is worked to its close over as many days as it takes
  (:data:`simulation.day.A_YEAR_DAY`). An update is sent on the day it happens; a step after the
  year's last day never happens, so those cases are still open at the end;
- patrol tracks only on the last :data:`~simulation.scale.TRACK_DAYS` days: a year of them would be 3.2 million
  points (146 workers, two patrols of about 30 points a day), hours through the HTTP door;
- the feeds' faults and the article's example belong to the demo day, the year's last.

The cases still in progress at the end leave the closure rate near 99.7%; the town's remaining
0.9% are cases that stall (长期未结: handling never reported). The year stalls just enough cases,
reported before its last :data:`STALL_MARGIN` days, that closed / due lands on
:data:`~simulation.scale.CLOSURE_RATE`, as ``gridhub kpi`` computes it (``warehouse/cases.sql``: every case is due,
its deadline being hours after its report, so due is every case not rejected).

Like a day, the year is a pure function of its arguments and the routing table.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from simulation.day import (
    A_YEAR_DAY,
    SECOND_REPORT_SUFFIX,
    Row,
    TownDay,
    base_registers,
    combine,
    lifecycle_updates,
    simulate_day,
)
from simulation.feeds import ENVIRONMENT, HOTLINE, LAND, STATIONS, TownFeeds, combine_feeds, feed_sizes, town_feeds
from simulation.scale import CLOSURE_RATE, DEMO_EVENTS, MAX_DAYS, TRACK_DAYS, YEAR_APPLICATIONS, YEAR_EVENTS
from simulation.town import DAY, GRID_WORKERS, ReportedCategory
from streams.routing import RoutingRules

STALL_MARGIN = 30
"""Days before the year's end after which no case stalls: a late case is open because it is still in progress."""
SEED_STRIDE = 100
"""Day ``i`` of a year has seed ``seed + i * SEED_STRIDE``: a day uses offsets up to +13 for its own streams."""


@dataclass
class TownYear:
    """A run of days of the town, each as it is sent, and what the whole run must produce."""

    days: list[TownDay]
    """Each day as it is sent: its reports, applications and tracks, and as updates the steps taken that day."""
    feeds: list[TownFeeds]
    """Each day's department feed exports."""
    whole: TownDay
    """All days as one (:func:`simulation.day.combine`): the exact counts the warehouse must hold."""
    whole_feeds: TownFeeds
    """All days' feeds as one."""
    cases: int
    """Cases the run opens (all due: ``gridhub kpi``'s cases_due)."""
    closed: int
    """Of them, closed by the run's last day."""

    @property
    def closure_rate(self) -> float:
        """Closed / due, as ``gridhub kpi`` computes it."""
        return self.closed / self.cases

    @property
    def first(self) -> date:
        """The run's first day."""
        return self.days[0].day


def simulate_year(
    days: int, seed: int, rules: RoutingRules, events: int = YEAR_EVENTS, applications: int = YEAR_APPLICATIONS
) -> TownYear:
    """Simulate ``days`` days ending on :data:`DAY` with ``events`` valid reports and ``applications`` a day."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"a run is 1 to {MAX_DAYS} days, not {days}")
    first = DAY - timedelta(days=days - 1)
    registers = base_registers(random.Random(seed), DEMO_EVENTS)  # noqa: S311 -- simulation, seeded for replay
    generated: list[TownDay] = []
    feeds: list[TownFeeds] = []
    updates: list[Row] = []
    land = 1
    for index in range(days):
        day_seed = seed + SEED_STRIDE * index
        when = first + timedelta(days=index)
        day = simulate_day(
            events,
            day_seed,
            rules,
            day=when,
            lifecycle=A_YEAR_DAY,
            registers=registers,
            applications=applications,
            tracks=index >= days - TRACK_DAYS,
        )
        demo_day = when == DAY
        sizes = None if demo_day else _feed_sizes(random.Random(day_seed + 4), events)  # noqa: S311
        feed = town_feeds(day, day_seed, rules, sizes, faults=demo_day, land_from=land)
        land += len(feed.rows[LAND])
        updates += day.updates + _feed_updates(random.Random(day_seed + 5), feed, rules)  # noqa: S311
        generated.append(day)
        feeds.append(feed)
    cases = sum(day.expected["events"] - len(day.corroborating) for day in generated) + sum(f.cases for f in feeds)
    end = DAY + timedelta(days=1)
    updates = sorted((u for u in updates if _moment(u).date() < end), key=_moment)
    stalled = _stalled(random.Random(seed + 7), generated, updates, cases, end)  # noqa: S311
    updates = _without_handling(updates, stalled)
    by_day: list[list[Row]] = [[] for _ in generated]
    for update in updates:
        by_day[(_moment(update).date() - first).days].append(update)
    sent = [
        dataclasses.replace(day, updates=posted, expected={**day.expected, "updates": len(posted)})
        for day, posted in zip(generated, by_day, strict=True)
    ]
    accepted = {u["event_id"] for u in updates if u["status"] == "accepted"}
    for feed in feeds:
        hotline = {row["工单编号"] for row in feed.rows[HOTLINE]}
        waiting = [key for key in feed.incidents if key in hotline and key not in accepted]
        feed.expected[HOTLINE]["awaiting_verification"] = len(waiting) if HOTLINE in rules.verify_on_site else 0
    return TownYear(
        days=sent,
        feeds=feeds,
        whole=combine(sent, rules),
        whole_feeds=combine_feeds(feeds),
        cases=cases,
        closed=len({u["event_id"] for u in updates if u["status"] == "closed"}),
    )


def _moment(update: Row) -> datetime:
    """When an update happens, in town time (its local date is the day it is sent on)."""
    return datetime.fromisoformat(update["at"])


def _feed_sizes(rng: random.Random, events: int) -> dict[str, int]:
    """Each platform's incidents on a day of a year: as many per report as on the demo day, drawn report by report."""
    sizes = {
        source: sum(rng.random() < count / DEMO_EVENTS for _ in range(events))
        for source, count in feed_sizes(DEMO_EVENTS).items()
    }
    sizes[ENVIRONMENT] = min(sizes[ENVIRONMENT], len(STATIONS))
    return sizes


def _feed_updates(rng: random.Random, feeds: TownFeeds, rules: RoutingRules) -> list[Row]:
    """The lifecycle of the feeds' incidents: a grid worker checks each on site; a hotline complaint waits for them."""
    valid: list[tuple[Row, ReportedCategory]] = []
    for incident_id, incident in feeds.incidents.items():
        category = rules.categories[incident.category]
        report: Row = {
            "report_id": incident_id,
            "reported_at": incident.at.isoformat(timespec="seconds"),
            "lat": incident.lat,
            "lon": incident.lon,
            "reporter_id": f"GW{rng.randint(1, GRID_WORKERS):03d}",
        }
        valid.append((report, ReportedCategory(category.code, category.name, category.department, 0, ())))
    held = {row["工单编号"] for row in feeds.rows[HOTLINE]} if HOTLINE in rules.verify_on_site else set()
    return lifecycle_updates(rng, valid, A_YEAR_DAY, frozenset(held))


def _stalled(rng: random.Random, days: list[TownDay], updates: list[Row], cases: int, end: date) -> set[str]:
    """Grid cases that stall in handling, just enough that the closure rate lands on the article's."""
    closed = {u["event_id"] for u in updates if u["status"] == "closed"}
    wanted = round(cases * (1 - CLOSURE_RATE)) - (cases - len(closed))
    latest = end - timedelta(days=STALL_MARGIN)
    candidates = sorted(
        {
            body["report_id"]
            for day in days
            if day.day < latest
            for body in day.reports
            if body["report_id"] in closed and not body["report_id"].endswith(SECOND_REPORT_SUFFIX)
        }
    )
    return set(rng.sample(candidates, max(0, min(wanted, len(candidates)))))


def _without_handling(updates: list[Row], stalled: set[str]) -> list[Row]:
    """The updates less those of a stalled case from its first handled on: it stays in handling."""
    cut: set[str] = set()
    kept = []
    for update in updates:
        if update["event_id"] in stalled and (update["status"] == "handled" or update["event_id"] in cut):
            cut.add(update["event_id"])
            continue
        kept.append(update)
    return kept
