"""``gridhub check``: what each row of a department's export becomes, before anything is published.

The file is opened as ``gridhub ingest`` opens it (:class:`~connectors.exports.ExportFile`: the
reader of its format, the source's column mapping, the required columns) and its rows are mapped
by the same :func:`~connectors.exports.export_rows`; each row then goes through the worker's own
judgement (:meth:`streams.normalise.ReferenceData.normalise`, on the very bytes the per-record lane
would publish, with the routing rules, grid, approval catalogue and enforcement bureau the worker
loads from the same settings). Nothing is published and no hub needs to run.

Rejects come from two places on the ingest path, and both are shown: the connector keeps a line no
reader could make a row of (``unreadable_line``), and the worker refuses a row its canonical model,
routing table, grid or bureau refuses (``invalid_id_number``, ``unknown_category``, ``outside_town``,
``unknown_power``, ...). A file refused as a whole (a required column missing, an unreadable file) is
an error of the whole check, as it is of ``gridhub ingest``.

The judgement is stateless: each row is judged on its own. What depends on what the hub already
holds is not shown: a resend the worker or the sink counts as a duplicate or an update, a report
that joins an open case nearby instead of opening its own, a copy entity resolution merges with
another source's. The sink's warehouse contract is a second net for records that never passed the
worker; a row accepted here passes it.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from connectors.exports import BadLine, ExportFile, export_rows, unreadable
from connectors.exports.columns import EXPORT_ENTITIES, ExportEntity, ExportMappings, load_mappings
from connectors.publisher import make_envelope
from foundation.settings import Settings
from gridhub.cli_common import UsageError
from schemas.records import Event
from schemas.rejects import Reject
from streams.normalise import Accepted, ReferenceData, internal_failure

CHECK_RUN = "check"
"""The run id of the envelopes a check builds: they are never published, so no real run can collide with it."""


@dataclass(frozen=True)
class RowResult:
    """What one row of the export becomes: a canonical record, or a reject with its reason."""

    row: int
    """The row's position among the file's records, 1-based, header excluded (as in ``FILE:N`` record ids)."""
    source_record_id: str
    record: dict[str, Any] | None = None
    """The canonical record as the worker passes it on (``model_dump(mode="json")``), when accepted."""
    reject: Reject | None = None
    line: int | None = None
    """For an unreadable line: its line (or a workbook's row) number in the file."""
    desk: str | None = None
    """For an incident: the desk its work order goes to (its department's, or a squad's)."""
    verify_on_site: bool = False
    """For an incident from a source whose reports wait for a person's check on site before dispatch."""

    @property
    def outcome(self) -> Literal["accepted", "rejected"]:
        """``accepted`` or ``rejected``."""
        return "accepted" if self.record is not None else "rejected"

    def to_json(self) -> dict[str, Any]:
        """The row as one element of ``gridhub check -o json``'s ``rows``."""
        document: dict[str, Any] = {
            "row": self.row,
            "source_record_id": self.source_record_id,
            "outcome": self.outcome,
        }
        if self.line is not None:
            document["line"] = self.line
        if self.record is not None:
            document["record"] = self.record
            if self.desk is not None:
                document["desk"] = self.desk
                document["verify_on_site"] = self.verify_on_site
        if self.reject is not None:
            document["reject"] = {
                "stage": self.reject.stage,
                "reason_code": self.reject.reason_code,
                "reason": self.reject.reason,
            }
        return document


@dataclass
class Tally:
    """Counts over the rows seen so far: outcomes, reject reasons, and canonical fields left empty."""

    fields: list[str]
    accepted: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    empty: Counter[str] = field(default_factory=Counter)

    def add(self, result: RowResult) -> None:
        """Count one row."""
        if result.record is not None:
            self.accepted += 1
            self.empty.update(name for name in self.fields if result.record.get(name) in (None, "", []))
        elif result.reject is not None:
            self.rejected += 1
            self.reasons[result.reject.reason_code] += 1

    @property
    def rows(self) -> int:
        """Rows judged."""
        return self.accepted + self.rejected

    @property
    def empty_fields(self) -> dict[str, int]:
        """Each field some accepted record left empty, in the model's order: in how many records."""
        return {name: self.empty[name] for name in self.fields if self.empty[name]}

    def describe(self) -> str:
        """The counts in words: ``5 rows: 4 accepted, 1 rejected (invalid_id_number 1)``."""
        reasons = ", ".join(f"{code} {count}" for code, count in self.reasons.most_common())
        return f"{self.rows} rows: {self.accepted} accepted, {self.rejected} rejected" + (
            f" ({reasons})" if reasons else ""
        )

    def counts(self) -> dict[str, Any]:
        """Rows by outcome, and rejects by reason code (most frequent first)."""
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "by_reason": dict(self.reasons.most_common()),
        }


