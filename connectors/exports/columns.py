"""From a department's column headers to canonical field names, as configuration.

Two layers, both YAML: the standard headers of household, ID, housing and
enterprise registers (``schemas/data/export_headers.yaml``) work for every
source with no configuration; a department whose system names its columns
differently gets its own entry in the export mappings file
(``GRIDHUB_EXPORT_MAPPINGS``), which wins over the standard names for that
source only and may set default values its exports never carry::

    land-resources:
      place:
        columns: {宗地代码: place_id, 坐落位置: address}
        defaults: {place_type: parcel}
        sheet: 宗地信息        # optional: the worksheet of an .xlsx export
        record_id: 档案编号    # optional: row id for rows without the key (no resident ID)

A field no single column holds (an alarm's description: which station, which
pollutant, the value and the limit) is composed from several with a template
of the department's headers, ``compose: {description: "{站点名称}{监测因子}超标"}``
(:class:`Template`); a template's syntax is checked when the file is read, its
headers against each export before a single row is published.

Every cell also becomes text here (numbers without a spurious ``.0``, dates
and datetimes in ISO form), whatever the format delivered: a CSV row, an Excel
row and a Parquet row with the same content then become the same payload, and
canonical text fields such as a phone number or a parcel code are not refused
for having been typed as numbers in a spreadsheet.
"""

from __future__ import annotations

import math
import string
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

from connectors.exports.errors import ExportRejected, MappingsError
from connectors.exports.readers import blank
from foundation import packaged
from schemas.config_file import read_yaml, validated
from schemas.records import CANONICAL_MODELS

ExportEntity = Literal["person", "organisation", "place", "object", "event", "enforcement_case"]
"""What the export doors carry: base data, incidents from department platforms (events), and the
enforcement bureau's case files.
A new kind needs its standard headers, key and required columns in export_headers.yaml."""
EXPORT_ENTITIES: tuple[str, ...] = get_args(ExportEntity)


def squash(header: str) -> str:
    """Header matching ignores case, spaces and underscores: 'ID Number', 'id_number', 'idnumber' are one."""
    return header.strip().lower().replace(" ", "").replace("_", "")


def cell_value(value: Any) -> Any:
    """A cell as text (None when empty): the one form every format's values take in a raw payload."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value.is_finite() and value == value.to_integral_value() else str(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() and value.tzinfo is None else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(key): cell_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [cell_value(item) for item in value]
    return str(value)


@cache
def _standard_headers() -> dict[str, Any]:
    return yaml.safe_load(packaged.EXPORT_HEADERS.read_text(encoding="utf-8"))


class Template:
    """A field's text composed from several of a department's columns: ``"{站点名称}{监测因子}超标"``.

    Placeholders are the department's headers in braces (matched as headers are: ignoring case,
    spaces and underscores); ``{{`` and ``}}`` are literal braces. A blank cell leaves its
    placeholder empty. No format specs, conversions or positional ``{}``: a template is text
    around cells, not a program, so what it does can be read off the mapping file.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pieces: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"template {text!r} is malformed ({exc}); write literal braces as {{{{ and }}}}") from exc
        for literal, header, spec, conversion in parsed:
            if header is not None and (not header.strip() or spec or conversion):
                raise ValueError(
                    f"template {text!r}: {{{header}{'!' + conversion if conversion else ''}"
                    f"{':' + spec if spec else ''}}} is not a column header; "
                    "placeholders name a header, as in {站点名称}, with no format or conversion"
                )
            self.pieces.append((literal, header.strip() if header is not None else None))
        if not self.headers:
            raise ValueError(f"template {text!r} names no column; a fixed value belongs in defaults")

    @property
    def headers(self) -> list[str]:
        """The headers the template reads, in order."""
        return [header for _, header in self.pieces if header is not None]

    def render(self, cells: dict[str, Any]) -> str:
        """The text for one row; ``cells`` maps squashed headers to the row's cell texts."""
        return "".join(
            literal + ("" if header is None or blank(cells.get(squash(header))) else str(cells[squash(header)]))
            for literal, header in self.pieces
        )


class DepartmentMapping(BaseModel):
    """How one department's export of one entity kind names its columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    columns: dict[str, str] = Field(default_factory=dict, description="The department's header -> canonical field.")
    defaults: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Field values to use where the export leaves them empty."
    )
    sheet: str | None = Field(default=None, description="The worksheet to read from an .xlsx export.")
    record_id: str | None = Field(
        default=None,
        description="The department's own row id column (档案编号...), identifying rows that lack the "
        "entity's key (a register without resident IDs) across deliveries.",
    )
    compose: dict[str, str] = Field(
        default_factory=dict,
        description="Field -> template of the department's headers (see Template), for a field no single "
        "column holds; it wins over a column mapped to the same field.",
    )

    @field_validator("compose")
    @classmethod
    def _templates_parse(cls, compose: dict[str, str]) -> dict[str, str]:
        """A template that cannot be read would garble every row; refuse it when the file is read."""
        for text in compose.values():
            Template(text)
        return compose


class ExportMappings(RootModel[dict[str, dict[ExportEntity, DepartmentMapping]]]):
    """The whole mappings file: source (department) -> entity kind -> mapping."""

    root: dict[str, dict[ExportEntity, DepartmentMapping]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fields_exist(self) -> ExportMappings:
        """A typo in a field name would silently drop a column; refuse it when the file is read."""
        for source, entities in self.root.items():
            for entity, mapping in entities.items():
                known = set(CANONICAL_MODELS[entity].model_fields)
                unknown = sorted({*mapping.columns.values(), *mapping.defaults, *mapping.compose} - known)
                if unknown:
                    raise ValueError(
                        f"{source}.{entity} names unknown field(s) {', '.join(unknown)}; "
                        f"{entity} fields are {', '.join(sorted(known))}"
                    )
        return self

    def columns_for(self, source: str, entity: ExportEntity) -> ColumnMap:
        """The column map for one source's export of one entity kind (standard headers if it has no entry)."""
        return ColumnMap(entity, self.root.get(source, {}).get(entity))


