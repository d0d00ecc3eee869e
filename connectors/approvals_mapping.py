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
from typing import Any, get_args

from foundation import packaged
from foundation.errors import ConfigurationError, InputRejected
from schemas.config_file import read_yaml
from schemas.records import APPLICATION_STATUSES, Application

MAPPED_FIELDS = (
    "application_id",
    "item_code",
    "item_name",
    "applicant_id_number",
    "applicant_uscc",
    "status",
    "submitted_at",
    "updated_at",
    "window_no",
    "channel",
)
REQUIRED_FIELDS = ("application_id", "item_code", "status", "submitted_at", "updated_at")
APPLICANT_FIELDS = ("applicant_id_number", "applicant_uscc")
CHANNELS: tuple[str, ...] = get_args(get_args(Application.model_fields["channel"].annotation)[0])
"""Canonical channels, ``window`` and ``online``, read from the field (``Literal[...] | None``)."""


class MappingError(ConfigurationError):
    """The mapping file is wrong, or does not fit the table it names."""


class UnmappedCode(InputRejected):
    """A row's code (status, channel) is neither canonical nor listed in the mapping's table of codes."""


class UnmappedStatus(UnmappedCode):
    """A row's status code is neither a canonical status nor listed in ``status_values``."""

    reason_code = "unmapped_status"


class UnmappedChannel(UnmappedCode):
    """A row's channel code is neither a canonical channel nor listed in ``channel_values``."""

    reason_code = "unmapped_channel"


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
    channel_values: dict[str, str]

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
        return self._translate("status", value, self.status_values, APPLICATION_STATUSES, UnmappedStatus)

    def channel(self, value: Any) -> str | None:
        """The canonical channel of a source channel code; None when the row does not say."""
        if value is None or not str(value).strip():
            return None
        return self._translate("channel", value, self.channel_values, CHANNELS, UnmappedChannel)

    def _translate(
        self,
        field: str,
        value: Any,
        values: dict[str, str],
        canonical: tuple[str, ...],
        refusal: type[UnmappedCode],
    ) -> str:
        """A source code through ``<field>_values``, or as it is when it is already canonical."""
        text = str(value).strip() if value is not None else ""
        if text in values:
            return values[text]
        if text in canonical:
            return text
        raise refusal(
            f"{field} {text!r} in column {self.columns[field]} is not a canonical {field} and is not in "
            f"{field}_values of {self.path}; add it there (canonical: {', '.join(canonical)})"
        )

    def payload(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical application fields of one source row (raises :class:`UnmappedCode`)."""
        payload = {field: _plain(row[column]) for field, column in self.columns.items()}
        payload["status"] = self.status(row[self.columns["status"]])
        if "channel" in self.columns:
            payload["channel"] = self.channel(row[self.columns["channel"]])
        return payload


def _text(document: dict[str, Any], key: str, path: Path) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{path}: '{key}' must name a column or table, not {value!r}")
    return value.strip()


def _values(document: dict[str, Any], field: str, canonical: tuple[str, ...], path: Path) -> dict[str, str]:
    """The ``<field>_values`` table: source codes to canonical values, each checked."""
    raw_values = document.get(f"{field}_values") or {}
    if not isinstance(raw_values, dict):
        raise MappingError(f"{path}: {field}_values must map source {field} codes to canonical values")
    values = {str(code).strip(): str(value) for code, value in raw_values.items()}
    wrong = sorted({value for value in values.values() if value not in canonical})
    if wrong:
        raise MappingError(
            f"{path}: {field}_values maps to {', '.join(wrong)}, which are not canonical {field} values "
            f"({', '.join(canonical)})"
        )
    return values


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
    schema = document.get("schema")
    return ApprovalsMapping(
        path=path,
        table=_text(document, "table", path),
        schema=str(schema).strip() if schema else None,
        cursor_column=_text(document, "cursor_column", path),
        columns=columns,
        status_values=_values(document, "status", APPLICATION_STATUSES, path),
        channel_values=_values(document, "channel", CHANNELS, path),
    )
