"""Department feeds into a running hub: ``gridhub ingest`` (one file), ``watch`` (a folder), ``pull`` (a REST API).

All three open their input with the department's column mapping (the ``--source``,
the source folder, or the REST source's ``source``) and publish it through the same
:class:`~connectors.exports.ExportPublisher`; the folder and the API are the connectors
the services run, driven here in the foreground.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from connectors.exports import ExportEntity, ExportFile, ExportPublisher, IngestReport
from connectors.exports.columns import load_mappings
from connectors.exports.rest import RestPoller, load_rest_sources
from connectors.exports.watch import Outcome, WatchedFolder
from connectors.publisher import RawPublisher
from foundation.access import require_role, require_source
from foundation.errors import RetryableError
from foundation.service import stop_on_signals
from foundation.settings import Settings
from gridhub.cli_common import UsageError
from gridhub.running import hub_publisher
from schemas.runs import RunNotice
from warehouse.reader import intake, whoami


@contextmanager
def _progress_bar(console: Console, name: str) -> Iterator[Callable[[int], None]]:
    """A progress bar for publishing ``name``, as the callback that moves it."""
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"publishing {name}", total=None)
        yield lambda done: progress.update(task, completed=done)


def publish_export(
    publisher: RawPublisher, export: ExportFile, source: str, run_id: str, console: Console
) -> IngestReport:
    """Publish a checked export with a progress bar."""
    with _progress_bar(console, export.path.name) as progress:
        return ExportPublisher(publisher, source).publish(export, run_id, progress)


def ingest_file(
    settings: Settings,
    path: Path,
    source: str,
    entity: ExportEntity,
    run_id: str,
    console: Console,
    sheet: str | None = None,
) -> IngestReport:
    """Check an export against the source's column mapping, then publish it to the running hub, as one ingest run.

    The file is opened inside the run, so an export refused as a whole is a failed run in ``gridhub runs``.
    """
    caller = whoami(settings)
    require_source(caller, source)
    columns = load_mappings(settings.export_mappings).columns_for(source, entity)
    publisher = hub_publisher(settings, "ingest")
    run = RunNotice.begin("ingest", source, entity, path.name, caller.name, run_id)
    try:
        with _progress_bar(console, path.name) as progress:
            return ExportPublisher(publisher, source).publish_run(
                run, lambda: ExportFile(path, entity, columns, sheet), progress
            )
    finally:
        publisher.close()


def watch_folder(settings: Settings, folder: Path, on_outcome: Callable[[Outcome], None]) -> None:
    """Publish every export dropped into ``folder`` (as ``<source>/<entity>/<file>``) until Ctrl-C.

    Ctrl-C lets the file in hand finish (or stay claimed, if the broker is away) before the watcher stops.
    """
    caller = whoami(settings)
    require_role(caller, "admin")
    publisher = hub_publisher(settings, "watch")
    watcher = WatchedFolder(
        publisher, folder, settings.export_mappings, settings.watch_settle_seconds, on_outcome, started_by=caller.name
    )
    stop = stop_on_signals()
    try:
        watcher.prepare()
        watcher.run(stop)
    finally:
        watcher.close()


def pull_source(settings: Settings, name: str) -> IngestReport:
    """One full pull of the named REST source into the running hub."""
    source = load_rest_sources(settings.rest_sources).named(name)
    caller = whoami(settings)
    require_source(caller, source.source_name)
    poller = RestPoller(hub_publisher(settings, "pull"), [source], settings.export_mappings, started_by=caller.name)
    try:
        return poller.pull(source)
    finally:
        poller.close()


def wait_for_run(settings: Settings, run_id: str, expected: int, timeout_s: float, console: Console) -> dict[str, Any]:
    """Wait until the warehouse accounts for ``expected`` records of the run; return their outcomes."""
    if not all(char in "0123456789abcdef" for char in run_id):
        raise UsageError("run ids are hexadecimal")
    deadline = time.monotonic() + timeout_s
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("waiting for the warehouse", total=expected)
        done = 0
        while True:
            try:
                counts = intake(settings, run_id)
            except RetryableError:
                progress.update(task, description="waiting for the warehouse (the sink is restarting)")
            else:
                done = sum(row[1] for row in counts["rows"])
                progress.update(task, completed=done, description="waiting for the warehouse")
                if done >= expected:
                    return counts
            if time.monotonic() > deadline:
                raise RetryableError(
                    f"only {done} of {expected} records reached the warehouse within {timeout_s:.0f}s; they are "
                    "kept and still on their way: check that gridhub up runs and read its logs"
                )
            time.sleep(0.25)
