"""``gridhub check`` and ``gridhub test``: prove a department's column mapping on its real exports before go-live.

Both read files on this machine and publish nothing, so they need no running hub and no token:
they read no warehouse data, and what they show is what the file the operator already holds says.
The values they print (resident IDs included) go to this terminal only; nothing is logged or kept.

The readers and the worker's models are imported inside the commands, so ``gridhub --help`` and
every other command start without them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gridhub.cli_common import DataDir, UsageError, command_settings, console

if TYPE_CHECKING:
    from gridhub.mapping_check import MappingCheck, RowResult

TABLE_ROWS = 1000
"""Rows the table lists at most; the counts cover every row, and ``-o json`` lists them all."""

STATELESS = (
    "Each row is judged on its own (stateless): what depends on what the hub already holds is not shown "
    "(a resend counted as a duplicate or an update, a report joining an open case nearby, entity resolution)."
)


def check(
    path: Annotated[Path, typer.Argument(help="The export: CSV (UTF-8 or GBK), JSON Lines, XLSX or Parquet.")],
    source: Annotated[str, typer.Option(help="The publishing department, e.g. civil-affairs: picks the mapping.")],
    entity: Annotated[
        str, typer.Option(help="person, organisation, place, object, event (incidents) or enforcement_case.")
    ],
    sheet: Annotated[
        str | None, typer.Option(help="Worksheet of an .xlsx export (default: the source's mapping, else the first).")
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="table, or json (one document, for scripts).")
    ] = "table",
    rejects_only: Annotated[bool, typer.Option("--rejects-only", help="List only the rejected rows.")] = False,
    mappings: Annotated[
        Path | None,
        typer.Option(help="The mappings file to check with (default: GRIDHUB_EXPORT_MAPPINGS, else the packaged one)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Show what each row of an export becomes, without publishing it: its canonical record, or its reject.

    The file is read and mapped as `gridhub ingest` reads it, and each row judged as the worker judges
    it (the same normalisation, routing table, grid, approval catalogue and enforcement bureau), then
    the headers the mapping ignores and the fields left empty are listed. Nothing is sent to Kafka and
    no hub needs to run; it needs no token, since it reads no warehouse data and publishes nothing.
    Each row is judged on its own (stateless): duplicates of earlier records, reports joining an open
    case and entity resolution depend on what the hub holds and are not shown.

    Exit code 0 when every row passes, 1 when some row is rejected, 2 when the file cannot be checked
    (unreadable, a required column missing, an unknown source or entity).
    """
    from gridhub.mapping_check import open_check  # the readers and the worker's models: only when checking

    if output not in ("table", "json"):
        raise UsageError("--output must be table or json")
    settings = command_settings(data_dir=data_dir, export_mappings=mappings)
    checked = open_check(settings, path, source, entity, sheet)
    if output == "json":
        _write_json(checked, rejects_only)
    else:
        _print_table(checked, rejects_only)
    if checked.tally.rejected:
        raise typer.Exit(1)


def _listed(checked: MappingCheck, rejects_only: bool) -> Iterator[RowResult]:
    return (row for row in checked.results() if not rejects_only or row.reject is not None)


def _write_json(checked: MappingCheck, rejects_only: bool) -> None:
    """One JSON document: the heading, ``rows`` (:meth:`RowResult.to_json`), then the summary known once every row
    is judged; written row by row, so a file of a million rows needs no more memory than one."""
    out = sys.stdout
    out.write(json.dumps(checked.heading(), ensure_ascii=False)[:-1] + ', "rows": [')
    for index, row in enumerate(_listed(checked, rejects_only)):
        out.write(("" if index == 0 else ", ") + json.dumps(row.to_json(), ensure_ascii=False))
    out.write("], " + json.dumps(checked.summary(), ensure_ascii=False)[1:] + "\n")


def _cell(row: RowResult, fields: Iterable[str]) -> Text:
    """A reject's reason, or the record's filled fields (not the ones computed from them, as address_norm)."""
    if row.reject is not None:
        return Text(row.reject.reason)
    assert row.record is not None
    filled = ((name, row.record.get(name)) for name in fields)
    text = "  ".join(f"{name}={value}" for name, value in filled if value not in (None, "", []))
    if row.desk is not None:
        text += f"  → desk {row.desk}" + (" after a check on site" if row.verify_on_site else "")
    return Text(text)


def _print_table(checked: MappingCheck, rejects_only: bool) -> None:
    from schemas.records import CANONICAL_MODELS

    console.print(f"[bold]{escape(str(checked.export.path))}[/bold]: {checked.source} {checked.entity}")
    console.print(f"mapping: {escape(checked.mapping)}")
    console.print(STATELESS, style="dim", highlight=False)
    table = Table("row", "outcome", "record id / reason code")
    table.add_column("record / reason", overflow="fold")
    fields = list(CANONICAL_MODELS[checked.entity].model_fields)
    left_out = 0
    for row in _listed(checked, rejects_only):
        if table.row_count >= TABLE_ROWS:
            left_out += 1
            continue
        code = row.reject.reason_code if row.reject is not None else row.source_record_id
        outcome = Text(row.outcome, style="green" if row.record is not None else "red")
        table.add_row(str(row.row), outcome, Text(code), _cell(row, fields))
    console.print(table)
    if left_out:
        console.print(f"{left_out} more rows not listed: --rejects-only lists the rejected ones, -o json all of them")
    ignored = checked.ignored_headers
    console.print(f"ignored headers: {escape(', '.join(ignored)) if ignored else 'none'}")
    tally = checked.tally
    empty = ", ".join(f"{name} {count}" for name, count in tally.empty_fields.items())
    console.print(f"fields left empty (in how many of the {tally.accepted} records): {empty or 'none'}")
    console.print(tally.describe(), style="red" if tally.rejected else "green", highlight=False)


def run_tests(
    folder: Annotated[Path, typer.Argument(help="A case folder (holding a case.yaml) or a folder of them.")],
    data_dir: DataDir = None,
) -> None:
    """Run mapping cases: each export through `gridhub check`'s code, compared with what its case.yaml expects.

    A case is a folder with the department's export and a case.yaml naming the file, its source
    and entity, the records expected by row (a subset of their fields) and every reject by row
    (its reason code); any row not listed as a reject must pass. See gridhub/mapping_cases.py and
    tests/mapping_cases/. Each row is judged on its own (stateless), as `gridhub check` judges it;
    nothing is published and no token is needed.

    Exit code 0 when every case passes, 1 when one fails, 2 when there are no cases to run.
    """
    from gridhub.mapping_cases import discover, run_case
    from streams.normalise import ReferenceData

    settings = command_settings(data_dir=data_dir)
    folders = discover(folder)
    reference = ReferenceData.load(settings)
    failed = 0
    for case in folders:
        name = case.relative_to(folder).as_posix() if case != folder else case.name
        result = run_case(case, settings, reference, name)
        mark = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
        console.print(f"{mark} {escape(result.name)}: {escape(result.summary or 'not checked')}")
        for problem in result.problems:
            console.print(f"     {escape(problem)}", highlight=False)
        failed += not result.passed
    passed = len(folders) - failed
    console.print(f"{len(folders)} cases: {passed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)
