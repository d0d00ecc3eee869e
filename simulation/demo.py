"""``gridhub demo``: the whole hub on the embedded broker, fed one simulated town day.

The demo is also a self-check: the simulated day knows how many distinct
events, people and organisations a correct pipeline must end with, and the
demo exits non-zero if the warehouse disagrees.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from connectors.exports import ExportEntity, ExportFile
from connectors.exports.columns import load_mappings
from connectors.publisher import RawPublisher
from foundation import packaged
from foundation.errors import GridhubError
from foundation.settings import Settings
from gridhub.broker import count_messages
from gridhub.cli_common import print_result, stop_showing_progress
from gridhub.ingest import publish_export
from gridhub.supervisor import Stack
from schemas import TOWN_TIMEZONE
from schemas.approvals import load_catalogue
from schemas.enforcement import load_bureau
from schemas.grid import Grid
from schemas.topics import OVERDUE_ALERTS, dispatch_topic
from simulation import article, enforcement
from simulation.day import TownDay, simulate_day, write_exports
from simulation.feeds import FEEDS_SQL, TownFeeds, town_feeds, write_feeds
from simulation.registers import TownRegisters, town_registers, write_registers
from simulation.scale import TRACK_DAYS, YEAR_APPLICATIONS, YEAR_DAYS
from simulation.senders import TownTokens
from simulation.town import DAY
from simulation.year import TownYear, simulate_year
from streams.routing import RoutingRules, load_rules
from warehouse.kpi import CASE_MEASURES, enforcement_kpi_sql, kpi_sql
from warehouse.reader import query

PHONES = 8  # reports in flight at once, as from several grid workers' phones
SECOND_REPORT_LAG_DAYS = 1
"""Over several days, a day's second reports of a problem are sent after the reports of the next day."""
UPDATE_LAG_DAYS = 3
"""Over several days, a day's updates are sent after the reports of this many days more.

The steps of a case never come before its report reaches the case agent (see :func:`_feed`), and
the reports of the next days never depend on them (reports more than two hours apart never merge).
"""
YEAR_RATE_LIMIT = "1000/second"
"""Calls one token may make over several days: a desk sends a year's updates in minutes, far beyond
the door's per-token limit for a real desk (``GRIDHUB_RATE_LIMIT``), which the one demo day keeps."""
APPROVALS_DDL = """
CREATE TABLE IF NOT EXISTS applications (
    change_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id TEXT NOT NULL, item_code TEXT NOT NULL, item_name TEXT,
    applicant_id_number TEXT, applicant_uscc TEXT, status TEXT NOT NULL,
    submitted_at TEXT NOT NULL, updated_at TEXT NOT NULL, window_no INTEGER, channel TEXT
)
"""


class DemoFailed(GridhubError):
    """The warehouse does not hold what the simulated day must produce."""


@dataclass
class Tally:
    """What the demo sent and how the doors answered."""

    accepted: int = 0
    updates_accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def post_all(
        self,
        url: str,
        chains: list[list[tuple[bytes, str]]],
        progress: Progress,
        task: TaskID,
        records: Callable[[bytes], int] = lambda _body: 1,
    ) -> None:
        """POST from a few phones at once; each chain (one case's updates) in its own order.

        Counts the records accepted (a track batch holds many points), and refusals by error code.
        """
        with ThreadPoolExecutor(max_workers=PHONES) as pool:
            for chain, answers in zip(
                chains, pool.map(lambda chain: [_post(url, body, token) for body, token in chain], chains), strict=True
            ):
                for (body, _token), answer in zip(chain, answers, strict=True):
                    if answer is None:
                        self.accepted += records(body)
                    else:
                        self.refused[answer] += 1
                progress.advance(task, len(answers))


def _post(url: str, body: bytes, token: str) -> str | None:
    """POST one body as the sender of ``token``; None when accepted, else the refusal as 'HTTP <status> <code>'.

    A 429 is waited out as its ``Retry-After`` says, as a phone would, and sent again.
    """
    request = urllib.request.Request(  # noqa: S310 - loopback URL announced by our own gateway
        url, data=body, headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    )
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                return None
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                return f"HTTP {exc.code} {json.loads(exc.read()).get('error', '?')}"
            time.sleep(float(exc.headers.get("Retry-After", "1")))


