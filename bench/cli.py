"""``gridhub bench``: the benchmark's command, added to the ``gridhub`` command line as a plugin.

Registered through the ``gridhub.commands`` entry point in ``pyproject.toml``; the product's
command line finds it there and never imports the benchmark itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridhub.cli_common import DataDir, UsageError, command_settings, console


def bench(
    scenario: Annotated[
        str, typer.Option(help="bulk, incidents, resync, scale-out or all; or screen (a year of data, alone).")
    ] = "all",
    records: Annotated[int, typer.Option(help="Rows of the person export (bulk, resync, scale-out).", min=100)] = (
        1_000_000
    ),
    output: Annotated[Path | None, typer.Option(help="JSON results (default: DATA_DIR/bench/results.json).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Measure throughput, latency and memory on throwaway hubs (embedded broker); goals of issue 5."""
    from bench.runner import SCENARIOS, SEPARATE, run_bench

    if scenario != "all" and scenario not in {**SCENARIOS, **SEPARATE}:
        raise UsageError(f"--scenario must be all or one of {', '.join([*SCENARIOS, *SEPARATE])}, not {scenario!r}")
    settings = command_settings(data_dir=data_dir)
    run_bench(settings, scenario, records, output or settings.data_dir / "bench" / "results.json", console)


def register(app: typer.Typer) -> None:
    """Add ``bench`` to the ``gridhub`` command line."""
    app.command()(bench)
