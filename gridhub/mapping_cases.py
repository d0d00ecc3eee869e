"""``gridhub test``: mapping cases kept as data, run through ``gridhub check``'s code, as ``connect test`` runs
a pipeline's tests.

A case is a folder holding the department's export as it delivers it (any format ``gridhub
ingest`` reads, so a GBK CSV or a workbook stays byte for byte what the department sends) and a
``case.yaml`` saying what it must become::

    description: household register with a mistyped resident ID
    input: households.csv          # the export, beside case.yaml
    source: civil-affairs          # --source: picks the column mapping
    entity: person                 # --entity
    sheet: 人口信息                # optional: the worksheet of an .xlsx export
    mappings: mappings.yaml        # optional: check with this mappings file instead of GRIDHUB_EXPORT_MAPPINGS
    expect:
      rows: 4                      # optional: how many rows the file holds
      records:                     # row -> fields the canonical record must have (a subset of them)
        1: {id_number: "32041119800203002X", gender: F, birth_date: "1980-02-03"}
      rejects:                     # row -> reason code; every rejected row must be listed here
        2: invalid_id_number
      ignored_headers: [备注]      # optional: exactly the headers no field takes
      empty_fields: {phone: 1}     # optional: a field -> in how many records it is empty (fields named only)
      # refused: missing_columns   # instead of the above: the file must be refused as a whole with this code

Rows are numbered as ``gridhub check`` numbers them: the Nth record of the file, header excluded.
A row listed under ``records`` must be accepted with at least those field values (other fields
are not compared; numbers match within 1e-6; besides the record's fields, an incident's ``desk``
and ``verify_on_site`` can be named); a row under ``rejects`` must be refused with that reason
code; any other row must pass. Quote codes and timestamps in YAML (``"0603"``, ``"2026-11-25T10:00:00+08:00"``):
unquoted, YAML reads them as numbers and dates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from foundation.errors import ConfigurationError, GridhubError, InputRejected
from foundation.settings import Settings
from gridhub.cli_common import UsageError
from gridhub.mapping_check import MappingCheck, RowResult, open_check
from schemas.config_file import load_yaml_model
from streams.normalise import ReferenceData

CASE_FILE = "case.yaml"
TOLERANCE = 1e-6
"""How far a number may be from the expected one and still match (coordinates converted between datums)."""


class CaseError(ConfigurationError):
    """A case.yaml that cannot be read or is wrong: the case fails with this line."""


class Expectations(BaseModel):
    """What a case's export must become."""

    model_config = ConfigDict(extra="forbid")
    rows: int | None = Field(default=None, ge=0, description="How many rows the file holds.")
    records: dict[int, dict[str, Any]] = Field(
        default_factory=dict, description="Row -> fields its canonical record must have (a subset)."
    )
    rejects: dict[int, str] = Field(
        default_factory=dict, description="Row -> the reason code it is refused with; every reject is listed."
    )
    ignored_headers: list[str] | None = Field(default=None, description="Exactly the headers no field takes.")
    empty_fields: dict[str, int] | None = Field(
        default=None, description="Field -> in how many accepted records it is empty (the fields named only)."
    )
    refused: str | None = Field(default=None, description="The reason code the file is refused with as a whole.")

    @field_validator("records", "rejects", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        """``rejects:`` with nothing under it (every reject deleted from a list) means none."""
        return {} if value is None else value

    @model_validator(mode="after")
    def _consistent(self) -> Expectations:
        for row in (*self.records, *self.rejects):
            if row < 1:
                raise ValueError(f"rows are numbered from 1 (the first record after the header), not {row}")
        both = sorted(set(self.records) & set(self.rejects))
        if both:
            raise ValueError(f"row(s) {', '.join(map(str, both))} cannot be both a record and a reject")
        if self.refused and (self.records or self.rejects or self.rows is not None):
            raise ValueError("a file refused as a whole has no rows: give refused, or rows, records and rejects")
        return self


class CaseSpec(BaseModel):
    """One case.yaml."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    input: str = Field(description="The export file, relative to the case folder.")
    source: str
    entity: str
    sheet: str | None = None
    mappings: str | None = Field(default=None, description="A mappings file, relative to the case folder.")
    expect: Expectations


@dataclass
class CaseResult:
    """One case's verdict: what differed (nothing when it passed) and, when the file was read, its counts."""

    name: str
    folder: Path
    description: str = ""
    problems: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def passed(self) -> bool:
        """Whether everything the case expects held."""
        return not self.problems


def discover(folder: Path) -> list[Path]:
    """The case folders: ``folder`` itself when it holds a case.yaml, else every folder under it that does."""
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}")
    if (folder / CASE_FILE).is_file():
        return [folder]
    found = sorted({path.parent for path in folder.rglob(CASE_FILE)})
    if not found:
        raise UsageError(f"no {CASE_FILE} in {folder} or any folder under it; each case is a folder with one")
    return found


