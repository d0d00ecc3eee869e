"""``gridhub export``: the warehouse as Hive-partitioned Parquet, in the caller's role, for other engines.

It works whether or not the hub runs: from the running sink's query server, or from the
warehouse file (:func:`warehouse.reader.read_relations`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridhub.cli_common import DataDir, console, errors, print_result
from gridhub.cli_common import command_settings as _settings

LISTED = 5
"""Relations left out for one reason that are named on the terminal; the manifest names them all."""


def export(
    directory: Annotated[
        Path, typer.Argument(help="Folder to write: new, empty, or a previous export's (which is replaced).")
    ],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The warehouse as it was at this moment (ISO 8601, town time without an offset): "
            "only relations that keep history.",
        ),
    ] = None,
    tables: Annotated[
        list[str] | None,
        typer.Option(
            "--tables",
            help="Only these tables and views (comma-separated, or the option repeated); "
            "default: every one your role may read but the hub's bookkeeping.",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write the warehouse as Parquet (partitioned by town and month) with a manifest, masked as your role sees it."""
    from gridhub import __version__
    from warehouse.parquet_export import MANIFEST, ExportRequest, export_warehouse, town_code
    from warehouse.reader import read_relations
    from warehouse.relation_stream import parse_as_of

    settings = _settings(data_dir=data_dir)
    request = ExportRequest(
        directory=directory.expanduser().absolute(),
        tables=tuple(part for option in tables or [] for part in option.split(",") if part.strip()),
        as_of=parse_as_of(as_of) if as_of else None,
        town=town_code(settings),
        gridhub_version=__version__,
    )
    with console.status("exporting...") as status:

        def show(relation: str, rows: int) -> None:
            status.update(f"exporting {relation}: {rows:,} rows")

        manifest = read_relations(settings, lambda relations: export_warehouse(relations, request, show))
    print_result(
        {
            "columns": ["relation", "rows", "files", "partitioned by"],
            "rows": [
                [name, table["rows"], len(table["files"]), ", ".join(table["partitioned_by"])]
                for name, table in manifest["tables"].items()
            ],
        },
        title=f"town {manifest['town']}" + (f", as of {manifest['as_of']}" if manifest["as_of"] else ""),
    )
    by_reason: dict[str, list[str]] = {}
    for name, reason in manifest["left_out"].items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        which = ", ".join(names) if len(names) <= LISTED else f"{len(names)} relations (the manifest lists them)"
        errors.print(f"left out {which}: {reason}", markup=False, highlight=False)
    seen = "masked as an analyst sees it" if manifest["masked"] else "whole (audited as a read of personal data)"
    console.print(
        f"exported {len(manifest['tables'])} relations as {manifest['role']}, {seen}, to {request.directory}; "
        f"described in {request.directory / MANIFEST}",
        markup=False,
        highlight=False,
    )