def _demo_settings(settings: Settings, serve: bool = False, days: int = 1) -> Settings:
    """The demo's own folder, emptied, so its counts describe this run alone; free ports, so it runs beside `up`.

    Serving (``--serve``), the screen keeps ``GRIDHUB_SCREEN_PORT`` when the user set it, so its
    address can be known in advance; every other port stays a free one.
    """
    folder = settings.data_dir / "demo"
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal", "approvals.sqlite", "tokens.sqlite", "admin.token"):
        (folder / name).unlink(missing_ok=True)
    for name in ("state", "exports", "logs", "faust"):
        shutil.rmtree(folder / name, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    chosen = serve and "screen_port" in settings.model_fields_set
    private = {
        "overdue_check_seconds": 2,
        "data_dir": folder,
        "warehouse_path": None,
        "approvals_db_url": None,
        "http_port": 0,
        "sink_query_port": 0,
        "screen_port": settings.screen_port if chosen else 0,
        "watch_dir": None,
        "rest_sources": None,
    }
    if days > 1:
        private["rate_limit"] = YEAR_RATE_LIMIT
    return Settings(**{**settings.model_dump(), **private})


def _load_approvals(url: str, rows: list[dict[str, Any]]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(APPROVALS_DDL)
        table = sa.Table("applications", sa.MetaData(), autoload_with=connection)
        connection.execute(sa.insert(table), rows)
    engine.dispose()


@dataclass
class DemoRun:
    """What the demo sends, day by day, and what the warehouse must hold once it is all in."""

    days: list[TownDay]
    """Each day as it is sent (a year's days send the steps taken that day as their updates)."""
    feeds: list[TownFeeds]
    """Each day's department feed exports."""
    whole: TownDay
    """All the days as one: the exact counts."""
    whole_feeds: TownFeeds
    registers: TownRegisters
    """Base data, sent once."""
    case_files: list[dict[str, Any]]
    """The enforcement bureau's export, sent with the last day."""
    year: TownYear | None = None
    """The year the days belong to, for a run of more than one day."""

    @classmethod
    def make(cls, settings: Settings, rules: RoutingRules, events: int, seed: int, days: int) -> DemoRun:
        """The one demo day of ``events`` reports, or ``days`` days of ``events`` reports each ending on it."""
        year: TownYear | None = None
        if days == 1:
            day = simulate_day(events=events, seed=seed, rules=rules)
            feeds = town_feeds(day, seed, rules)
            sent, sent_feeds, whole, whole_feeds = [day], [feeds], day, feeds
        else:
            year = simulate_year(days, seed, rules, events)
            sent, sent_feeds, whole, whole_feeds = year.days, year.feeds, year.whole, year.whole_feeds
        grid, bureau = Grid.load(settings.grid_path), load_bureau(settings.enforcement)
        files = enforcement.case_files(whole, grid, bureau, seed)
        return cls(sent, sent_feeds, whole, whole_feeds, town_registers(whole, seed), files, year)

    def events_through(self, index: int, seconds_through: int | None = None) -> int:
        """Events of days ``0..index`` (reports, feed incidents), second reports only up to ``seconds_through``."""
        last = index if seconds_through is None else seconds_through
        return sum(
            day.expected["events"] - (len(day.corroborating) if number > last else 0) + feeds.events
            for number, (day, feeds) in enumerate(zip(self.days[: index + 1], self.feeds[: index + 1], strict=True))
        )


def _feed(settings: Settings, stack: Stack, run: DemoRun, tokens: TownTokens, progress: Progress) -> tuple[Tally, int]:
    """Send the days through all three connector families; return the HTTP tally and records expected.

    The hub may take records of different cases in another order than they were sent, so what
    depends on an earlier record waits until the warehouse holds it (:func:`_wait_for_events`):
    a day's second reports of a problem wait for its first reports, its case updates for every
    report. Each day sends its reports, applications and department exports, then the second
    reports and the updates of earlier days (:data:`SECOND_REPORT_LAG_DAYS`,
    :data:`UPDATE_LAG_DAYS`: over several days, by then their events have long landed and the
    wait costs almost nothing), then its patrol tracks (many thousands of points, last so as not
    to delay the events). The one demo day sends all of it in that order, waiting as it must.
    """
    patrol = stack.url("patrol")
    tally = Tally()
    whole = run.whole
    several = len(run.days) > 1
    seconds_lag, updates_lag = (SECOND_REPORT_LAG_DAYS, UPDATE_LAG_DAYS) if several else (0, 0)
    reports = progress.add_task(
        "grid workers report incidents", total=len(whole.reports) + len(whole.malformed_reports)
    )
    applications = progress.add_task("service centre files applications", total=len(whole.applications))
    tracks = progress.add_task("grid workers' phones upload patrol tracks", total=len(whole.tracks))
    updates = progress.add_task("desks and workers post case updates", total=len(whole.updates))
    days = progress.add_task("days", total=len(run.days)) if several else None
    folder = settings.data_dir / "exports"
    mappings = load_mappings(settings.export_mappings)
    publisher = RawPublisher.for_door(settings, stack.bootstrap, "ingest")
    exported = 0
    try:
        for step in range(len(run.days) + updates_lag):
            if step < len(run.days):
                day = run.days[step]
                seconds = set(day.corroborating)
                firsts = [_report(body, tokens) for body in day.reports if body["report_id"] not in seconds]
                malformed = [[(body, tokens.any_phone)] for body in day.malformed_reports]
                tally.post_all(f"{patrol}/v1/reports", [*firsts, *malformed], progress, reports)
                _load_approvals(settings.approvals_url, day.applications)
                progress.advance(applications, len(day.applications))
                exports = write_feeds(run.feeds[step], folder)
                if step == 0:
                    exports = [*_register_exports(day, run.registers, folder), *exports]
                if step == len(run.days) - 1:
                    case_files = enforcement.write_case_files(run.case_files, folder)
                    exports.append((case_files, enforcement.SOURCE, "enforcement_case"))
                for path, source, entity in exports:
                    export = ExportFile(path, entity, mappings.columns_for(source, entity))
                    exported += publish_export(publisher, export, source, uuid.uuid4().hex, progress.console).total
            if 0 <= (index := step - seconds_lag) < len(run.days):
                day = run.days[index]
                _wait_for_events(settings, day.day, run.events_through(index, seconds_through=index - 1))
                seconds = set(day.corroborating)
                bodies = [_report(body, tokens) for body in day.reports if body["report_id"] in seconds]
                tally.post_all(f"{patrol}/v1/reports", bodies, progress, reports)
            if 0 <= (index := step - updates_lag) < len(run.days):
                _wait_for_events(settings, run.days[index].day, run.events_through(index))
                _post_updates(tally, f"{patrol}/v1/updates", run.days[index].updates, tokens, progress, updates)
            if step < len(run.days):
                patrols = run.days[step].tracks
                bodies = [[(json.dumps(body).encode(), tokens.of_actor(body["worker_id"]))] for body in patrols]
                tally.post_all(f"{patrol}/v1/tracks", bodies, progress, tracks, records=_points)
                if days is not None:
                    progress.advance(days)
    finally:
        publisher.close()
    return tally, tally.accepted + len(whole.applications) + exported


def _points(body: bytes) -> int:
    """Track points in a track batch: the records it holds."""
    return len(json.loads(body)["points"])


def _report(body: dict[str, Any], tokens: TownTokens) -> list[tuple[bytes, str]]:
    """A report as a chain of one request, signed by its reporter's phone."""
    return [(json.dumps(body, ensure_ascii=False).encode(), tokens.of_report(body))]


def _register_exports(day: TownDay, registers: TownRegisters, folder: Path) -> list[tuple[Path, str, ExportEntity]]:
    """The base data's exports, the enterprise register twice (a department resends it whole)."""
    people_file, organisations_file = write_exports(day, folder)
    return [
        (people_file, "civil-affairs", "person"),
        (organisations_file, "market-supervision", "organisation"),
        (organisations_file, "market-supervision", "organisation"),
        *write_registers(registers, folder),
    ]


def _post_updates(
    tally: Tally, url: str, updates: list[dict[str, Any]], tokens: TownTokens, progress: Progress, task: TaskID
) -> None:
    """Post updates, each case's in its order, from its actor."""
    chains: dict[str, list[tuple[bytes, str]]] = {}
    for update in updates:
        body = json.dumps(update, ensure_ascii=False).encode()
        chains.setdefault(update["event_id"], []).append((body, tokens.of_actor(update["actor"])))
    before = tally.accepted
    tally.post_all(url, list(chains.values()), progress, task)
    tally.updates_accepted += tally.accepted - before


def _wait_for_events(settings: Settings, through: date, expected: int, timeout_s: float = 300) -> None:
    """Wait until the warehouse holds ``expected`` events reported up to the end of day ``through``.

    Counting only the events of those days, none sent later can stand in for one still on its
    way; once counted, the case agent has filed every one of them.
    """
    end = datetime.combine(through + timedelta(days=1), datetime.min.time(), tzinfo=TOWN_TIMEZONE)
    sql = f"SELECT count(*) FROM events WHERE reported_at < TIMESTAMPTZ '{end.isoformat()}'"
    deadline = time.monotonic() + timeout_s
    while (done := int(query(settings, sql)["rows"][0][0])) < expected:
        if time.monotonic() > deadline:
            raise DemoFailed(
                f"only {done} of {expected} events up to {through} reached the warehouse in {timeout_s:.0f}s; "
                f"see the logs in {settings.data_dir / 'logs'}"
            )
        time.sleep(0.1)


def _wait_for_warehouse(settings: Settings, expected: int, progress: Progress, timeout_s: float = 300) -> None:
    task = progress.add_task("warehouse accounts for every record", total=expected)
    deadline = time.monotonic() + timeout_s
    while True:
        done = int(query(settings, "SELECT count(*) FROM intake")["rows"][0][0])
        progress.update(task, completed=done)
        if done >= expected:
            return
        if time.monotonic() > deadline:
            raise DemoFailed(
                f"only {done} of {expected} records reached the warehouse in {timeout_s:.0f}s; "
                f"see the logs in {settings.data_dir / 'logs'}"
            )
        time.sleep(0.3)


def _wait_for_overdue_alerts(settings: Settings, timeout_s: float = 20) -> None:
    """Give the case agent's clock time to flag every case already past its deadline."""
    pending = (
        "SELECT count(*) FROM cases WHERE status NOT IN ('closed', 'rejected') "
        "AND due_at < now() AND NOT overdue_alerted"
    )
    deadline = time.monotonic() + timeout_s
    while int(query(settings, pending)["rows"][0][0]) and time.monotonic() < deadline:
        time.sleep(0.5)


FEEDS_TITLE = "Department incident feeds: events by source"
SUMMARY_QUERIES = {
    "Records taken in, by source and outcome": """
        SELECT source, count(*) AS taken_in, count(*) FILTER (outcome = 'new') AS new,
               count(*) FILTER (outcome = 'update') AS updated,
               count(*) FILTER (outcome = 'duplicate') AS deduplicated,
               count(*) FILTER (outcome = 'rejected') AS rejected
        FROM intake GROUP BY source ORDER BY source""",
    "Rejected, by reason": """
        SELECT source, reason_code, count(*) AS records, any_value(reason) AS example
        FROM rejects GROUP BY ALL ORDER BY records DESC, source""",
    "Events (reports) by status of their case": """
        SELECT status, count(*) AS events FROM events GROUP BY status ORDER BY events DESC""",
    FEEDS_TITLE: FEEDS_SQL,
    "Cases by status": """
        SELECT status, count(*) AS cases, sum(report_count) AS reports,
               count(*) FILTER (report_count > 1) AS merged_reports_cases,
               count(*) FILTER (overdue_alerted) AS overdue_alerts
        FROM cases GROUP BY status ORDER BY cases DESC""",
    "Case KPIs by squad (day of the cases' deadlines or closure)": kpi_sql(by="squad"),
    "Enforcement cases by squad (day of filing)": enforcement_kpi_sql(by="squad"),
    "Patrol compliance (two patrols of at least 50 minutes)": """
        SELECT count(*) AS worker_days, count(*) FILTER (compliant) AS compliant,
               round(avg(total_minutes), 1) AS average_minutes FROM patrol_compliance""",
    "Base data: golden records from every department's copies": """
        SELECT m.kind, count(DISTINCT m.entity_key) AS golden_records, count(*) AS copies,
               count(*) FILTER (m.method NOT IN ('fuzzy', 'unmatched')) AS matched_on_key,
               count(*) FILTER (m.method = 'fuzzy') AS matched_by_similarity,
               count(DISTINCT r.source || ':' || r.source_record_id) AS left_for_review
        FROM entity_matches m LEFT JOIN match_review r
          ON r.kind = m.kind AND r.source = m.source AND r.source_record_id = m.source_record_id
        GROUP BY m.kind ORDER BY m.kind""",
    "Links between people, places, organisations, events and applications": """
        SELECT from_kind, relation, to_kind, count(*) AS links FROM entity_links GROUP BY ALL ORDER BY links DESC""",
    "Warehouse rows": """
        SELECT 'people' AS "table", count(*) AS rows FROM people UNION ALL
        SELECT 'organisations', count(*) FROM organisations UNION ALL
        SELECT 'places', count(*) FROM places UNION ALL
        SELECT 'people_merged_by_similarity', count(*) FROM entity_matches
            WHERE kind = 'person' AND method = 'fuzzy' UNION ALL
        SELECT 'people_in_review', count(DISTINCT (source, source_record_id)) FROM match_review
            WHERE kind = 'person' UNION ALL
        SELECT 'lives_at', count(*) FROM entity_links WHERE relation = 'lives_at' UNION ALL
        SELECT 'represents', count(*) FROM entity_links WHERE relation = 'represents' UNION ALL
        SELECT 'events', count(*) FROM events UNION ALL
        SELECT 'cases', count(*) FROM cases UNION ALL
        SELECT 'case_transitions', count(*) FROM case_transitions UNION ALL
        SELECT 'event_updates', count(*) FROM event_updates UNION ALL
        SELECT 'lifecycle_rejects', count(*) FROM rejects WHERE stage = 'lifecycle' UNION ALL
        SELECT 'reports_in_cases', coalesce(sum(report_count), 0) FROM cases UNION ALL
        SELECT 'applications', count(*) FROM applications UNION ALL
        SELECT 'applications_at_windows', count(*) FILTER (window_no IS NOT NULL) FROM applications UNION ALL
        SELECT 'approval_items', count(*) FROM approval_items UNION ALL
        SELECT 'service_windows', count(*) FROM service_windows UNION ALL
        SELECT 'patrol_tracks', count(*) FROM patrol_tracks UNION ALL
        SELECT 'workers_compliant', count(*) FILTER (compliant) FROM patrol_compliance UNION ALL
        SELECT 'enforcement_squads', count(*) FROM enforcement_units WHERE kind = 'squad' UNION ALL
        SELECT 'enforcement_officers', count(*) FROM enforcement_officers UNION ALL
        SELECT 'enforcement_powers', count(*) FROM enforcement_powers UNION ALL
        SELECT 'enforcement_cases', count(*) FROM enforcement_cases UNION ALL
        SELECT 'enforcement_cases_linked', count(*) FROM enforcement_case_facts
            WHERE grid_case_status IS NOT NULL AND coalesce(person_key, organisation_key) IS NOT NULL UNION ALL
        SELECT 'article_example_closed_within_2h', count(*) FROM cases AS c WHERE c.case_id = '{ARTICLE_CASE}'
            AND c.status = 'closed' AND EXISTS (SELECT 1 FROM case_transitions AS t WHERE t.case_id = c.case_id
            AND t.to_status = 'handled' AND t."at" - c.reported_at <= INTERVAL 2 HOUR) UNION ALL
        SELECT 'rejects', count(*) FROM rejects""".replace("{ARTICLE_CASE}", article.REPORT_ID),
}


def _merged_reports(settings: Settings, report_ids: list[str]) -> int:
    """How many of these reports joined an earlier case instead of opening their own."""
    if not report_ids:
        return 0
    listed = ", ".join(f"'{report_id}'" for report_id in report_ids if report_id.replace("-", "").isalnum())
    sql = f"SELECT count(*) FROM events WHERE event_id IN ({listed}) AND case_id <> event_id"
    return int(query(settings, sql)["rows"][0][0])


def _check(
    day: TownDay, registers: TownRegisters, feeds: TownFeeds, case_files: int, rows: dict[str, int], tally: Tally
) -> list[str]:
    """Compare the warehouse with what the simulated day must produce, the catalogue and the bureau it used.

    ``case_files``: the bureau's files that must be accepted (the faulty ones are in the rejects).
    """
    catalogue = load_catalogue(packaged.APPROVAL_ITEMS)
    bureau = load_bureau(packaged.ENFORCEMENT)
    wanted = {
        **registers.expected,
        "events": day.expected["events"] + feeds.events,
        "cases": day.expected["events"] - len(day.corroborating) + feeds.cases,
        "reports_in_cases": day.expected["events"] + feeds.events,
        "organisations": day.expected["organisations"],
        "applications": day.expected["applications"],
        "applications_at_windows": day.expected["applications_at_windows"],
        "approval_items": len(catalogue.items),
        "service_windows": len(catalogue.windows),
        "patrol_tracks": day.expected["patrol_points"],
        "workers_compliant": day.expected["workers_compliant"],
        "enforcement_squads": sum(unit.kind == "squad" for unit in bureau.file.units.values()),
        "enforcement_officers": len(bureau.officers),
        "enforcement_powers": len(bureau.powers),
        "enforcement_cases": case_files,
        "enforcement_cases_linked": case_files,
        "article_example_closed_within_2h": 1,
    }
    problems = [
        f"{table}: warehouse has {rows[table]}, the day produced {count}"
        for table, count in wanted.items()
        if rows[table] != count
    ]
    settled = rows["event_updates"] + rows["lifecycle_rejects"]
    if settled != tally.updates_accepted:
        problems.append(f"updates: {settled} applied or rejected, the gateway accepted {tally.updates_accepted}")
    if tally.updates_accepted != day.expected["updates"]:
        refused = day.expected["updates"] - tally.updates_accepted
        problems.append(f"updates: the gateway refused {refused} of the day's legal updates")
    return problems


SERVED_LINE = re.compile(r"^  (?P<name>[a-z][a-z ]*[a-z]): (?P<value>\S.*?)\s*$")
"""A ``  name: value`` line of what ``--serve`` prints (:func:`serve_lines`)."""


def serve_lines(screen_url: str, patrol_url: str, bootstrap: str, data_dir: Path) -> list[tuple[str, str]]:
    """What ``--serve`` prints, as ``  name: value`` lines (the browser tests read them): the screen last.

    The screen opens on the simulated day (``?date=``), which is in the past: its "today" panels
    would otherwise show a day without cases.
    """
    return [
        ("patrol gateway", patrol_url),
        ("kafka bootstrap", bootstrap),
        ("commander token", str((data_dir / "commander.token").resolve())),
        ("analyst token", str((data_dir / "analyst.token").resolve())),
        ("screen", f"{screen_url}/?date={DAY.isoformat()}"),
    ]


def served_line(line: str) -> tuple[str, str] | None:
    """The name and value of one printed ``  name: value`` line of :func:`serve_lines`, else None."""
    found = SERVED_LINE.match(line)
    return (found["name"], found["value"]) if found else None


def _serve(stack: Stack, console: Console) -> None:
    """Keep the hub and its screen running until Ctrl-C or SIGTERM, then stop it as `gridhub up` does.

    Stopping is the stack's own: the doors close, what they accepted lands, then the rest stops
    (a second Ctrl-C cuts the drain short).
    """
    stopping = threading.Event()
    previous: dict[int, Any] = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda *_: stopping.set())
        console.rule("gridhub demo --serve: the day's hub keeps running")
        lines = serve_lines(stack.url("screen"), stack.url("patrol"), stack.bootstrap, stack.settings.data_dir)
        for name, value in lines:
            console.print(f"  {name}: {value}", markup=False, highlight=False)
        console.print("Log in to the screen with the analyst's token (masked) or the commander's (whole, audited).")
        console.print("Press Ctrl-C to stop.")
        while not stopping.is_set():
            stack.watch()
            stopping.wait(1)
    finally:
        stop_showing_progress(stack, "gridhub demo", console=console)
        for number, handler in previous.items():
            signal.signal(number, handler)


def _kpi_by_month_sql() -> str:
    """The case KPIs of each month (as ``gridhub kpi --month``) and of everything (as ``gridhub kpi``), last."""
    months = (
        f"SELECT strftime(period_date, '%Y-%m') AS month, {', '.join(CASE_MEASURES)} "
        "FROM kpi_case_facts WHERE is_due GROUP BY ALL"
    )
    shown = "cases_due, closed, closure_rate, closed_on_time, on_time_rate, rework_rate, median_hours_to_close"
    return (
        f"SELECT month, {shown} FROM ({months}) UNION ALL SELECT 'all', {shown} FROM ({kpi_sql()}) "
        "ORDER BY month = 'all', month"
    )


ARTICLE_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("events reported through the platform", "more than 8,000", "events"),
    ("closure rate (closed / due)", "99.1% (± 0.3)", "closure_rate"),
    ("service centre windows", "34", "service_windows"),
    ("approval items", "134", "approval_items"),
    ("enforcement officers", "44", "enforcement_officers"),
    ("enforcement powers", "78", "enforcement_powers"),
)
"""The article's figures: what it says, and the warehouse row (or KPI) this run shows beside it."""
YEAR_EVENTS_ABOVE = 8_000
CLOSURE_RANGE = (0.988, 0.994)
"""The article's 99.1% ± 0.3, which a year's closure rate must land in."""