@dataclass
class MappingCheck:
    """An export opened for checking: its mapping, its headers, and its rows judged one at a time."""

    export: ExportFile
    source: str
    mapping: str
    """Which mapping applies, in words: the source's entry in the mappings file, or the standard headers."""
    reference: ReferenceData
    tally: Tally = field(init=False)

    def __post_init__(self) -> None:
        self.tally = Tally(self.export.columns.fields)

    @property
    def entity(self) -> ExportEntity:
        """The entity kind the rows are checked as."""
        return self.export.entity

    @property
    def ignored_headers(self) -> list[str]:
        """Headers of the file that no field of the record takes."""
        return self.export.columns.ignored(self.export.headers)

    def results(self) -> Iterator[RowResult]:
        """Each row's outcome, in file order, counted in :attr:`tally` as it is yielded (one pass: the file streams)."""
        for number, item in enumerate(export_rows(self.export), start=1):
            result = self._judge(number, item)
            self.tally.add(result)
            yield result

    def _judge(self, number: int, item: tuple[str, dict[str, Any]] | BadLine) -> RowResult:
        if isinstance(item, BadLine):
            reject = unreadable(self.source, self.export, item, CHECK_RUN)
            return RowResult(number, reject.source_record_id, reject=reject, line=item.number)
        source_record_id, payload = item
        raw = make_envelope(self.source, source_record_id, self.entity, payload, CHECK_RUN).model_dump_json().encode()
        try:
            decision = self.reference.normalise(raw)
        except Exception as exc:  # noqa: BLE001 - the worker keeps such a row as an internal_error reject; so do we
            return RowResult(number, source_record_id, reject=internal_failure(raw, exc).reject)
        if not isinstance(decision, Accepted):
            return RowResult(number, source_record_id, reject=decision.reject)
        record, rules = decision.record, self.reference.rules
        desk = rules.desk_of(record.department or "", record.squad) if isinstance(record, Event) else None
        return RowResult(
            number,
            source_record_id,
            record=record.model_dump(mode="json"),
            desk=desk,
            verify_on_site=desk is not None and self.source in rules.verify_on_site,
        )

    def heading(self) -> dict[str, Any]:
        """What is known before any row is read: the file, its source and entity, the mapping it is read with."""
        return {
            "file": str(self.export.path),
            "source": self.source,
            "entity": self.entity,
            "mapping": self.mapping,
            "stateless": True,
        }

    def summary(self) -> dict[str, Any]:
        """What is known once every row has been judged: ignored headers, empty fields, counts."""
        return {
            "ignored_headers": self.ignored_headers,
            "empty_fields": self.tally.empty_fields,
            "counts": self.tally.counts(),
        }


def check_entity(entity: str) -> ExportEntity:
    """The entity kind, or a usage error naming the kinds the export doors carry."""
    if entity not in EXPORT_ENTITIES:
        raise UsageError(f"--entity must be one of {', '.join(EXPORT_ENTITIES)}, not {entity!r}")
    return entity  # type: ignore[return-value]


def describe_mapping(mappings: ExportMappings, mappings_path: Path, source: str, entity: ExportEntity) -> str:
    """Which mapping a source's export of ``entity`` is read with, in words; a source that looks mistyped is refused.

    A source with no entry in the mappings file is read with the standard headers, as ``gridhub
    ingest`` reads it; but one a letter or two away from a source that has an entry is almost
    surely a typo, which would quietly check the file with the wrong mapping (a new source named
    so close to one needs an entry of its own, even an empty one).
    """
    if not source.strip():
        raise UsageError("--source must name the publishing department, e.g. civil-affairs")
    entries = mappings.root
    if source not in entries:
        near = difflib.get_close_matches(source, list(entries), n=1, cutoff=0.8)
        if near:
            raise UsageError(
                f"unknown source {source!r}: {mappings_path} has no entry for it; did you mean {near[0]!r}? "
                f"(a new source named so close to it needs an entry of its own, even an empty one: '{source}: {{}}')"
            )
        return f"standard headers ({mappings_path} has no entry for {source})"
    if entity not in entries[source]:
        return f"standard headers ({mappings_path} has no {entity} entry for {source})"
    return f"{source}.{entity} in {mappings_path}, then the standard headers"


def open_check(
    settings: Settings,
    path: Path,
    source: str,
    entity: str,
    sheet: str | None = None,
    reference: ReferenceData | None = None,
) -> MappingCheck:
    """Open an export for checking, as ``gridhub ingest`` would open it; refuse what ingest would refuse whole.

    ``settings`` name the mappings file and the reference data (``reference`` given: already loaded).
    """
    kind = check_entity(entity)
    mappings = load_mappings(settings.export_mappings)
    mapping = describe_mapping(mappings, settings.export_mappings, source, kind)
    export = ExportFile(path, kind, mappings.columns_for(source, kind), sheet)
    return MappingCheck(export, source, mapping, reference or ReferenceData.load(settings))
