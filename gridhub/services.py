"""The long-running services, one process each, and how each is built from the settings.

``gridhub up`` starts these as child processes and docker-compose runs each as a container;
both call ``gridhub service NAME``, which lands in :func:`run`. Every connector and the sink
run through the one lifecycle of :func:`foundation.service.run_service` (prepare, announce,
run until SIGTERM or Ctrl-C, withdraw, close); the Faust worker keeps Faust's own, which
handles its signals and tells when it is ready.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from connectors.publisher import RawPublisher
from foundation import runfiles
from foundation.errors import ConfigurationError
from foundation.kafka_security import kafka_python_options
from foundation.logs import get_logger
from foundation.ops_http import Check, ops_endpoint
from foundation.service import Service, run_service, stop_with_supervisor
from foundation.settings import Settings
from gridhub.broker import ensure_topics, topic_ids

if TYPE_CHECKING:
    import duckdb

    from warehouse.sink import Sink

ServiceName = Literal["worker", "sink", "patrol", "approvals", "screen", "watch", "pull"]
SERVICES: tuple[ServiceName, ...] = ("sink", "worker", "patrol", "approvals", "screen")
"""The services `gridhub up` always starts (in this order) and docker-compose always runs, each as its own container."""
FEEDS: tuple[ServiceName, ...] = ("watch", "pull")
"""The department feeds, run where a town configures them (`GRIDHUB_WATCH_DIR`, `GRIDHUB_REST_SOURCES`)."""
log = get_logger(__name__)


def ops_port(settings: Settings, name: ServiceName) -> int:
    """The ops port ``gridhub up`` gives a service: 0 stays any free port; a fixed one is the first of a range.

    All services of one ``gridhub up`` share the machine, so with ``GRIDHUB_OPS_PORT=9400`` the
    worker listens on 9400, the sink on 9401, and so on in the order of :data:`ServiceName`.
    """
    return settings.ops_port and settings.ops_port + get_args(ServiceName).index(name)


class ServiceError(ConfigurationError):
    """A service cannot run with the configuration it was given."""


def _bootstrap(settings: Settings) -> str:
    """The Kafka address, with every topic created, for a service started by ``gridhub up`` or docker-compose."""
    if not settings.kafka_bootstrap:
        raise ServiceError("set GRIDHUB_KAFKA_BOOTSTRAP to the Kafka address (gridhub up does this for you)")
    ensure_topics(settings, settings.kafka_bootstrap)
    return settings.kafka_bootstrap


def _publisher(settings: Settings, bootstrap: str, name: str) -> RawPublisher:
    return RawPublisher.for_door(settings, bootstrap, name)


class SinkService(Service):
    """The warehouse writer with its read-only SQL endpoint: the only process that opens the warehouse file."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        from schemas.approvals import load_catalogue
        from schemas.enforcement import load_bureau
        from schemas.grid import Grid
        from schemas.working_time import load_calendar
        from warehouse.resolution import Resolver
        from warehouse.resolution_rules import ResolutionRules

        self.settings = settings
        self.bootstrap = bootstrap
        self.resolver = Resolver(ResolutionRules.load(settings.resolution_rules))
        self.catalogue = load_catalogue(settings.approval_items)
        self.grid = Grid.load(settings.grid_path)
        self.bureau = load_bureau(settings.enforcement)
        self.calendar = load_calendar(settings.holidays)
        self._close: list[Callable[[], None]] = []
        self.connection: duckdb.DuckDBPyConnection | None = None
        self.sink: Sink | None = None

    def health_checks(self) -> dict[str, Check]:
        """The warehouse answers a query and, if the sink is waiting for it, can be written again."""
        return {"warehouse": self._warehouse_answers}

    def _warehouse_answers(self) -> None:
        if self.connection is None or self.sink is None:
            raise RuntimeError("the warehouse is not open yet")
        cursor = self.connection.cursor()
        try:
            cursor.execute("SELECT count(*) FROM sink_offsets").fetchone()
        finally:
            cursor.close()
        if self.sink.isolating.unwritable:
            raise RuntimeError(f"the warehouse cannot be written now ({self.sink.isolating.unwritable})")

    def prepare(self) -> dict[str, Any]:
        """Open the warehouse, load the catalogue, the grid and the bureau, start the SQL endpoint; announce its URL."""
        from foundation.access import doorkeeper_of
        from schemas.topics import sink_topics
        from warehouse.approvals import replace_approval_items
        from warehouse.audit import ensure_audit_table
        from warehouse.calendar_days import replace_calendar_days
        from warehouse.contract import BatchContract
        from warehouse.enforcement import replace_bureau
        from warehouse.grid_cells import replace_grid_cells
        from warehouse.journal_keeper import JournalKeeper
        from warehouse.quality import replace_expectations
        from warehouse.query_server import QueryLimits, QueryServer
        from warehouse.sink import Sink
        from warehouse.sql_guard import close_to_the_host
        from warehouse.writer import WarehouseWriter, connect

        settings = self.settings
        connection = connect(settings.warehouse_file, self.resolver)
        self._close.append(connection.close)
        self.connection = connection
        replace_approval_items(connection, self.catalogue)
        replace_grid_cells(connection, self.grid)
        replace_bureau(connection, self.bureau)
        replace_calendar_days(connection, self.calendar)
        ensure_audit_table(connection)
        contract = BatchContract()
        replace_expectations(connection, contract.expectations())
        writer = WarehouseWriter(connection, self.resolver, contract.table_violations)
        ids = topic_ids(self.bootstrap, list(sink_topics()), kafka_python_options(settings))
        self.sink = Sink(settings, self.bootstrap, writer, contract, ids)
        close_to_the_host(connection)
        QueryLimits.of(settings).apply(connection)
        server = QueryServer(
            connection,
            settings.sink_query_host,
            settings.sink_query_port,
            QueryLimits.of(settings),
            doorkeeper_of(settings),
        )
        url = server.start()
        self._close.insert(0, server.stop)
        keeper = JournalKeeper(connection, settings.journal_dir, settings.journal_check_seconds)
        keeper.start()
        self._close.insert(0, keeper.stop)
        return {"url": url, "warehouse": str(settings.warehouse_file.resolve())}

    def run(self, stop: threading.Event) -> None:
        """Write batches until stopped; the batch in hand is finished first."""
        self.sink.run(stop)

    def close(self) -> None:
        """Stop the SQL endpoint, then close the warehouse."""
        for release in self._close:
            release()