def load_mappings(path: Path) -> ExportMappings:
    """Read and check the export mappings file; any problem is one line naming the file and what to fix."""
    content = read_yaml(path, "export mappings file", MappingsError, "check GRIDHUB_EXPORT_MAPPINGS") or {}
    return validated(ExportMappings, content, path, "export mappings file", MappingsError)


class ColumnMap:
    """Names the fields of one entity kind's rows: department columns first, then the standard headers."""

    def __init__(self, entity: ExportEntity, department: DepartmentMapping | None = None) -> None:
        standard = _standard_headers()
        self.entity = entity
        self.department = department or DepartmentMapping()
        self.required: list[str] = standard["required"][entity]
        self.key_field: str = standard["keys"][entity]
        self._lookup = {squash(name): field for field, names in standard[entity].items() for name in names}
        self._lookup.update({squash(header): field for header, field in self.department.columns.items()})
        self._headers: dict[str, list[str]] = {}
        for header, field in self.department.columns.items():
            self._headers.setdefault(field, []).append(header)
        for field, names in standard[entity].items():
            self._headers.setdefault(field, []).extend(names)
        self.defaults = {field: cell_value(value) for field, value in self.department.defaults.items()}
        self.sheet = self.department.sheet
        self.record_id = self.department.record_id
        self.templates = {field: Template(text) for field, text in self.department.compose.items()}
        self._resolved: dict[str, str] = {}

    def field(self, header: str) -> str:
        """The canonical field a header names; an unknown header stays as it is (the model ignores it)."""
        name = self._resolved.get(header)
        if name is None:
            name = self._resolved[header] = self._lookup.get(squash(header), header)
        return name

    def require(self, headers: list[str], what: str) -> None:
        """Refuse input that lacks a required column before a single record of it is published."""
        present = {self.field(header) for header in headers} | set(self.defaults) | set(self.templates)
        missing = [field for field in self.required if field not in present]
        if missing:
            wanted = "; ".join(f"{field} ({' / '.join(self._headers.get(field, [field]))})" for field in missing)
            raise ExportRejected(
                f"{what} lacks required column(s) for {self.entity}: {wanted}. Found columns: {', '.join(headers)}",
                "missing_columns",
            )
        found = {squash(header) for header in headers}
        for field, template in self.templates.items():
            absent = [header for header in template.headers if squash(header) not in found]
            if absent:
                raise ExportRejected(
                    f"{what} lacks column(s) {', '.join(absent)} that the mapping composes {field} from "
                    f"({template.text!r}); fix the export or the template. Found columns: {', '.join(headers)}",
                    "missing_columns",
                )

    @property
    def fields(self) -> list[str]:
        """The canonical fields an export can fill: the standard headers' and the mapping's, in the model's order."""
        named = {*self._headers, *self.defaults, *self.templates}
        return [name for name in CANONICAL_MODELS[self.entity].model_fields if name in named]

    def ignored(self, headers: list[str]) -> list[str]:
        """The headers whose cells no record takes: they name no field of the entity, or a field a template composes.

        A column a template reads, or the department's row id (``record_id``), is not ignored.
        """
        known = set(CANONICAL_MODELS[self.entity].model_fields)
        read = {squash(header) for template in self.templates.values() for header in template.headers}
        if self.record_id:
            read.add(squash(self.record_id))
        return [
            header
            for header in headers
            if squash(header) not in read and (self.field(header) not in known or self.field(header) in self.templates)
        ]

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """Rename one row's keys to field names and its values to text; compose templated fields; fill defaults.

        When two columns name one field (住址 and 地址, say), an empty cell does not hide a filled one.
        """
        payload: dict[str, Any] = {}
        cells: dict[str, Any] = {}
        for header, value in row.items():
            if header is None:
                continue
            name, text = self.field(str(header)), cell_value(value)
            cells[squash(str(header))] = text
            if name not in payload or not blank(text):
                payload[name] = text
        for name, template in self.templates.items():
            payload[name] = template.render(cells)
        for name, value in self.defaults.items():
            if blank(payload.get(name)):
                payload[name] = value
        return payload
