"""``gridhub quality``: what the warehouse contract found in the batches it checked.

Any role that may query the warehouse may write the report; it reads as that role reads (an
analyst's report is built from the masked views), with or without a running hub.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from gridhub.cli_common import DataDir, UsageError, console
from gridhub.cli_common import command_settings as _settings

quality_app = typer.Typer(help="Data quality: the warehouse contract's checks of every batch.", no_args_is_help=True)

MAX_DAYS = 3660
"""The longest --days: ten years, so a typo cannot ask for a century."""


def _since(since: str | None, days: int | None, today: date) -> date | None:
    """The first Asia/Shanghai day the report covers: --since, --days back from today, or None for all."""
    if since is not None and days is not None:
        raise UsageError("give --since or --days, not both")
    if days is not None:
        return today - timedelta(days=days - 1)
    if since is None:
        return None
    try:
        return date.fromisoformat(since)
    except ValueError:
        raise UsageError(f"--since must be a day such as 2026-11-25, not {since!r}") from None


@quality_app.command("report")
def report(
    directory: Annotated[Path, typer.Argument(help="Folder for index.html and its data (made if missing).")],
    since: Annotated[
        str | None, typer.Option(help="Only batches checked on or after this day, e.g. 2026-11-01.")
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="Only batches checked in the last N days, today included.", min=1, max=MAX_DAYS)
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write a static page (open it offline) of the kept validations: expectations per table, failures per day,
    the worst sources, the latest failures; with the same data as JSON and CSV beside it."""
    from gridhub.quality_report import write_report
    from schemas import TOWN_TIMEZONE
    from warehouse.quality_report import gather

    now = datetime.now(TOWN_TIMEZONE)
    first_day = _since(since, days, now.date())
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file; name a folder for the report")
    found = gather(_settings(data_dir=data_dir), first_day, now)
    try:
        page = write_report(directory, found)
    except OSError as exc:
        raise UsageError(
            f"cannot write the report into {directory} ({exc.strerror or exc}); name a folder you may write"
        ) from None
    console.print(f"quality report written to {page.resolve()} (open it in a browser; data beside it)")
