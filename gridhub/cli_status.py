"""``gridhub status``: every service, the lag of every consumer, and how long the oldest record has waited."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gridhub.cli_common import DataDir, UsageError, console, errors, print_result
from gridhub.cli_common import command_settings as _settings


def status(
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    data_dir: DataDir = None,
) -> None:
    """Show whether the hub keeps up: services (up, pid, restarts, last error), consumer lag, oldest waiting record.

    The sink's positions are read with GRIDHUB_TOKEN (an admin's, commander's or analyst's).
    Exits 1 when nothing runs on the data dir.
    """
    from gridhub.status import as_json, consumer_table, hub_status, service_table

    if output not in ("table", "json"):
        raise UsageError("--output must be table or json")
    settings = _settings(data_dir=data_dir)
    found = hub_status(settings)
    if found is None:
        errors.print(f"gridhub is not running on {settings.data_dir.resolve()}", markup=False, highlight=False)
        raise typer.Exit(1)
    if output == "json":
        console.print_json(json.dumps(as_json(found), ensure_ascii=False))
        return
    supervisor = f"gridhub up (pid {found.supervisor_pid})" if found.supervisor_pid else "no supervisor"
    print_result(service_table(found), title=f"services on {found.data_dir}, {supervisor}")
    print_result(consumer_table(found), title="consumers")
    for problem in found.problems:
        errors.print(f"[yellow]could not read[/yellow] {problem}", highlight=False)
