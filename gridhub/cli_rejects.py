"""``gridhub rejects list|show|replay``: the records the hub refused, and sending them again once the cause is fixed.

A reject stays listed until a later outcome of its record closes it: the record landed (after a
replay or a corrected resend), or it was refused again, and then the new reject, with its new
reason, is the one listed. Listing and showing read the caller's view (personal data masked for
analysts and admins); a replay reads the payloads whole, so it is for admins and a source's own
publisher, and it is audited.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from gridhub.cli_common import DataDir, UsageError, console, print_result
from gridhub.cli_common import command_settings as _settings
from warehouse.rejects import RejectFilter, list_sql, show_sql, summary_sql

rejects_app = typer.Typer(help="Records the hub refused: list, show, send again.", no_args_is_help=True)

Source = Annotated[str | None, typer.Option("--source", help="Only this source's rejects.")]
Reason = Annotated[str | None, typer.Option("--reason", help="Only rejects with this reason code.")]
Stage = Annotated[
    str | None, typer.Option("--stage", help="Only rejects refused at this stage (validate, route, warehouse, ...).")
]
Output = Annotated[str, typer.Option("--output", "-o", help="table, csv or json.")]


def _output(output: str) -> str:
    if output not in ("table", "csv", "json"):
        raise UsageError("--output must be table, csv or json")
    return output


@rejects_app.command("list")
def rejects_list(
    source: Source = None,
    reason: Reason = None,
    stage: Stage = None,
    every: Annotated[bool, typer.Option("--all", help="Also the rejects a later outcome closed.")] = False,
    summary: Annotated[bool, typer.Option("--summary", help="Counts by source, entity, stage and reason.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rejects, newest first.", min=1)] = 50,
    output: Output = "table",
    data_dir: DataDir = None,
) -> None:
    """The open rejects (newest first; -o json or csv adds entity, stage, reason), or with --summary the counts."""
    from warehouse.reader import query

    which = RejectFilter(source, reason, stage, include_resolved=every)
    sql = summary_sql(which) if summary else list_sql(which, limit, brief=output == "table")
    print_result(query(_settings(data_dir=data_dir), sql), _output(output))


@rejects_app.command("show")
def rejects_show(
    record_uid: Annotated[str, typer.Argument(help="The reject's record_uid, as `gridhub rejects list` shows it.")],
    output: Output = "table",
    data_dir: DataDir = None,
) -> None:
    """One reject whole: its reason, the error, where its message sat, the payload, and what closed it."""
    from warehouse.reader import query

    result = query(_settings(data_dir=data_dir), show_sql(record_uid))
    if not result["rows"]:
        raise UsageError(f"no reject {record_uid}: `gridhub rejects list --all` lists them")
    if output != "table":
        print_result(result, _output(output))
        return
    for row in result["rows"]:
        facts = [
            [name, "" if value is None else str(value)] for name, value in zip(result["columns"], row, strict=True)
        ]
        print_result({"columns": ["field", "value"], "rows": facts}, title=f"reject {escape(record_uid)}")


@rejects_app.command("replay")
def rejects_replay(
    source: Source = None,
    reason: Reason = None,
    stage: Stage = None,
    limit: Annotated[int, typer.Option(help="At most this many rejects, oldest first.", min=1)] = 10_000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be sent; send nothing.")] = False,
    wait: Annotated[bool, typer.Option(help="Return when every replayed record is accounted for.")] = True,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits at most.")] = 300.0,
    data_dir: DataDir = None,
) -> None:
    """Send the open rejects through the whole pipeline again, after their mapping or catalogue is fixed."""
    from gridhub.ingest import wait_for_run
    from gridhub.reject_replay import replay
    from gridhub.running import hub_publisher
    from warehouse.reader import replayable_rejects

    settings = _settings(data_dir=data_dir)
    rejects = replayable_rejects(settings, RejectFilter(source, reason, stage), limit)
    if not rejects:
        console.print("no open rejects match; nothing to replay")
        return
    publisher = None if dry_run else hub_publisher(settings, "replay")
    try:
        report = replay(rejects, publisher, settings.approvals_mapping)
    finally:
        if publisher is not None:
            publisher.close()
    verb = "would send" if dry_run else "sent"
    console.print(
        f"{len(rejects)} open rejects: {verb} {report.sent} again, {report.refused_at_door} refused again at their "
        f"door (run {report.run_id})",
        markup=False,
        highlight=False,
    )
    for why, count in report.not_replayable.most_common():
        console.print(f"  {count} not replayable: {why}", markup=False, highlight=False)
    if wait and not dry_run and report.published:
        outcomes = wait_for_run(settings, report.run_id, report.published, timeout, console)
        print_result(outcomes, title=f"replayed records (run {report.run_id})")
        console.print("still refused: gridhub rejects list" + (f" --source {source}" if source else ""))
