"""``gridhub demo``: the simulation's command, added to the ``gridhub`` command line as a plugin.

Registered through the ``gridhub.commands`` entry point in ``pyproject.toml``; the product's
command line finds it there and never imports the simulation itself.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gridhub.cli_common import Bootstrap, DataDir, command_settings, console
from simulation.scale import DEMO_EVENTS, MAX_DAYS, YEAR_DAYS, YEAR_EVENTS


def demo(
    events: Annotated[
        int | None,
        typer.Option(
            help="Distinct incident reports in the simulated day, or a day of --days "
            f"(default {DEMO_EVENTS} for the one demo day, {YEAR_EVENTS} a day over several: the article's scale).",
            min=1,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated day.")] = 20261125,
    days: Annotated[
        int,
        typer.Option(
            help=f"Days to simulate, ending on the demo day; {YEAR_DAYS} is a year, which must end on the "
            "article's figures (more than 8,000 events, 99.1% closed).",
            min=1,
            max=MAX_DAYS,
        ),
    ] = 1,
    data_dir: DataDir = None,
    bootstrap: Bootstrap = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="After the day checks out, keep the hub and its screen running until Ctrl-C "
            "(the screen on GRIDHUB_SCREEN_PORT if set, else a free port).",
        ),
    ] = False,
) -> None:
    """Run the hub and drive a simulated town day (or days) through it, then print a summary (--serve: keep it up)."""
    from simulation.demo import run_demo

    settings = command_settings(data_dir=data_dir, kafka_bootstrap=bootstrap)
    if events is None:
        events = DEMO_EVENTS if days == 1 else YEAR_EVENTS
    run_demo(settings, events=events, seed=seed, console=console, serve=serve, days=days)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``gridhub`` command line."""
    app.command()(demo)
