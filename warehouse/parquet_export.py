"""``gridhub export``: the warehouse as Hive-partitioned Parquet, the way Spark, Trino, pandas and DuckDB read it.

Each relation lands in ``DIR/<relation>/town=<code>/`` and, when it is a time series, one folder
further down per month of its time column (``month=2026-11``, the town's month). A county that
joins many towns' hubs points one reader at all their exports (``exports/*/events/**/*.parquet``)
and gets every town's rows, told apart by ``town``. ``manifest.json`` says what the export holds:
its relations, their rows, columns and files, the moment it shows, the role it was read in.

The rows are the caller's: an analyst's or an admin's come through the masked views, the
commander's whole (and audited as a read of personal data). An export is built in a hidden
staging folder inside DIR and published only when every relation is written: the previous
export's files are replaced and the manifest is written last, so a manifest never describes
files that are not there (a folder without one holds no finished export).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from foundation.errors import ConfigurationError, InputRejected
from foundation.settings import Settings
from schemas import TOWN_TIMEZONE
from schemas.grid import Grid
from warehouse import history
from warehouse.relation_sources import Relations
from warehouse.relation_stream import NoHistory, RelationRefused, RelationRows

MANIFEST = "manifest.json"
MARKER = ".gridhub-export"
"""Marks a folder as an export's, whose contents the next export may replace; held locked while one writes."""
STAGING_PREFIX = ".gridhub-export-staging-"
FORMAT = "gridhub-parquet-export"
FORMAT_VERSION = 1
TOWN = "town"
MONTH = "month"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""The folder Hive, Spark and DuckDB read as a NULL partition value (a row without a time)."""
ROWS_PER_FILE = 1_000_000
ROWS_PER_GROUP = 100_000

INTERNAL_RELATIONS = frozenset({"sink_offsets", "warehouse_meta"})
"""The hub's own bookkeeping, left out unless named (the audit and the masking secret no role may read at all)."""
MONTH_OF: dict[str, str] = {
    "events": "reported_at",
    "event_updates": "occurred_at",
    "cases": "reported_at",
    "case_transitions": "at",
    "applications": "submitted_at",
    "application_facts": "submitted_at",
    "patrol_tracks": "recorded_at",
    "patrol_sessions": "started_at",
    "rejects": "rejected_at",
    "intake": "received_at",
    "enforcement_cases": "filed_at",
    "enforcement_case_facts": "filed_at",
    "kpi_case_facts": "reported_at",
    "quality_results": "checked_at",
    "runs": "started_at",
    "run_summary": "started_at",
}
"""The large time series, each partitioned by the town's month of this column as well as by town; a history
table (``people_history``, :mod:`warehouse.history`) by the month its versions start."""
_RELATION_NAME = re.compile("[a-z_][a-z0-9_]*")
NO_HISTORY = "keeps no history, so it cannot be shown as of a moment"
_TOWN_DIGITS = 9


class ExportRefused(InputRejected):
    """An export that cannot be made as asked (a relation the caller may not read, a folder not an export's)."""

    reason_code = "export_refused"


class ExportFailed(ConfigurationError):
    """Writing the export failed; nothing was published, and the folder still holds the previous export, if any."""


def town_code(settings: Settings) -> str:
    """The town's 9-digit division code: ``GRIDHUB_TOWN_CODE``, else the county and township of the grid's cells."""
    if settings.town_code:
        return settings.town_code
    towns = sorted({code[:_TOWN_DIGITS] for code in Grid.load(settings.grid_path).cells})
    if len(towns) != 1:
        raise ConfigurationError(
            f"the grid {settings.grid_path} has cells of {len(towns)} towns ({', '.join(towns)}); set "
            "GRIDHUB_TOWN_CODE to the 9-digit division code of this hub's town"
        )
    return towns[0]


@dataclass(frozen=True)
class Plan:
    """The relations an export reads, and those it leaves out with why."""

    relations: tuple[str, ...]
    left_out: dict[str, str] = field(default_factory=dict)