def build_patrol(settings: Settings, bootstrap: str) -> Service:
    """The patrol devices' HTTP gateway."""
    from connectors.case_view import CaseView
    from connectors.patrol_http import Limits, PatrolGateway
    from connectors.photos import PhotoStore
    from connectors.work_orders import WorkOrders
    from foundation.access import doorkeeper_of
    from schemas.grid import Grid
    from streams.case_flow import load_flow
    from streams.routing import load_rules

    return PatrolGateway(
        _publisher(settings, bootstrap, "patrol"),
        load_rules(settings.routing_rules),
        Grid.load(settings.grid_path),
        PhotoStore(settings.photo_store, settings.max_photo_bytes, settings.max_photo_pixels),
        Limits(
            settings.max_report_bytes,
            settings.max_photos,
            settings.max_track_points,
            settings.http_max_connections,
            settings.http_keepalive_s,
        ),
        doorkeeper_of(settings),
        CaseView(bootstrap, load_flow(), kafka_python_options(settings)),
        WorkOrders(bootstrap, {**kafka_python_options(settings), "fetch_max_wait_ms": settings.fetch_wait_ms}),
        (settings.http_host, settings.http_port),
    )


def build_approvals(settings: Settings, bootstrap: str) -> Service:
    """The approval system's SQL poller."""
    from connectors.approvals_mapping import load_mapping
    from connectors.approvals_sql import ApprovalsConnector
    from schemas.topics import RAW_APPROVALS

    mapping = load_mapping(settings.approvals_mapping)
    topic_id = topic_ids(bootstrap, [RAW_APPROVALS], kafka_python_options(settings))[RAW_APPROVALS]
    return ApprovalsConnector(_publisher(settings, bootstrap, "approvals"), settings, mapping, topic_id)


