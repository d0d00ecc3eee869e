"""The one settings object, read from ``GRIDHUB_*`` environment variables.

Every tunable of every service lives here so that an operator can see the whole
surface in one place (and in the README table), and so docker-compose, the
supervisor and the tests all configure services the same way: through the
environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from foundation import packaged
from foundation.errors import ConfigurationError


class Settings(BaseSettings):
    """Runtime configuration shared by the CLI and every service process."""

    model_config = SettingsConfigDict(env_prefix="GRIDHUB_", frozen=True, extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port of a Kafka cluster; unset means start the embedded Tansu broker.",
    )
    data_dir: Path = Field(default=Path("gridhub-data"), description="Where state files live.")
    warehouse_path: Path | None = Field(default=None, description="DuckDB file; defaults to DATA_DIR/warehouse.duckdb.")
    topic_partitions: int = Field(
        default=4,
        ge=1,
        description="Partitions of the topics workers and desks share out (raw, batches, alerts, dispatch); "
        "those only the sink reads have one.",
    )
    topic_replication: int = Field(default=1, ge=1, description="Replication factor of topics.")
    fetch_wait_ms: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Longest the broker holds an idle consumer's fetch (worker, sink, desks, screen): each hop of a "
        "report waits up to this long; lower costs the broker more polling while idle.",
    )
    producer_linger_ms: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="How long a producer holds a record to batch it; 0 sends at once (records still batch while a "
        "request is in flight).",
    )

    http_host: str = Field(default="127.0.0.1", description="Patrol gateway bind address.")
    http_port: int = Field(default=8088, ge=0, description="Patrol gateway port (0 = any free).")
    patrol_url: str | None = Field(
        default=None, description="URL of a running patrol gateway (else read the run file)."
    )
    max_report_bytes: int = Field(default=1_048_576, ge=1, description="Largest accepted JSON record.")
    photo_dir: Path | None = Field(default=None, description="Photo store; defaults to DATA_DIR/photos.")
    max_photo_bytes: int = Field(default=8_388_608, ge=1, description="Largest accepted photo.")
    max_photos: int = Field(default=5, ge=0, description="Photos per report or update.")
    max_track_points: int = Field(default=1000, ge=1, description="Points per patrol-track batch.")
    max_photo_pixels: int = Field(
        default=64_000_000, ge=1, description="Largest photo accepted in pixels, read from its header before decoding."
    )
    http_max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections the patrol gateway serves at once (fewer if the file-descriptor limit is low); "
        "more are answered 503 with Retry-After.",
    )
    http_keepalive_s: float = Field(
        default=15.0, gt=0, le=600, description="The patrol gateway closes a connection idle this long."
    )

    screen_host: str = Field(default="127.0.0.1", description="The command centre's screen: bind address.")
    screen_port: int = Field(default=8090, ge=0, description="The screen's port (0 = any free).")

    sink_query_host: str = Field(default="127.0.0.1", description="Sink's read-only SQL endpoint.")
    sink_query_port: int = Field(default=8089, ge=0, description="0 picks any free port.")
    sink_url: str | None = Field(
        default=None, description="URL of a running sink's SQL endpoint (else read the run file)."
    )
    sql_max_rows: int = Field(default=10_000, ge=1, description="Most rows one SQL query answers (the rest is cut).")
    sql_timeout_s: float = Field(
        default=30.0, gt=0, description="A SQL query running longer is interrupted, whether or not its client waits."
    )
    duckdb_memory_limit: str = Field(
        default="4GB",
        pattern=r"^[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory the warehouse's DuckDB may use (the sink's writes and every query together); "
        "beyond it, work spills to disk or a query is refused.",
    )
    sink_batch_records: int = Field(default=5000, ge=1, description="Most records per DuckDB txn.")
    sink_batch_wait_ms: int = Field(
        default=500,
        ge=1,
        description="Longest wait to fill a batch: one with bulk-lane rows always waits this long for more, one of "
        "single records only while a backlog arrives (else it is written at once).",
    )
    sink_fetch_wait_ms: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Longest the broker holds the sink's idle fetch: longer than the worker's, because each fetch "
        "the sink parses (every topic it stores) takes CPU its DuckDB writes need.",
    )
    sink_batch_linger_ms: int = Field(
        default=0,
        ge=0,
        description="Shortest wait to fill a batch even with no backlog (capped by the batch wait): fewer, larger "
        "transactions for later cases; 0 writes what arrived at once.",
    )
    sink_idle_checkpoint_kib: int = Field(
        default=1024,
        ge=0,
        description="When nothing has arrived for a whole batch wait, the sink moves DuckDB's write-ahead log into "
        "the warehouse file if it holds at least this many KiB, so that the commit that would pass DuckDB's own "
        "threshold (16 MiB) does not hold an incident for it; 0 turns it off.",
    )
    sink_bulk_rows: int = Field(
        default=250_000, ge=1, description="Most bulk-lane rows (department exports) per DuckDB txn."
    )
    publish_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a connector waits for Kafka to acknowledge what it sent before it tries again.",
    )
    bulk_batch_rows: int = Field(
        default=5000, ge=1, description="Export rows per Kafka message on the bulk lane (Arrow batches)."
    )
    seen_rows_max: int = Field(
        default=2_000_000,
        ge=0,
        description="Bulk-lane records whose last accepted content the worker remembers, so an unchanged row of a "
        "re-sync skips validation (about 120 bytes each); the oldest are forgotten past it, 0 turns it off.",
    )

    approvals_db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the approval system's exchange database; "
        "defaults to sqlite:///DATA_DIR/approvals.sqlite.",
    )
    approvals_mapping: Path = Field(
        default=packaged.APPROVALS_MAPPING,
        description="Table, change-number column, column per application field and status codes to poll.",
    )
    approvals_poll_seconds: float = Field(default=1.0, gt=0, description="Polling interval.")
    approvals_batch_rows: int = Field(default=1000, ge=1, description="Rows read per poll.")
    approvals_gap_wait_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a missing change number (a transaction not committed yet) holds the cursor back.",
    )
    approval_items: Path = Field(
        default=packaged.APPROVAL_ITEMS, description="Catalogue of approval items with time limits."
    )
    enforcement: Path = Field(
        default=packaged.ENFORCEMENT,
        description="The enforcement bureau's units, officers, powers and case flow (synthetic stand-in by default).",
    )
    holidays: Path = Field(
        default=packaged.HOLIDAYS,
        description="Public holidays and adjusted working days (调休), for deadlines in working days.",
    )
    approvals_overdue_check_seconds: float = Field(
        default=60.0, gt=0, description="How often open applications are checked against their time limit."
    )

    export_mappings: Path = Field(
        default=packaged.EXPORT_MAPPINGS,
        description="Per-department column mappings of exports (source -> entity -> columns, defaults, sheet).",
    )
    watch_dir: Path | None = Field(
        default=None, description="Folder watched for exports, laid out as DIR/<source>/<entity>/file; unset = off."
    )
    watch_settle_seconds: float = Field(
        default=2.0, gt=0, description="A watched file is taken once its size and time stop changing for this long."
    )
    rest_sources: Path | None = Field(
        default=None, description="YAML list of department REST APIs to pull; unset = none."
    )

    routing_rules: Path = Field(default=packaged.CATEGORIES, description="Category routing table.")
    resolution_rules: Path = Field(
        default=packaged.RESOLUTION_RULES,
        description="Entity resolution: source ranking per field, fuzzy matching weights and thresholds.",
    )
    grid_file: Path | None = Field(
        default=None,
        description="Grid cells (GeoJSON); defaults to the grid installed by `gridhub grid load`, "
        "else the packaged synthetic Menghe grid.",
    )
    town_code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{9}$",
        description="The town's 9-digit division code (GB/T 2260 county + township, e.g. 320411101), which "
        "`gridhub export` partitions by; defaults to the first 9 digits of the grid's cell codes.",
    )

    duplicate_distance_m: float = Field(
        default=50.0, gt=0, description="Two open reports of one category this close are one case."
    )
    duplicate_window_minutes: float = Field(default=120.0, gt=0, description="...and this close in time.")
    overdue_check_seconds: float = Field(default=30.0, gt=0, description="How often open cases are checked.")

    worker_rebalance_timeout_s: float = Field(
        default=4.0, gt=0, description="Faust rebalance timeout; keep low on the embedded broker."
    )

    tokens_path: Path | None = Field(
        default=None, description="The token book (SQLite, hashes only); defaults to DATA_DIR/tokens.sqlite."
    )
    token: SecretStr | None = Field(
        default=None, description="The caller's own token, for CLI commands that talk to a running hub."
    )
    service_token: SecretStr | None = Field(
        default=None, description="Set by `gridhub up` for its own services (made anew at each start); never set it."
    )
    token_cache_s: float = Field(
        default=1.0, gt=0, le=60, description="A door re-reads the token book this often: a revocation's delay."
    )
    rate_limit: str = Field(
        default="20/second;1200/minute",
        description="Calls one token may make at every door, in moving windows ('N/second;M/minute').",
    )

    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How services talk to Kafka; production uses SASL_SSL (or SASL_PLAINTEXT)."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_username: str | None = Field(default=None, description="This service's Kafka principal (SASL).")
    kafka_password: SecretStr | None = Field(default=None, description="Its password (prefer the _FILE form).")
    kafka_password_file: Path | None = Field(
        default=None, description="A file holding the password (a Docker secret), read at start."
    )
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle that signed the brokers' certificates.")

    journal: bool = Field(
        default=True,
        description="Doors keep what they accept in a journal on disk until the warehouse has it (needed on the "
        "embedded broker, which keeps its topics in memory; a replicated Kafka cluster can do without).",
    )
    journal_check_seconds: float = Field(
        default=1.0, gt=0, description="How often the sink forgets journal entries whose records have landed."
    )
    drain_timeout_s: float = Field(
        default=120.0,
        ge=0,
        description="How long Ctrl-C waits for accepted records to land before it stops anyway "
        "(what is left stays in the journals and is sent again at the next start).",
    )
    restart_limit: int = Field(default=5, ge=1, description="Crashes of one service in the window that end the hub.")
    restart_window_s: float = Field(
        default=600.0, gt=0, description="The window in which restart_limit crashes of one service end the hub."
    )

    supervisor_pid: int | None = Field(
        default=None, description="Set by `gridhub up` for its services: a service stops when that process is gone."
    )

    ops_host: str = Field(
        default="127.0.0.1", description="Bind address of every service's ops endpoint (/metrics, /healthz, /readyz)."
    )
    ops_port: int = Field(
        default=0,
        ge=0,
        le=65_000,
        description="Port of a service's ops endpoint; 0 = any free one (`gridhub status` shows it). "
        "Under `gridhub up` a fixed port is the first of a range, one port per service.",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, /metrics answers only `Authorization: Bearer <this>` (probes stay open)."
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="WARNING", description="Quiet by default: warnings and errors only."
    )
    log_format: Literal["console", "json"] = Field(
        default="console", description="json for log shippers (docker-compose sets it)."
    )

    @property
    def warehouse_file(self) -> Path:
        """The DuckDB file, after applying the data-dir default."""
        return self.warehouse_path or self.data_dir / "warehouse.duckdb"

    @property
    def tokens_file(self) -> Path:
        """The token book, after applying the data-dir default."""
        return self.tokens_path or self.data_dir / "tokens.sqlite"

    @property
    def admin_token_file(self) -> Path:
        """Where `gridhub up` writes the admin token it makes on its first start (owner-only)."""
        return self.data_dir / "admin.token"

    @property
    def approvals_url(self) -> str:
        """The approval database URL, after applying the SQLite default."""
        return self.approvals_db_url or f"sqlite:///{(self.data_dir / 'approvals.sqlite').resolve()}"

    @property
    def installed_grid(self) -> Path:
        """Where `gridhub grid load` installs a town's grid."""
        return self.data_dir / "grid.geojson"

    @property
    def grid_path(self) -> Path:
        """The grid the services place points with."""
        if self.grid_file:
            return self.grid_file
        if self.installed_grid.exists():
            return self.installed_grid
        return packaged.MENGHE_GRID

    @property
    def photo_store(self) -> Path:
        """The photo folder, after applying the data-dir default."""
        return self.photo_dir or self.data_dir / "photos"

    @property
    def journal_dir(self) -> Path:
        """The doors' journals of records accepted but not yet in the warehouse."""
        return self.data_dir / "journal"

    @property
    def state_dir(self) -> Path:
        """Connector cursors and other small state files."""
        return self.data_dir / "state"


def load_settings(**overrides: object) -> Settings:
    """Read the environment, letting command-line flags win over it.

    A value that does not fit its setting stops the process with one line naming the variable.
    """
    cleaned = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**cleaned)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"GRIDHUB_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}" for item in exc.errors()
        )
        raise ConfigurationError(f"a setting is wrong: {problems}") from exc
