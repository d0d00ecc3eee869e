"""``gridhub runs [RUN]``: every ingest, watched file, REST pull and approvals poll, and what became of it.

The run ledger (``warehouse/runs.sql``) holds what each door announced of its runs; the intake
ledger what became of each of their records. A publisher's token sees its own source's runs;
analysts, commanders and admins see all, personal data masked as everywhere else.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from gridhub.cli_common import DataDir, UsageError, console, print_result
from gridhub.cli_common import command_settings as _settings

OUTCOMES = ("new", "updated", "duplicate", "rejected")
LISTED = ("run_id", "kind", "source", "origin", "started_at", "status", *OUTCOMES)
"""The columns of the list; ``-o json`` and one run show them all."""
FACTS = (
    "kind", "source", "entity", "origin", "started_by", "started_at", "ended_at", "status", "published", "refused",
    "landed_at", "error",
)  # fmt: skip
TIMES = frozenset({"started_at", "ended_at", "landed_at"})


def _shown(column: str, value: Any) -> Any:
    """A value as a table shows it: times to the second, in town time as the warehouse answered them."""
    if column in TIMES and isinstance(value, str):
        return value[:19].replace("T", " ")
    return value


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...], title: str) -> None:
    print_result(
        {"columns": list(columns), "rows": [[_shown(name, row[name]) for name in columns] for row in rows]},
        title=title,
    )


def _show_run(run: dict[str, Any], rejects: list[dict[str, Any]]) -> None:
    """One run in full: its facts, its records by outcome, its rejects by reason and where to read them."""
    what = escape(f"{run['kind']} of {run['origin'] or run['source']}, {run['status']}")
    console.print(f"[bold]run {run['run_id']}[/bold]: {what}")
    _table([{"fact": name, "value": _shown(name, run[name])} for name in FACTS], ("fact", "value"), "the run")
    expected = None if run["published"] is None else run["published"] + run["refused"]
    outcomes = [{"outcome": name, "records": run[name]} for name in OUTCOMES]
    waiting = f", {run['accounted']} of {expected} accounted for so far" if run["status"] == "published" else ""
    _table(outcomes, ("outcome", "records"), f"its records by outcome{waiting}")
    if rejects:
        _table(rejects, ("reason_code", "records", "example"), "rejected, by reason (one example each)")
        first = rejects[0]["reason_code"]
        console.print(
            f"to see them: gridhub rejects list --source {run['source']} --reason REASON (e.g. --reason {first})",
            markup=False,
            highlight=False,
        )


def runs(
    run: Annotated[str | None, typer.Argument(help="A run id, as ingest printed it or the list shows it.")] = None,
    limit: Annotated[int, typer.Option(help="The latest this many runs.")] = 20,
    source: Annotated[str | None, typer.Option(help="Only this source's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs running, published, complete or failed.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    data_dir: DataDir = None,
) -> None:
    """Every ingest, watched file, pull and approvals poll, newest first; or one run in full, with its rejects."""
    from warehouse.reader import runs as read_runs
    from warehouse.runs import RunQuery

    if output not in ("table", "json"):
        raise UsageError("--output must be table or json")
    query = RunQuery(run, source, status, 1 if run else limit)
    found = read_runs(_settings(data_dir=data_dir), query)
    rows = [dict(zip(found["columns"], row, strict=True)) for row in found["rows"]]
    if run is None:
        if output == "json":
            console.print_json(json.dumps(rows, ensure_ascii=False))
        else:
            _table(rows, LISTED, "runs, newest first")
        return
    if not rows:
        raise UsageError(f"no run {run} that this token may see; `gridhub runs` lists the latest")
    rejects = [dict(zip(found["rejects"]["columns"], row, strict=True)) for row in found["rejects"]["rows"]]
    if output == "json":
        console.print_json(json.dumps({"run": rows[0], "rejects": rejects}, ensure_ascii=False))
    else:
        _show_run(rows[0], rejects)