def build_watch(settings: Settings, bootstrap: str) -> Service:
    """The watched export folder (GRIDHUB_WATCH_DIR)."""
    from connectors.exports.watch import WatchedFolder

    if settings.watch_dir is None:
        raise ServiceError("set GRIDHUB_WATCH_DIR to the folder departments drop their exports into")
    publisher = _publisher(settings, bootstrap, "watch")
    return WatchedFolder(publisher, settings.watch_dir, settings.export_mappings, settings.watch_settle_seconds)


def build_pull(settings: Settings, bootstrap: str) -> Service:
    """Periodic full pulls of the department REST APIs in GRIDHUB_REST_SOURCES."""
    from connectors.exports.rest import RestPoller, load_rest_sources

    sources = load_rest_sources(settings.rest_sources).sources
    return RestPoller(_publisher(settings, bootstrap, "pull"), sources, settings.export_mappings)


def build_screen(settings: Settings, bootstrap: str) -> Service:
    """The command centre's screen, reading through the sink's SQL endpoint as each viewer."""
    from gridhub.screen.server import build_screen as build

    return build(settings, bootstrap)


BUILDERS: dict[ServiceName, Callable[[Settings, str], Service]] = {
    "sink": SinkService,
    "patrol": build_patrol,
    "approvals": build_approvals,
    "screen": build_screen,
    "watch": build_watch,
    "pull": build_pull,
}


def run_worker(settings: Settings, bootstrap: str) -> None:
    """The Faust worker with its agents; Faust owns its lifecycle and says when it is ready.

    Faust's Prometheus sensor records into the registry the ops endpoint serves; Faust's own web
    server stays off (it would serve its debugging views, stack dumps included, to anyone).
    """
    import faust
    from faust.sensors.prometheus import setup_prometheus_sensors

    from streams.app import build_app

    app = build_app(settings, bootstrap)
    setup_prometheus_sensors(app)
    with ops_endpoint(settings, {}) as (health, ops_url):

        class AnnouncingWorker(faust.Worker):
            async def on_startup_finished(self) -> None:
                await super().on_startup_finished()
                runfiles.announce(settings, "worker", bootstrap=bootstrap, ops_url=ops_url)
                health.ready.set()

        # override_logging=False keeps gridhub's own logging (configure_logging, already run): left to
        # itself, Faust reconfigures the root logger and, for its console spinner, sets it to DEBUG, so
        # faust and aiokafka built a debug LogRecord for every message sent only for the handler to drop it.
        worker = AnnouncingWorker(app, quiet=True, redirect_stdouts=False, override_logging=False)
        try:
            worker.execute_from_commandline()
        finally:
            runfiles.withdraw(settings, "worker")


def run(settings: Settings, name: str) -> None:
    """Run the named service in this process until it is told to stop."""
    build = BUILDERS.get(cast(ServiceName, name))
    if build is None and name != "worker":
        raise ServiceError(f"unknown service {name!r}; choose one of worker, {', '.join(BUILDERS)}")
    stop_with_supervisor(settings)
    bootstrap = _bootstrap(settings)
    if build is None:
        run_worker(settings, bootstrap)
    else:
        run_service(settings, name, build(settings, bootstrap))


def enabled_services(settings: Settings) -> tuple[ServiceName, ...]:
    """What `gridhub up` runs: :data:`SERVICES` (the screen last), then the department feeds that are configured.

    docker-compose runs the feeds as well, pull only in its ``pull`` profile (it needs a sources file).
    """
    feeds: dict[ServiceName, object] = {"watch": settings.watch_dir, "pull": settings.rest_sources}
    return (*SERVICES, *(name for name, setting in feeds.items() if setting))