def plan_export(readable: frozenset[str], named: Sequence[str], as_of: datetime | None) -> Plan:
    """Which relations to export: those named (each one the caller may read), else all but the internal ones.

    With ``as_of``, a relation is read through its history macro (:data:`warehouse.history.AS_OF`):
    a named relation without one is refused; from the default set, those without one are left out
    and listed, so the manifest says why they are missing.
    """
    if named:
        wanted = list(dict.fromkeys(name.strip().lower() for name in named if name.strip()))
        unknown = [name for name in wanted if name not in readable]
        if unknown:
            raise ExportRefused(
                f"you may not export {', '.join(unknown)}: not a table or view of your role; "
                f"you may export {', '.join(sorted(readable))}"
            )
        timeless = [name for name in wanted if as_of is not None and name not in history.AS_OF]
        if timeless:
            raise ExportRefused(
                f"no history is kept of {', '.join(timeless)}, so --as-of cannot show them; "
                f"relations with history: {', '.join(sorted(history.AS_OF)) or 'none yet'}"
            )
        return _checked(Plan(tuple(wanted)))
    default = sorted(readable - INTERNAL_RELATIONS)
    if as_of is None:
        return _checked(Plan(tuple(default)))
    return _checked(
        Plan(
            tuple(name for name in default if name in history.AS_OF),
            {name: NO_HISTORY for name in default if name not in history.AS_OF},
        )
    )


def _checked(plan: Plan) -> Plan:
    """The plan, once every relation's name is sure to be a plain identifier (it becomes a folder's name)."""
    odd = [name for name in plan.relations if not _RELATION_NAME.fullmatch(name)]
    if odd:
        raise ExportRefused(f"relations whose names cannot be folders' names: {', '.join(map(repr, odd))}")
    return plan


@dataclass(frozen=True)
class ExportRequest:
    """What to export, where, and what the manifest says of it."""

    directory: Path
    tables: tuple[str, ...]
    as_of: datetime | None
    town: str
    gridhub_version: str


@dataclass
class WrittenRelation:
    """One relation in the staging folder: its rows, columns and files."""

    rows: int
    schema: pa.Schema
    month_of: str | None
    files: list[tuple[Path, int]]


Progress = Callable[[str, int], None]
"""Told the relation being written and the rows written of it so far."""


def export_warehouse(relations: Relations, request: ExportRequest, progress: Progress | None = None) -> dict[str, Any]:
    """Write every planned relation, publish them with the manifest, and return the manifest."""
    plan = plan_export(relations.names, request.tables, request.as_of)
    left_out = dict(plan.left_out)
    try:
        with _claimed(request.directory) as staging:
            written: dict[str, WrittenRelation] = {}
            for name in plan.relations:
                try:
                    with relations.open(name, request.as_of) as rows:
                        written[name] = write_relation(rows, staging / name, request.town, progress)
                except RelationRefused as exc:
                    if request.tables or exc.reason_code != NoHistory.reason_code:
                        raise
                    left_out[name] = str(exc)
            manifest = _manifest(relations, request, staging, written, left_out, _warehouse_version(relations))
            _publish(request.directory, staging, list(written), manifest)
    except OSError as exc:
        raise ExportFailed(
            f"writing the export to {request.directory} failed ({exc}); nothing was published "
            "(the folder still holds its previous export, if any)"
        ) from exc
    return manifest


def write_relation(rows: RelationRows, folder: Path, town: str, progress: Progress | None = None) -> WrittenRelation:
    """Write one relation's batches under ``folder/town=<town>/`` (and ``month=YYYY-MM/`` for a time series).

    The batches go to the Parquet writer as they come, so a relation of any size is written in the
    memory of a few batches. An empty relation is written as one empty file, so its columns survive.
    """
    for column in (TOWN, MONTH):
        if column in rows.schema.names:
            raise ExportFailed(f"{rows.relation} has a column named {column}, which the export's partitions add")
    month_of = MONTH_OF.get(rows.relation, "valid_from" if rows.relation.endswith(history.SUFFIX) else None)
    if month_of not in rows.schema.names or not pa.types.is_timestamp(rows.schema.field(month_of).type):
        month_of = None
    base = folder / f"{TOWN}={town}"
    files: list[tuple[Path, int]] = []
    batches: Iterable[pa.RecordBatch] = _reported(rows, progress)
    schema = rows.schema
    partitioning = None
    if month_of is not None:
        batches = (_with_month(batch, month_of) for batch in batches)
        schema = schema.append(pa.field(MONTH, pa.string()))
        partitioning = ds.partitioning(pa.schema([(MONTH, pa.string())]), flavor="hive")
    ds.write_dataset(
        batches,
        base,
        schema=schema,
        format="parquet",
        partitioning=partitioning,
        basename_template="part-{i}.parquet",
        max_rows_per_file=ROWS_PER_FILE,
        max_rows_per_group=ROWS_PER_GROUP,
        file_visitor=lambda written: files.append((Path(written.path), written.metadata.num_rows)),
    )
    if not files:
        empty = base / f"{MONTH}={NULL_PARTITION}" if month_of else base
        empty.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows.schema.empty_table(), empty / "part-0.parquet")
        files.append((empty / "part-0.parquet", 0))
    return WrittenRelation(rows.rows, rows.schema, month_of, sorted(files))