def run_case(folder: Path, settings: Settings, reference: ReferenceData, name: str | None = None) -> CaseResult:
    """Check the case's export as ``gridhub check`` would and compare what it becomes with what the case expects."""
    result = CaseResult(name or folder.name, folder)
    try:
        spec = load_yaml_model(folder / CASE_FILE, CaseSpec, "mapping case", CaseError)
    except CaseError as exc:
        result.problems.append(str(exc))
        return result
    result.description = spec.description
    if spec.mappings:
        settings = settings.model_copy(update={"export_mappings": folder / spec.mappings})
    try:
        check = open_check(settings, folder / spec.input, spec.source, spec.entity, spec.sheet, reference)
        rows = list(check.results())
    except GridhubError as exc:
        code = exc.reason_code if isinstance(exc, InputRejected) else "configuration"
        if spec.expect.refused != code:
            wanted = f"expected {spec.expect.refused}, but " if spec.expect.refused else ""
            result.problems.append(f"{wanted}the file was refused as a whole ({code}): {exc}")
        result.summary = f"refused as a whole ({code})"
        return result
    result.summary = check.tally.describe()
    if spec.expect.refused:
        result.problems.append(f"expected the file refused as a whole ({spec.expect.refused}), but it was read")
    result.problems.extend(differences(spec.expect, rows, check))
    return result


def differences(expect: Expectations, rows: list[RowResult], check: MappingCheck) -> list[str]:
    """Every way the rows differ from what the case expects, one readable line each, in row order."""
    found: dict[int, list[str]] = {}
    by_row = {row.row: row for row in rows}

    def note(row: int, text: str) -> None:
        found.setdefault(row, []).append(f"row {row}: {text}")

    for number, fields in expect.records.items():
        got = by_row.get(number)
        if got is None:
            note(number, f"expected a record, but the file has only {len(rows)} rows")
        elif got.record is None:
            note(number, f"expected a record, got reject {_reason(got)}")
        else:
            actual = _comparable(got)
            for name, wanted in fields.items():
                if name not in actual:
                    note(number, f"{name}: not a field of {check.entity} records ({', '.join(actual)})")
                elif not _same(wanted, actual[name]):
                    note(number, f"{name}: {_expected(wanted, actual[name])}")
    for number, code in expect.rejects.items():
        got = by_row.get(number)
        if got is None:
            note(number, f"expected reject {code}, but the file has only {len(rows)} rows")
        elif got.reject is None:
            note(number, f"expected reject {code}, got a record ({got.source_record_id})")
        elif got.reject.reason_code != code:
            note(number, f"expected reject {code}, got {_reason(got)}")
    for got in rows:
        if got.reject is not None and got.row not in expect.rejects:
            note(got.row, f"rejected {_reason(got)}, but the case expects it to pass")
    problems = [line for number in sorted(found) for line in found[number]]
    if expect.rows is not None and expect.rows != len(rows):
        problems.append(f"rows: expected {expect.rows}, the file has {len(rows)}")
    if expect.ignored_headers is not None and sorted(expect.ignored_headers) != sorted(check.ignored_headers):
        problems.append(f"ignored_headers: {_expected(expect.ignored_headers, check.ignored_headers)}")
    empty = check.tally.empty_fields
    for name, count in (expect.empty_fields or {}).items():
        if empty.get(name, 0) != count:
            problems.append(f"empty_fields: {name}: expected empty in {count} records, got {empty.get(name, 0)}")
    return problems


def _reason(row: RowResult) -> str:
    assert row.reject is not None
    return f"{row.reject.reason_code} ({row.reject.reason})"


def _comparable(row: RowResult) -> dict[str, Any]:
    """The record's fields, and an incident's desk, as a case may name them."""
    assert row.record is not None
    if row.desk is None:
        return row.record
    return {**row.record, "desk": row.desk, "verify_on_site": row.verify_on_site}


def _same(wanted: Any, actual: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return wanted is actual
    if isinstance(wanted, int | float) and isinstance(actual, int | float):
        return abs(wanted - actual) <= TOLERANCE
    if isinstance(wanted, date | datetime):
        return wanted.isoformat() == actual
    return bool(wanted == actual)


def _show(value: Any) -> str:
    return json.dumps(value.isoformat() if isinstance(value, date | datetime) else value, ensure_ascii=False)


def _expected(wanted: Any, actual: Any) -> str:
    """``expected X, got Y``, with a hint when YAML read the expected value as something other than text."""
    typed = isinstance(wanted, int | float | date | datetime) and not isinstance(wanted, bool)
    hint = " (case.yaml gives no text here: quote the value, YAML reads it as a number or a date)"
    return f"expected {_show(wanted)}, got {_show(actual)}{hint if typed and isinstance(actual, str) else ''}"
