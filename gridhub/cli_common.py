"""What every ``gridhub`` command shares: its options, how it reads settings, how it shows results.

The command-line application and the applications that add commands to it (the town simulation's
``demo``, the benchmark's ``bench``, through the ``gridhub.commands`` entry points) build on these
names, so an option reads the same and a table looks the same whichever package defines the command.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from foundation.errors import InputRejected
from foundation.logs import configure_logging
from foundation.settings import Settings, load_settings

if TYPE_CHECKING:
    from gridhub.supervisor import Stack

console = Console(soft_wrap=True)
"""Results and progress, on standard output."""
errors = Console(stderr=True, soft_wrap=True)
"""Problems, on standard error."""

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="State folder [env GRIDHUB_DATA_DIR].")]
Bootstrap = Annotated[
    str | None,
    typer.Option("--bootstrap", help="Kafka host:port; unset = embedded broker [env GRIDHUB_KAFKA_BOOTSTRAP]."),
]


class UsageError(InputRejected):
    """A command-line argument that cannot be used; shown as one line, no traceback."""

    reason_code = "bad_argument"


def command_settings(**overrides: object) -> Settings:
    """The settings of one command (flags win over the environment), with logging configured."""
    settings = load_settings(**overrides)
    configure_logging(settings)
    return settings


def print_result(result: dict[str, Any], output: str = "table", title: str | None = None) -> None:
    """Show query results (``columns`` and ``rows``) as a table, CSV or JSON."""
    if output == "json":
        console.print_json(
            json.dumps(
                [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]],
                ensure_ascii=False,
                default=str,
            )
        )
        return
    if output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result["columns"])
        writer.writerows(result["rows"])
        return
    table = Table(*result["columns"], title=title)
    for row in result["rows"]:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)
    if result.get("truncated"):
        limit = result.get("limits", {}).get("max_rows")
        errors.print(
            f"only the first {limit} rows are shown (GRIDHUB_SQL_MAX_ROWS); narrow the query or raise the limit"
        )


def stop_showing_progress(stack: Stack, what: str, hint: str = "", console: Console = console) -> None:
    """Stop a running hub as an operator sees it: the drain's progress, then one line on how it stopped."""
    with console.status("stopping: closing the doors...") as status:

        def show(left: int) -> None:
            status.update(f"stopping: {left} accepted messages still on their way to the warehouse{hint}")

        report = stack.stop(on_progress=show)
    console.print(report.describe(what, stack.settings), markup=False, highlight=False)