def _reported(rows: RelationRows, progress: Progress | None) -> Iterator[pa.RecordBatch]:
    for batch in rows:
        yield batch
        if progress is not None:
            progress(rows.relation, rows.rows)


def _with_month(batch: pa.RecordBatch, column: str) -> pa.RecordBatch:
    """The batch with the town's month (``2026-11``) of ``column``, NULL where it is NULL."""
    stamps = batch.column(column)
    if stamps.type.tz is not None:
        stamps = stamps.cast(pa.timestamp(stamps.type.unit, tz=TOWN_TIMEZONE.key))
    return batch.append_column(MONTH, pc.strftime(stamps, format="%Y-%m"))


@contextmanager
def _claimed(directory: Path) -> Iterator[Path]:
    """A staging folder inside ``directory``, which is made an export's folder (and locked) if it may be."""
    if directory.exists() and not directory.is_dir():
        raise ExportRefused(f"{directory} is a file; name a folder for the export")
    marker = directory / MARKER
    if directory.exists() and not marker.exists() and any(directory.iterdir()):
        raise ExportRefused(
            f"{directory} holds files that are not a gridhub export; name a new or empty folder "
            "(an export replaces what its folder holds)"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with marker.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExportRefused(f"another export is writing {directory}; wait for it, or name another folder") from None
        for stale in directory.glob(STAGING_PREFIX + "*"):
            shutil.rmtree(stale)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _publish(directory: Path, staging: Path, relations: list[str], manifest: dict[str, Any]) -> None:
    """Replace the folder's previous export with the staged one; the manifest goes last, atomically."""
    (directory / MANIFEST).unlink(missing_ok=True)
    for entry in directory.iterdir():
        if entry.name == MARKER or entry.name.startswith(STAGING_PREFIX):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for name in relations:
        (staging / name).rename(directory / name)
    staged = staging / MANIFEST
    with staged.open("w", encoding="utf-8") as file:
        json.dump(manifest, file, ensure_ascii=False, indent=2)
        file.flush()
        os.fsync(file.fileno())
    staged.replace(directory / MANIFEST)


def _warehouse_version(relations: Relations) -> str | None:
    """The version of the warehouse's tables, as its ``warehouse_meta`` says (None if the caller cannot read it)."""
    if "warehouse_meta" not in relations.names:
        return None
    with relations.open("warehouse_meta", None) as rows:
        found = {row["key"]: row["value"] for batch in rows for row in batch.to_pylist()}
    return found.get("version")


def _columns(schema: pa.Schema) -> list[dict[str, Any]]:
    """The Arrow schema of a relation's files (the partition columns are in their folders' names)."""
    return [{"name": column.name, "type": str(column.type), "nullable": column.nullable} for column in schema]


def _parquet_columns(path: Path) -> list[dict[str, str]]:
    """The Parquet schema of a relation's files: each leaf column's path, physical and logical type."""
    schema = pq.read_metadata(path).schema
    return [
        {"path": column.path, "physical_type": column.physical_type, "logical_type": str(column.logical_type)}
        for column in (schema.column(index) for index in range(len(schema)))
    ]


def _manifest(
    relations: Relations,
    request: ExportRequest,
    staging: Path,
    written: dict[str, WrittenRelation],
    left_out: dict[str, str],
    warehouse_version: str | None,
) -> dict[str, Any]:
    caller = relations.caller
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "gridhub_version": request.gridhub_version,
        "warehouse_version": warehouse_version,
        "town": request.town,
        "role": caller.role,
        "masked": not caller.sees_personal_data,
        "as_of": request.as_of.isoformat() if request.as_of else None,
        "partitioning": {"flavor": "hive", "columns": [TOWN, MONTH], "month_time_zone": TOWN_TIMEZONE.key},
        "tables": {
            name: {
                "rows": table.rows,
                "partitioned_by": [TOWN, MONTH] if table.month_of else [TOWN],
                "month_of": table.month_of,
                "as_of_macro": history.AS_OF.get(name) if request.as_of else None,
                "columns": _columns(table.schema),
                "parquet_columns": _parquet_columns(table.files[0][0]),
                "files": [{"path": path.relative_to(staging).as_posix(), "rows": count} for path, count in table.files],
            }
            for name, table in written.items()
        },
        "left_out": dict(sorted(left_out.items())),
    }
