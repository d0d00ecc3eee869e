"""``gridhub demo``: the simulation's command, added to the ``gridhub`` command line as a plugin.

Registered through the ``gridhub.commands`` entry point in ``pyproject.toml``; the product's
command line finds it there and never imports the simulation itself.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gridhub.cli_common import Bootstrap, DataDir, command_settings, console


def demo(
    events: Annotated[int, typer.Option(help="Distinct incident reports in the simulated day.", min=1)] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the simulated day.")] = 20261125,
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
    """Run the hub and drive a simulated town day through it, then print a summary (and, with --serve, keep it up)."""
    from simulation.demo import run_demo

    settings = command_settings(data_dir=data_dir, kafka_bootstrap=bootstrap)
    run_demo(settings, events=events, seed=seed, console=console, serve=serve)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``gridhub`` command line."""
    app.command()(demo)
