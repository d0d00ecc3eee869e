"""Which table, columns and status codes of an approval system make a canonical application.

Every approval system names things its own way (``bjbh`` for the application number,
``bjzt`` with 受理/办结 for the status, numbers in another product), so the mapping is a
YAML file (``schemas/data/approvals_mapping.yaml`` by default, ``GRIDHUB_APPROVALS_MAPPING``
to use another) rather than code: connecting a town's system is an edit, not a release.
Anything wrong in it is one :class:`MappingError` naming the file and what to fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from foundation import packaged
from foundation.errors import ConfigurationError, InputRejected
from schemas.config_file import read_yaml
from schemas.records import APPLICATION_STATUSES

MAPPED_FIELDS = (
    "application_id",
    "item_code",
    "item_name",
    "applicant_id_number",
    "applicant_uscc",
    "status",
    "submitted_at",
    "updated_at",
)
REQUIRED_FIELDS = ("application_id", "item_code", "status", "submitted_at", "updated_at")
APPLICANT_FIELDS = ("applicant_id_number", "applicant_uscc")


class MappingError(ConfigurationError):
    """The mapping file is wrong, or does not fit the table it names."""


class UnmappedStatus(InputRejected):
    """A row's status code is neither a canonical status nor listed in ``status_values``."""

    reason_code = "unmapped_status"


def _plain(value: Any) -> Any:
    """JSON-friendly column values (timestamps as ISO-8601)."""
    return value.isoformat() if isinstance(value, datetime | date) else value


@dataclass(frozen=True)
class ApprovalsMapping:
    """The polled table, its change-number column, and the source column of each canonical field."""

    path: Path
    table: str
    schema: str | None
    cursor_column: str
    columns: dict[str, str]
    status_values: dict[str, str]

    @property
    def qualified_table(self) -> str:
        """The table as a person would write it in SQL, for messages."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def check_columns(self, available: Iterable[str]) -> None:
        """Refuse a mapping that names a column the table lacks, before anything is read."""
        present = set(available)
        named = {
            "cursor_column": self.cursor_column,
            **{f"columns.{key}": value for key, value in self.columns.items()},
        }
        missing = [f"{value!r} ({key})" for key, value in named.items() if value not in present]
        if missing:
            raise MappingError(
                f"{self.path}: table {self.qualified_table} has no column {', '.join(missing)}; "
                f"its columns are {', '.join(sorted(present))}"
            )

    def status(self, value: Any) -> str:
        """The canonical status of a source status code."""
        text = str(value).strip() if value is not None else ""
        if text in self.status_values:
            return self.status_values[text]
        if text in APPLICATION_STATUSES:
            return text
        raise UnmappedStatus(
            f"status {text!r} in column {self.columns['status']} is not a canonical status and is not in "
            f"status_values of {self.path}; add it there (canonical: {', '.join(APPLICATION_STATUSES)})"
        )

    def payload(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical application fields of one source row (raises :class:`UnmappedStatus`)."""
        payload = {field: _plain(row[column]) for field, column in self.columns.items()}
        payload["status"] = self.status(row[self.columns["status"]])
        return payload


def _text(document: dict[str, Any], key: str, path: Path) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{path}: '{key}' must name a column or table, not {value!r}")
    return value.strip()


def load_mapping(path: Path = packaged.APPROVALS_MAPPING) -> ApprovalsMapping:
    """Read and check the mapping file: known fields only, required ones present, statuses canonical."""
    document = read_yaml(path, "the approvals mapping", MappingError, "check GRIDHUB_APPROVALS_MAPPING")
    if not isinstance(document, dict) or not isinstance(document.get("columns"), dict):
        raise MappingError(f"{path} must have 'table', 'cursor_column' and a 'columns' mapping")
    columns = {str(field): str(column).strip() for field, column in document["columns"].items() if column}
    unknown = sorted(set(columns) - set(MAPPED_FIELDS))
    if unknown:
        raise MappingError(f"{path}: columns maps unknown field(s) {', '.join(unknown)}; fields: {MAPPED_FIELDS}")
    missing = [field for field in REQUIRED_FIELDS if field not in columns]
    if missing:
        raise MappingError(f"{path}: columns lacks the source column of {', '.join(missing)}")
    if not any(field in columns for field in APPLICANT_FIELDS):
        raise MappingError(f"{path}: columns must map applicant_id_number, applicant_uscc or both")
    raw_values = document.get("status_values") or {}
    if not isinstance(raw_values, dict):
        raise MappingError(f"{path}: status_values must map source status codes to canonical statuses")
    status_values = {str(code).strip(): str(status) for code, status in raw_values.items()}
    wrong = sorted({status for status in status_values.values() if status not in APPLICATION_STATUSES})
    if wrong:
        raise MappingError(
            f"{path}: status_values maps to {', '.join(wrong)}, which are not canonical statuses "
            f"({', '.join(APPLICATION_STATUSES)})"
        )
    schema = document.get("schema")
    return ApprovalsMapping(
        path=path,
        table=_text(document, "table", path),
        schema=str(schema).strip() if schema else None,
        cursor_column=_text(document, "cursor_column", path),
        columns=columns,
        status_values=status_values,
    )
