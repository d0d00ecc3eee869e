"""The ``gridhub`` command: run the hub, feed it, and query the warehouse.

Heavy imports (Faust, DuckDB, pyarrow) happen inside the commands that need
them, so ``gridhub --help`` and ``gridhub sql`` start quickly. Applications built on
gridhub add their own commands through the ``gridhub.commands`` entry points (the
town simulation's ``demo``, the benchmark's ``bench``): the product never imports them.
"""

from __future__ import annotations

import json
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from foundation.errors import GridhubError
from foundation.logs import get_logger
from foundation.settings import Settings
from gridhub.cli_access import audit, ensure_admin_token, tokens_app
from gridhub.cli_check import check, run_tests
from gridhub.cli_common import (
    Bootstrap,
    DataDir,
    UsageError,
    console,
    errors,
    print_result,
    stop_showing_progress,
)
from gridhub.cli_common import command_settings as _settings
from gridhub.cli_export import export
from gridhub.cli_quality import quality_app
from gridhub.cli_rejects import rejects_app
from gridhub.cli_runs import runs
from gridhub.cli_status import status

if TYPE_CHECKING:
    from connectors.exports import IngestReport

app = typer.Typer(
    help="gridhub: the data-integration hub under a town's command centre.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
schemas_app = typer.Typer(help="Publish the record contracts.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
dispatch_app = typer.Typer(help="A department desk's work orders.", no_args_is_help=True)
app.add_typer(dispatch_app, name="dispatch")
grid_app = typer.Typer(help="The town's governance grid.", no_args_is_help=True)
app.add_typer(grid_app, name="grid")
review_app = typer.Typer(help="Weak entity matches waiting for a person's decision.", no_args_is_help=True)
app.add_typer(review_app, name="review")
app.add_typer(tokens_app, name="tokens")
app.add_typer(rejects_app, name="rejects")
app.add_typer(quality_app, name="quality")
app.command()(audit)
app.command()(export)
app.command()(status)
app.command()(runs)
app.command()(check)
app.command("test")(run_tests)
log = get_logger(__name__)


@app.command()
def up(data_dir: DataDir = None, bootstrap: Bootstrap = None) -> None:
    """Run the broker (if embedded), the worker, the sink and the connectors until Ctrl-C."""
    import signal

    from gridhub.supervisor import Stack

    settings = _settings(data_dir=data_dir, kafka_bootstrap=bootstrap)
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    admin_token = ensure_admin_token(settings)
    with console.status("starting gridhub..."):
        stack = Stack(settings)
        stack.__enter__()
    try:
        console.print(f"gridhub is up. Kafka: {stack.bootstrap}")
        console.print(f"  patrol gateway: {stack.url('patrol')}/v1/reports")
        console.print(f"  screen:         {stack.url('screen')}/ (log in with a commander's or analyst's token)")
        console.print(f"  warehouse:      {settings.warehouse_file.resolve()} (query with `gridhub sql`)")
        if admin_token is not None:
            console.print(f"  admin token:    made on this first start, in {admin_token.resolve()} (owner-only)")
        else:
            console.print(f"  tokens:         {settings.tokens_file.resolve()} (`gridhub tokens list`)")
        console.print(f"  logs:           {stack.log_dir.resolve()}")
        if settings.watch_dir:
            console.print(f"  watched folder: {settings.watch_dir.resolve()} (<source>/<entity>/<file>)")
        console.print("Press Ctrl-C to stop.")
        while not stopping:
            stack.watch()
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop_showing_progress(
            stack, "gridhub", " (Ctrl-C again to stop now; they are kept and sent again at the next start)"
        )


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query (SELECT, EXPLAIN).")],
    output: Annotated[str, typer.Option("--output", "-o", help="table, csv or json.")] = "table",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="A value for the query's next placeholder (?), as text; repeat in order. "
            "Cast it where a number is meant: CAST(? AS INTEGER).",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Query the warehouse, whether or not gridhub is running."""
    from warehouse.reader import query as run

    if output not in ("table", "csv", "json"):
        raise UsageError("--output must be table, csv or json")
    print_result(run(_settings(data_dir=data_dir), query, param or []), output)


Wait = Annotated[bool, typer.Option(help="Return when every record is in the warehouse or the rejects.")]
WaitTimeout = Annotated[float, typer.Option("--timeout", help="Seconds --wait waits at most.")]


def _published(settings: Settings, report: IngestReport, unit: str, wait: bool, timeout: float) -> None:
    """Say what a feed published and, with --wait, how the warehouse took it."""
    from gridhub.ingest import wait_for_run

    console.print(f"published {report.records} records ({report.unreadable} unreadable {unit}) as run {report.run_id}")
    if wait:
        outcome = wait_for_run(settings, report.run_id, report.total, timeout, console)
        print_result(outcome, title=f"run {report.run_id}")


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A CSV, JSON Lines, XLSX or Parquet export.")],
    source: Annotated[str, typer.Option(help="The publishing department, e.g. civil-affairs.")],
    entity: Annotated[str, typer.Option(help="person, organisation, place, object or event (incidents).")],
    sheet: Annotated[
        str | None, typer.Option(help="Worksheet of an .xlsx export (default: the source's mapping, else the first).")
    ] = None,
    wait: Wait = False,
    timeout: WaitTimeout = 600,
    data_dir: DataDir = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Publish a department export into the running hub."""
    from connectors.exports.columns import EXPORT_ENTITIES
    from gridhub.ingest import ingest_file
    from schemas.runs import new_run_id

    if entity not in EXPORT_ENTITIES:
        raise UsageError(f"--entity must be one of {', '.join(EXPORT_ENTITIES)}, not {entity!r}")
    settings = _settings(data_dir=data_dir, kafka_bootstrap=bootstrap)
    report = ingest_file(settings, path, source, entity, new_run_id(), console, sheet)  # type: ignore[arg-type]
    _published(settings, report, "lines", wait, timeout)


@app.command()
def watch(
    folder: Annotated[
        Path | None, typer.Argument(help="Folder laid out as <source>/<entity>/<file> [env GRIDHUB_WATCH_DIR].")
    ] = None,
    data_dir: DataDir = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Ingest every export dropped into a folder until Ctrl-C (`gridhub up` does it when GRIDHUB_WATCH_DIR is set)."""
    from connectors.exports.watch import Outcome
    from gridhub.ingest import watch_folder

    settings = _settings(data_dir=data_dir, kafka_bootstrap=bootstrap)
    chosen = folder or settings.watch_dir
    if chosen is None:
        raise UsageError("name the folder to watch (gridhub watch DIR) or set GRIDHUB_WATCH_DIR")

    def show(outcome: Outcome) -> None:
        if outcome.status == "done" and outcome.report is not None:
            done = outcome.report
            console.print(f"{outcome.relative}: published {done.records} records as run {done.run_id}")
        elif outcome.status == "failed":
            errors.print(f"[red]refused[/red] {outcome.relative}: {outcome.reason} (moved to {outcome.location})")
        else:
            errors.print(f"[yellow]{outcome.status}[/yellow] {outcome.relative}: {outcome.reason}")

    console.print(f"watching {chosen.resolve()} for <source>/<entity>/<file>; Ctrl-C to stop")
    watch_folder(settings, chosen, show)


@app.command()
def pull(
    name: Annotated[str, typer.Argument(help="A source named in the GRIDHUB_REST_SOURCES file.")],
    wait: Wait = False,
    timeout: WaitTimeout = 600,
    data_dir: DataDir = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Pull every page of a department's REST API into the running hub, once."""
    from gridhub.ingest import pull_source

    settings = _settings(data_dir=data_dir, kafka_bootstrap=bootstrap)
    _published(settings, pull_source(settings, name), "records", wait, timeout)


@schemas_app.command("export")
def schemas_export(folder: Annotated[Path, typer.Argument(help="Where to write the JSON Schema files.")]) -> None:
    """Write one JSON Schema per record contract, for publishers."""
    from schemas.export import export_json_schemas

    for path in export_json_schemas(folder):
        console.print(f"wrote {path}")


@dispatch_app.command("listen")
def dispatch_listen(
    department: Annotated[
        str | None, typer.Option(help="The department, e.g. sanitation (a desk's token names its own).")
    ] = None,
    from_beginning: Annotated[bool, typer.Option(help="Also show orders this desk has already seen.")] = False,
    once: Annotated[bool, typer.Option(help="Show what is waiting, then exit.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Show the desk its new work orders as they arrive (as the desk of GRIDHUB_TOKEN)."""
    from gridhub.dispatch import listen

    def show(order: dict[str, Any]) -> None:
        work = order["work_order"]
        photos = ", ".join(work.get("photo_refs") or []) or "no photo"
        console.print(
            f"[bold]{work['event_id']}[/bold] {work.get('category_name') or work['category']} "
            f"at {work['lat']:.5f},{work['lon']:.5f} (grid {work.get('grid_code') or '?'}), "
            f"reported {work['reported_at']}; "
            f"handle within {order['limit_hours']:g} h\n  {work['description']} ({photos})"
        )

    settings = _settings(data_dir=data_dir)
    if not once:
        console.print(f"listening for {department or 'this desk'}'s work orders; Ctrl-C to stop")
    shown = listen(settings, department, show, from_beginning=from_beginning, once=once)
    if once:
        console.print(f"{shown} work order(s)")


@dispatch_app.command("update")
def dispatch_update(
    case_id: Annotated[str, typer.Argument(help="The case (event) id from the work order.")],
    status: Annotated[str, typer.Option(help="New status, e.g. in_handling, handled, returned.")],
    actor: Annotated[
        str | None, typer.Option(help="Who at the desk acts (default: the token's name); the token gives the role.")
    ] = None,
    note: Annotated[str | None, typer.Option(help="What was done or why.")] = None,
    photo: Annotated[Path | None, typer.Option(help="Photo of the result (JPEG, PNG or WebP).")] = None,
    department: Annotated[
        str | None, typer.Option(help="With --status dispatched (a commander's re-dispatch): to this department.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Post back what the desk did with a case (or, as a commander, re-dispatch, extend or cancel it)."""
    from gridhub.dispatch import post_update

    answer = post_update(_settings(data_dir=data_dir), case_id, status, actor, note, photo, department)
    photos = ", ".join(answer.get("photos") or [])
    console.print(f"update {answer['update_id']} accepted" + (f" with photo {photos}" if photos else ""))


@app.command()
def kpi(
    day: Annotated[
        str | None,
        typer.Option("--date", help="Asia/Shanghai day, YYYY-MM-DD (default: all; with --trend: its last day, today)."),
    ] = None,
    month: Annotated[str | None, typer.Option(help="Asia/Shanghai calendar month, YYYY-MM (not with --date).")] = None,
    by: Annotated[
        str | None,
        typer.Option(
            help="squad, department, grid or worker; --patrol: squad; --approvals: department, item or window; "
            "--enforcement: squad, officer or power."
        ),
    ] = None,
    patrol: Annotated[bool, typer.Option(help="Patrol compliance per worker (or squad) instead of case KPIs.")] = False,
    trend: Annotated[
        str | None, typer.Option(help="Case KPIs for each of the last N days (1-366) up to --date, every day shown.")
    ] = None,
    approvals: Annotated[
        bool, typer.Option(help="The service centre's applications: received, in progress, overdue, on time, online.")
    ] = False,
    enforcement: Annotated[
        bool, typer.Option(help="The enforcement bureau's cases: filed, decided on time, hours to decision, powers.")
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="table, csv or json.")] = "table",
    data_dir: DataDir = None,
) -> None:
    """The command centre's KPIs: case closure, on time, rework, time to close; patrols; approvals; enforcement."""
    from datetime import date, datetime

    from schemas import TOWN_TIMEZONE
    from warehouse.kpi import (
        APPROVAL_GROUPINGS,
        ENFORCEMENT_GROUPINGS,
        GROUPINGS,
        TREND_MAX_DAYS,
        approvals_kpi_sql,
        enforcement_kpi_sql,
        kpi_sql,
        kpi_trend_sql,
        parse_month,
        patrol_sql,
    )
    from warehouse.reader import query as run

    flags = (
        ("--patrol", patrol),
        ("--approvals", approvals),
        ("--enforcement", enforcement),
        ("--trend", trend is not None),
    )
    modes = [flag for flag, given in flags if given]
    if len(modes) > 1:
        raise UsageError(f"choose one of --patrol, --approvals, --enforcement and --trend, not {' and '.join(modes)}")
    if day is not None and month is not None:
        raise UsageError("give --date or --month, not both")
    try:
        chosen = date.fromisoformat(day) if day else None
    except ValueError as exc:
        raise UsageError(f"--date must look like 2026-11-25 ({exc})") from exc
    try:
        chosen_month = parse_month(month) if month is not None else None
    except ValueError:
        raise UsageError(f"--month must look like 2026-11, not {month!r}") from None
    mode = modes[0] if modes else None
    allowed = {
        "--patrol": ("squad",),
        "--approvals": APPROVAL_GROUPINGS,
        "--enforcement": ENFORCEMENT_GROUPINGS,
        "--trend": (),
    }.get(mode or "", GROUPINGS)
    if by is not None and not allowed:
        raise UsageError(f"--by is not for {mode} (it shows the whole town day by day)")
    if by is not None and by not in allowed:
        raise UsageError(f"--by{' with ' + mode if mode else ''} must be one of {', '.join(allowed)}, not {by!r}")
    if month is not None and mode in ("--patrol", "--trend"):
        raise UsageError(f"--month is not for {mode} (use --date)")

    when = f" on {day}" if day else f" in {month}" if month else ""
    if patrol:
        sql = patrol_sql(chosen, "squad" if by else None)
        title = f"patrol compliance{' by squad' if by else ''}{when}"
    elif approvals:
        sql = approvals_kpi_sql(chosen, chosen_month, by)  # type: ignore[arg-type]
        title = f"approvals{' by ' + by if by else ''}{when}"
    elif enforcement:
        sql = enforcement_kpi_sql(chosen, chosen_month, by)  # type: ignore[arg-type]
        title = f"enforcement cases{' by ' + by if by else ''}{when} (by day of filing)"
    elif trend is not None:
        days = int(trend) if trend.isascii() and trend.isdigit() else 0  # parsed here: one line, not a traceback
        if not 1 <= days <= TREND_MAX_DAYS:
            raise UsageError(f"--trend must be between 1 and {TREND_MAX_DAYS} days, not {trend!r}")
        end = chosen or datetime.now(TOWN_TIMEZONE).date()
        sql = kpi_trend_sql(end, days)
        title = f"case KPIs for the {days} day(s) up to {end.isoformat()}"
    else:
        sql = kpi_sql(by, chosen, chosen_month)  # type: ignore[arg-type]
        title = f"case KPIs{' by ' + by if by else ''}{when}"
    print_result(run(_settings(data_dir=data_dir), sql), output, title=title)


@app.command()
def show(
    kind: Annotated[str, typer.Argument(help="person, organisation, place, object, or event (a case's whole story).")],
    key: Annotated[
        str,
        typer.Argument(
            help="Resident ID, credit code, address, entity key, or a source's own id; for event a case or report id."
        ),
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    data_dir: DataDir = None,
) -> None:
    """Everything about one person, organisation, place or object, or one case's whole story (event)."""
    from dataclasses import asdict

    from warehouse.case_story import case_story
    from warehouse.profile import entity_profile

    if kind not in (*KINDS, "event"):
        raise UsageError(f"kind must be person, organisation, place, object or event, not {kind!r}")
    if output not in ("table", "json"):
        raise UsageError("--output must be table or json")
    settings = _settings(data_dir=data_dir)
    if kind == "event":
        story = case_story(settings, key)
        if output == "json":
            console.print_json(json.dumps(asdict(story), ensure_ascii=False, default=str))
            return
        console.print(f"[bold]case {story.case_id}[/bold]")
        sections = (
            ("the case as it stands", [story.case]),
            ("reports filed into it, first first", story.reports),
            ("its steps: who did what, when, against which deadline", story.steps),
            ("the people, organisations, objects and places it concerns", story.involved),
            ("enforcement cases the bureau opened for it", story.enforcement),
            ("lineage: the source record, run and Kafka message each row came from", story.lineage),
        )
    else:
        profile = entity_profile(settings, kind, key)
        if output == "json":
            console.print_json(json.dumps(asdict(profile), ensure_ascii=False, default=str))
            return
        console.print(f"[bold]{kind} {profile.key}[/bold]")
        sections = (
            ("golden record: field, value, the source it survived from, when", profile.lineage),
            ("source copies, how they matched, and the run and Kafka message each came from", profile.copies),
            ("versions of the golden record (gridhub sql: people_as_of(ts), ...)", profile.versions),
            ("links", profile.links),
            ("weak matches waiting for review", profile.reviews),
        )
    for title, rows in sections:
        if rows:
            print_result({"columns": list(rows[0]), "rows": [list(row.values()) for row in rows]}, title=title)


KINDS = ("person", "organisation", "place", "object")
Kind = Annotated[str, typer.Argument(help="person, organisation, place or object.")]
Source = Annotated[str, typer.Argument(help="The source of the copy, as listed.")]
RecordId = Annotated[str, typer.Argument(help="The copy's source record id, as listed.")]
DecidedBy = Annotated[str | None, typer.Option("--by", help="Who decides, for the record (default: the token's name).")]


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise UsageError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


@review_app.command("list")
def review_list(
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, csv or json.")] = "table",
    data_dir: DataDir = None,
) -> None:
    """Copies kept apart because their best match was not sure enough, with each candidate and its score."""
    from gridhub.review import pending_sql
    from warehouse.reader import query as run

    result = run(_settings(data_dir=data_dir), pending_sql(_kind(kind) if kind else None))
    print_result(result, output, title="weak matches waiting for review")


@review_app.command("merge")
def review_merge(
    kind: Kind, source: Source, record_id: RecordId,
    into: Annotated[str, typer.Argument(help="The entity key to merge the copy into.")],
    by: DecidedBy = None, data_dir: DataDir = None,
) -> None:  # fmt: skip
    """Merge a listed copy into an entity; the decision holds when the copy is sent again."""
    from gridhub.review import decide, decision

    settings = _settings(data_dir=data_dir)
    entity = decide(settings, decision(settings, _kind(kind), source, record_id, into, by))
    console.print(f"{source}/{record_id} now belongs to {kind} {entity}")


@review_app.command("separate")
def review_separate(
    kind: Kind, source: Source, record_id: RecordId, by: DecidedBy = None, data_dir: DataDir = None
) -> None:
    """Keep a listed copy as an entity of its own; it is not listed again."""
    from gridhub.review import decide, decision

    settings = _settings(data_dir=data_dir)
    entity = decide(settings, decision(settings, _kind(kind), source, record_id, None, by))
    console.print(f"{source}/{record_id} stays apart as {kind} {entity}")


@grid_app.command("load")
def grid_load(
    path: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection of grid cells.")],
    data_dir: DataDir = None,
) -> None:
    """Check a town's grid and install it as the grid every service places points with."""
    from collections import Counter

    from schemas.grid import Grid

    settings = _settings(data_dir=data_dir)
    grid = Grid.load(path)
    settings.installed_grid.parent.mkdir(parents=True, exist_ok=True)
    settings.installed_grid.write_text(json.dumps(grid.to_geojson(), ensure_ascii=False), encoding="utf-8")
    kinds = Counter(cell.kind for cell in grid.cells.values())
    squads = Counter(cell.squad for cell in grid.cells.values() if cell.kind == "basic")
    console.print(
        f"installed {len(grid.cells)} cells ({kinds['basic']} basic, {kinds['dedicated']} dedicated), "
        f"{len(grid.workers())} grid workers, {grid.area_km2():.2f} km², basic cells per squad: "
        + ", ".join(f"{name} {count}" for name, count in sorted(squads.items()))
    )
    console.print(f"-> {settings.installed_grid.resolve()}; running services use it from their next start")


@app.command("service", hidden=True)
def service(name: Annotated[str, typer.Argument(help="sink, worker, patrol, approvals, watch or pull.")]) -> None:
    """Run one service in this process (used by `gridhub up` and docker-compose)."""
    from gridhub.services import run

    run(_settings(), name)


COMMAND_PLUGINS = "gridhub.commands"
"""Entry-point group of applications that add commands: each entry is a function taking the Typer app."""


def add_plugin_commands(cli: typer.Typer) -> None:
    """Let every installed application add its commands (an application whose package is absent adds none).

    A deployment image ships the product alone, without the town simulation or the benchmark; their
    entry points then name packages that are not there, which is expected and only logged.
    """
    for entry in entry_points(group=COMMAND_PLUGINS):
        try:
            register = entry.load()
        except ModuleNotFoundError as exc:
            if exc.name != entry.module.split(".")[0]:
                raise
            log.debug("command plugin not installed", plugin=entry.name, module=entry.module)
            continue
        register(cli)


add_plugin_commands(app)


def main() -> None:
    """Run the CLI: a gridhub error becomes one readable line and exit code 2, Ctrl-C exit code 130."""
    import click
    from typer._click.exceptions import ClickException as TyperClickException

    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        code = 130
    except (click.ClickException, TyperClickException) as exc:
        # Typer parses with its own copy of click, whose errors (a bad option value) are not click's.
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except GridhubError as exc:
        from rich.markup import escape

        errors.print(f"[red]error:[/red] {escape(str(exc))}")
        raise SystemExit(2) from None
    if code == 130:
        errors.print("interrupted; everything it started has been stopped")
    if isinstance(code, int) and code:
        raise SystemExit(code)