def _year_summary(year: TownYear, months: dict[str, Any], rows: dict[str, int], console: Console) -> list[str]:
    """Print the KPIs by month and the article's figures beside the run's; return what disagrees.

    The cases due and closed must be exactly those the simulated days produce; a year (365 days or
    more) must also end on the article's figures.
    """
    print_result(months, title="Case KPIs by month of the cases' deadlines or closure ('all': gridhub kpi)")
    total = dict(zip(months["columns"], months["rows"][-1], strict=True))
    due, closed = int(total["cases_due"]), int(total["closed"])
    rate = closed / due if due else 0.0
    shown = {**rows, "closure_rate": f"{rate:.2%}"}
    print_result(
        {"columns": ["figure", "the article", "this run"], "rows": [[n, a, shown[k]] for n, a, k in ARTICLE_FIGURES]},
        title="The article's figures and this run's",
    )
    console.print(
        f"patrol tracks on the last {TRACK_DAYS} days only ({year.whole.expected['patrol_points']} points; a year "
        f"of them would be about 3.2 million); {YEAR_APPLICATIONS} applications a day; the registers sent once; "
        "the bureau's case files exported once, with the last day"
    )
    problems = []
    if (due, closed) != (year.cases, year.closed):
        problems.append(f"KPIs: {closed} of {due} cases due closed, the days produced {year.closed} of {year.cases}")
    if len(year.days) >= YEAR_DAYS:
        if rows["events"] <= YEAR_EVENTS_ABOVE:
            problems.append(f"a year of {rows['events']} events, the article has more than {YEAR_EVENTS_ABOVE:,}")
        if not CLOSURE_RANGE[0] <= rate <= CLOSURE_RANGE[1]:
            problems.append(f"a year's closure rate of {rate:.2%}, the article has 99.1% ± 0.3")
    return problems


