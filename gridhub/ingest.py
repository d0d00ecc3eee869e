"""Department feeds into a running hub: ``gridhub ingest`` (one file), ``watch`` (a folder), ``pull`` (a REST API).

All three open their input with the department's column mapping (the ``--source``,
the source folder, or the REST source's ``source``) and publish it the same way.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from connectors.base import ConnectorError, RawPublisher
from connectors.exports import ExportConnector, ExportEntity, ExportFile, IngestReport
from connectors.exports.columns import load_mappings
from connectors.exports.rest import RestSource, load_rest_sources, pull
from connectors.exports.watch import FolderWatcher, Outcome
from foundation import runfiles
from foundation.settings import Settings
from warehouse.reader import query


def running_bootstrap(settings: Settings) -> str:
    """The configured Kafka address, or the one a local ``gridhub up`` announced."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    broker = runfiles.discover(settings, "broker")
    if broker is None:
        raise ConnectorError(
            f"no running gridhub found in {settings.data_dir}: start `gridhub up` first or set GRIDHUB_KAFKA_BOOTSTRAP"
        )
    return str(broker["bootstrap"])


def publish_export(
    publisher: RawPublisher, export: ExportFile, source: str, run_id: str, console: Console
) -> IngestReport:
    """Publish a checked export with a progress bar."""
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"publishing {export.path.name}", total=None)
        return ExportConnector(publisher, source).ingest(
            export, run_id, progress=lambda done: progress.update(task, completed=done)
        )


def open_export(
    settings: Settings, path: Path, source: str, entity: ExportEntity, sheet: str | None = None
) -> ExportFile:
    """Check an export file against the source's column mapping (or the standard headers)."""
    return ExportFile(path, entity, load_mappings(settings.export_mappings).columns_for(source, entity), sheet)


def ingest_file(
    settings: Settings,
    path: Path,
    source: str,
    entity: ExportEntity,
    run_id: str,
    console: Console,
    sheet: str | None = None,
) -> IngestReport:
    """Publish an export to the hub that runs on this data dir (or the configured cluster)."""
    export = open_export(settings, path, source, entity, sheet)
    publisher = RawPublisher(running_bootstrap(settings), "gridhub-ingest", settings.bulk_batch_rows)
    try:
        return publish_export(publisher, export, source, run_id, console)
    finally:
        publisher.close()


def watch_folder(
    settings: Settings, folder: Path, stop: threading.Event, on_outcome: Callable[[Outcome], None] | None = None
) -> None:
    """Ingest every export dropped into ``folder`` (as ``<source>/<entity>/<file>``) until ``stop`` is set."""
    publisher = RawPublisher(running_bootstrap(settings), "gridhub-watch", settings.bulk_batch_rows)

    def ingest(path: Path, source: str, entity: ExportEntity) -> IngestReport:
        export = open_export(settings, path, source, entity)
        return ExportConnector(publisher, source).ingest(export, uuid.uuid4().hex)

    try:
        FolderWatcher(folder, ingest, settings.watch_settle_seconds, on_outcome).run(stop)
    finally:
        publisher.close()


def rest_puller(settings: Settings, publisher: RawPublisher) -> Callable[[RestSource], IngestReport]:
    """A function doing one full pull of a source, with its department's column mapping, as a new run."""

    def pull_one(source: RestSource) -> IngestReport:
        columns = load_mappings(settings.export_mappings).columns_for(source.source_name, source.entity)
        return pull(publisher, source, columns, uuid.uuid4().hex)

    return pull_one


def pull_source(settings: Settings, name: str) -> IngestReport:
    """One full pull of the named REST source into the running hub."""
    source = load_rest_sources(settings.rest_sources).named(name)
    publisher = RawPublisher(running_bootstrap(settings), "gridhub-pull", settings.bulk_batch_rows)
    try:
        return rest_puller(settings, publisher)(source)
    finally:
        publisher.close()


def outcome_counts(settings: Settings, run_id: str | None = None) -> dict[str, Any]:
    """Intake outcomes (new, update, duplicate, rejected) of one run or of everything."""
    where = f"WHERE run_id = '{run_id}'" if run_id else ""
    return query(settings, f"SELECT outcome, count(*) AS records FROM intake {where} GROUP BY outcome ORDER BY 1")


def wait_for_run(settings: Settings, run_id: str, expected: int, timeout_s: float, console: Console) -> dict[str, Any]:
    """Wait until the warehouse accounts for ``expected`` records of the run; return their outcomes."""
    if not all(char in "0123456789abcdef" for char in run_id):
        raise ConnectorError("run ids are hexadecimal")
    deadline = time.monotonic() + timeout_s
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("waiting for the warehouse", total=expected)
        while True:
            counts = outcome_counts(settings, run_id)
            done = sum(row[1] for row in counts["rows"])
            progress.update(task, completed=done)
            if done >= expected:
                return counts
            if time.monotonic() > deadline:
                raise ConnectorError(
                    f"only {done} of {expected} records reached the warehouse within {timeout_s:.0f}s; "
                    "check that the worker and sink run (gridhub up) and their logs"
                )
            time.sleep(0.25)
