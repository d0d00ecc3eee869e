"""Entry points of the long-running services, one process each.

``gridhub up`` starts these as child processes and docker-compose runs each as
a container; both call ``gridhub service NAME``. Every service stops cleanly on
SIGTERM or SIGINT: it finishes the unit of work in hand (a batch, a request) and
exits, so nothing is left half-written.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Literal

from foundation import runfiles
from foundation.errors import ConfigurationError
from foundation.logs import get_logger
from foundation.settings import Settings
from gridhub.broker import ensure_topics, topic_ids

ServiceName = Literal["worker", "sink", "patrol", "approvals", "watch", "pull"]
SERVICES: tuple[ServiceName, ...] = ("sink", "worker", "patrol", "approvals")
log = get_logger(__name__)


class ServiceError(ConfigurationError):
    """A service cannot run with the configuration it was given."""


def _stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _stop_with_supervisor(settings: Settings) -> None:
    """Stop this service cleanly (SIGTERM to itself) if the `gridhub up` that started it dies.

    Without this, a supervisor killed hard would leave its services running, holding ports and
    the warehouse file.
    """
    supervisor = settings.supervisor_pid
    if supervisor is None:
        return

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(1)
        log.warning("gridhub up is gone; stopping", supervisor_pid=supervisor)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise ServiceError("set GRIDHUB_KAFKA_BOOTSTRAP to the Kafka address (gridhub up does this for you)")
    _stop_with_supervisor(settings)
    ensure_topics(settings, settings.kafka_bootstrap)
    return settings.kafka_bootstrap


def run_sink(settings: Settings) -> None:
    """The warehouse writer with its read-only SQL endpoint."""
    from schemas.approvals import load_catalogue
    from schemas.topics import sink_topics
    from warehouse.approvals import replace_approval_items
    from warehouse.contract import BatchContract
    from warehouse.query_server import QueryServer
    from warehouse.resolution import Resolver
    from warehouse.resolution_rules import ResolutionRules
    from warehouse.sink import Sink
    from warehouse.writer import WarehouseWriter, connect

    resolver = Resolver(ResolutionRules.load(settings.resolution_rules))
    catalogue = load_catalogue(settings.approval_items)
    bootstrap = _bootstrap(settings)
    stop = _stop_event()
    connection = connect(settings.warehouse_file, resolver)
    replace_approval_items(connection, catalogue)
    ids = topic_ids(bootstrap, list(sink_topics()))
    contract = BatchContract()
    sink = Sink(settings, bootstrap, WarehouseWriter(connection, resolver, contract.table_violations), contract, ids)
    server = QueryServer(connection, settings.sink_query_host, settings.sink_query_port)
    url = server.start()
    runfiles.announce(settings, "sink", url=url, warehouse=str(settings.warehouse_file.resolve()))
    try:
        sink.run(stop)
    finally:
        runfiles.withdraw(settings, "sink")
        server.stop()
        connection.close()


def run_worker(settings: Settings) -> None:
    """The Faust worker with the integrate agent."""
    import faust

    from streams.app import build_app

    bootstrap = _bootstrap(settings)
    app = build_app(settings, bootstrap)

    class AnnouncingWorker(faust.Worker):
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            runfiles.announce(settings, "worker", bootstrap=bootstrap)

    # override_logging=False keeps gridhub's own logging (configure_logging, already run): left to
    # itself, Faust reconfigures the root logger and, for its console spinner, sets it to DEBUG, so
    # faust and aiokafka built a debug LogRecord for every message sent only for the handler to drop it.
    worker = AnnouncingWorker(app, quiet=True, redirect_stdouts=False, override_logging=False)
    try:
        worker.execute_from_commandline()
    finally:
        runfiles.withdraw(settings, "worker")


def run_patrol(settings: Settings) -> None:
    """The patrol devices' HTTP gateway."""
    from aiohttp import web

    from connectors.base import RawPublisher
    from connectors.case_view import CaseView
    from connectors.patrol_http import Limits, PatrolGateway
    from connectors.photos import PhotoStore
    from schemas.grid import Grid
    from streams.lifecycle import load_flow
    from streams.routing import load_rules

    bootstrap = _bootstrap(settings)
    publisher = RawPublisher(bootstrap, client_id="gridhub-patrol")
    cases = CaseView(bootstrap, load_flow())
    cases.start()
    gateway = PatrolGateway(
        publisher,
        load_rules(settings.routing_rules),
        Grid.load(settings.grid_path),
        PhotoStore(settings.photo_store, settings.max_photo_bytes),
        Limits(settings.max_report_bytes, settings.max_photos, settings.max_track_points),
        cases,
    )

    async def serve() -> None:
        runner = web.AppRunner(gateway.application(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        port = runner.addresses[0][1]
        runfiles.announce(settings, "patrol", url=f"http://{settings.http_host}:{port}")
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopped.set)
        await stopped.wait()
        runfiles.withdraw(settings, "patrol")
        await runner.cleanup()

    try:
        asyncio.run(serve())
    finally:
        cases.stop()
        publisher.close()


def run_approvals(settings: Settings) -> None:
    """The approval system's SQL poller."""
    from connectors.approvals_mapping import load_mapping
    from connectors.approvals_sql import ApprovalsConnector
    from connectors.base import RawPublisher
    from schemas.topics import RAW_APPROVALS

    mapping = load_mapping(settings.approvals_mapping)
    bootstrap = _bootstrap(settings)
    stop = _stop_event()
    publisher = RawPublisher(bootstrap, client_id="gridhub-approvals")
    connector = ApprovalsConnector(publisher, settings, mapping, topic_ids(bootstrap, [RAW_APPROVALS])[RAW_APPROVALS])
    try:
        connector.prepare()
        runfiles.announce(settings, "approvals", table=mapping.qualified_table)
        connector.run(stop)
    finally:
        runfiles.withdraw(settings, "approvals")
        publisher.close()


def run_watch(settings: Settings) -> None:
    """The watched export folder (GRIDHUB_WATCH_DIR)."""
    from gridhub.ingest import watch_folder

    if settings.watch_dir is None:
        raise ServiceError("set GRIDHUB_WATCH_DIR to the folder departments drop their exports into")
    _bootstrap(settings)
    stop = _stop_event()
    runfiles.announce(settings, "watch", folder=str(settings.watch_dir.resolve()))
    try:
        watch_folder(settings, settings.watch_dir, stop)
    finally:
        runfiles.withdraw(settings, "watch")


def run_pull(settings: Settings) -> None:
    """Periodic full pulls of the department REST APIs in GRIDHUB_REST_SOURCES."""
    from connectors.base import RawPublisher
    from connectors.exports.rest import load_rest_sources, pull_periodically
    from gridhub.ingest import rest_puller

    sources = load_rest_sources(settings.rest_sources).sources
    bootstrap = _bootstrap(settings)
    stop = _stop_event()
    publisher = RawPublisher(bootstrap, "gridhub-pull", settings.bulk_batch_rows)
    runfiles.announce(settings, "pull", sources=[source.name for source in sources])
    try:
        pull_periodically(sources, rest_puller(settings, publisher), stop)
    finally:
        runfiles.withdraw(settings, "pull")
        publisher.close()


def enabled_services(settings: Settings) -> tuple[ServiceName, ...]:
    """What `gridhub up` runs: the core services, plus the department feeds that are configured."""
    feeds: dict[ServiceName, object] = {"watch": settings.watch_dir, "pull": settings.rest_sources}
    return SERVICES + tuple(name for name, setting in feeds.items() if setting)


RUNNERS: dict[ServiceName, Callable[[Settings], None]] = {
    "sink": run_sink,
    "worker": run_worker,
    "patrol": run_patrol,
    "approvals": run_approvals,
    "watch": run_watch,
    "pull": run_pull,
}