def run_demo(settings: Settings, events: int, seed: int, console: Console, serve: bool = False, days: int = 1) -> None:
    """Start the hub, feed the day (or ``days`` days ending on it), wait for the warehouse, print the summary, stop.

    With ``serve``, the hub and its screen keep running after a run that checks out, until Ctrl-C or SIGTERM.
    """
    settings = _demo_settings(settings, serve, days)
    started = time.monotonic()
    rules = load_rules(settings.routing_rules)
    run = DemoRun.make(settings, rules, events, seed, days)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with ExitStack() as running:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("starting broker, worker, sink and connectors", total=1)
            tokens = TownTokens.make(settings, Grid.load(settings.grid_path), rules)
            stack = running.enter_context(Stack(settings))
            settings = stack.settings
            progress.advance(task)
            tally, expected = _feed(settings, stack, run, tokens, progress)
            _wait_for_warehouse(settings, expected, progress)
            _wait_for_overdue_alerts(settings)
            results = {title: query(settings, sql) for title, sql in SUMMARY_QUERIES.items()}
            merged = _merged_reports(settings, run.whole.corroborating)
            dispatched = count_messages(
                stack.bootstrap, [*(dispatch_topic(unit) for unit in rules.desk_units()), OVERDUE_ALERTS]
            )
            months = query(settings, _kpi_by_month_sql()) if run.year else None
            if not serve:
                running.close()  # the hub stops before the summary
        if run.year is None:
            console.rule(f"gridhub demo: one day of Menghe town ({events} incident reports, seed {seed})")
        else:
            console.rule(
                f"gridhub demo: {days} days of Menghe town, {run.year.first} to {DAY} "
                f"({events} incident reports a day, seed {seed})"
            )
        for title, result in results.items():
            print_result(result, title=title)
        print_result(
            {"columns": ["refused at the door", "requests"], "rows": sorted(tally.refused.items())},
            title="Refused by the patrol gateway (never entered)",
        )
        print_result(
            {"columns": ["topic", "messages"], "rows": [[t, n] for t, n in dispatched.items() if n]},
            title="Work orders on dispatch topics, and overdue alerts",
        )
        rows = {str(name): int(count) for name, count in results["Warehouse rows"]["rows"]}
        accepted_files = len(run.case_files) - len(enforcement.FAULTS)
        problems = _check(run.whole, run.registers, run.whole_feeds, accepted_files, rows, tally)
        problems += run.whole_feeds.problems(results[FEEDS_TITLE]["rows"])
        corroborating = len(run.whole.corroborating)
        if merged != corroborating:
            problems.append(f"{merged} of {corroborating} second reports of an open problem joined its case")
        if run.year is not None and months is not None:
            problems += _year_summary(run.year, months, rows, console)
        console.print(
            f"records sent: {expected} accepted by connectors, {sum(tally.refused.values())} refused at the door"
        )
        console.print(f"second reports of an open problem joined its case: {merged} of {corroborating}")
        console.print(f"warehouse: {settings.warehouse_file.resolve()}")
        console.print(
            f"query it:  GRIDHUB_TOKEN=$(cat {settings.data_dir / 'analyst.token'}) "
            f'gridhub sql --data-dir {settings.data_dir} "SELECT * FROM people LIMIT 5"'
            f"  (personal data masked; {settings.data_dir / 'commander.token'} sees it whole, and is audited)"
        )
        console.print(f"finished in {time.monotonic() - started:.1f}s")
        if problems:
            raise DemoFailed("the warehouse disagrees with the simulated day: " + "; ".join(problems))
        if serve:
            running.pop_all()  # from here _serve stops the hub, showing the drain
            _serve(stack, console)
