"""A grid case's whole story: as it stands, its reports, its steps, what it concerns, its enforcement.

``gridhub show event ID`` prints it and the screen's drill-down shows it, from the same SQL, run as
the caller (masked views for a masked role). What these builders interpolate is a case id that matched
:data:`CASE_ID`, always through :func:`sql_literal`: never free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from foundation.errors import InputRejected
from foundation.settings import Settings
from warehouse.reader import query_rows
from warehouse.sql import sql_literal

CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,95}")
"""What a case id (its opening report's id) or a report id may look like; anything else is refused before SQL."""


class CaseNotFound(InputRejected):
    """No case answers to the id: neither a case nor a report of one."""

    reason_code = "not_found"


def case_sql(case_id: str) -> str:
    """One case as it stands."""
    return f"SELECT * FROM cases WHERE case_id = {sql_literal(case_id)}"


def case_reports_sql(case_id: str) -> str:
    """The reports filed into one case, first report first."""
    return (
        "SELECT event_id, category_name, description, reported_at, reporter_id, status, photo_refs, "
        "subject_id_number, subject_uscc, object_id, place_id, source "
        f"FROM events WHERE case_id = {sql_literal(case_id)} ORDER BY reported_at"
    )


def case_transitions_sql(case_id: str) -> str:
    """Every step of one case, in order."""
    return (
        'SELECT seq, from_status, to_status, action, actor, actor_role, "at", due_at, note, photo_ref '
        f"FROM case_transitions WHERE case_id = {sql_literal(case_id)} ORDER BY seq"
    )


def case_involved_sql(case_id: str) -> str:
    """The people, organisations, objects and places the case's reports concern, as golden records."""
    return (
        "SELECT DISTINCT to_kind AS kind, to_key AS key, evidence FROM entity_links WHERE from_kind = 'event' "
        f"AND from_key IN (SELECT event_id FROM events WHERE case_id = {sql_literal(case_id)}) ORDER BY kind, key"
    )


def case_enforcement_sql(case_id: str) -> str:
    """The enforcement cases the bureau opened for this grid case, with their stage and party."""
    return (
        "SELECT case_no, status, power_code, power_name, squad, officer_id, party_kind, party_name, "
        "filed_at, decided_at, closed_at, decision, on_time "
        f"FROM enforcement_case_facts WHERE grid_case_id = {sql_literal(case_id)} ORDER BY filed_at"
    )


LINEAGE_COLUMNS = "source, source_record_id, run_id, topic, partition, message_offset, record_uid, loaded_at"
"""Where a row came from: the source record, the run, the Kafka message that wrote it, and when."""


def case_lineage_sql(case_id: str) -> str:
    """Where the case's row, its reports and its steps came from, each to the message that wrote it."""
    case = sql_literal(case_id)
    return (
        f"SELECT 'case' AS row_of, case_id AS id, {LINEAGE_COLUMNS} FROM cases WHERE case_id = {case} "
        f"UNION ALL SELECT 'report', event_id, {LINEAGE_COLUMNS} FROM events WHERE case_id = {case} "
        f"UNION ALL SELECT 'step', CAST(seq AS VARCHAR), {LINEAGE_COLUMNS} FROM case_transitions "
        f"WHERE case_id = {case} ORDER BY row_of, topic, partition, message_offset"
    )


def _owning_case_sql(event_id: str) -> str:
    return (
        f"SELECT case_id FROM cases WHERE case_id = {sql_literal(event_id)} "
        f"UNION ALL SELECT case_id FROM events WHERE event_id = {sql_literal(event_id)} AND case_id IS NOT NULL "
        "LIMIT 1"
    )


@dataclass
class CaseStory:
    """Everything about one grid case, each part as rows of column → value."""

    case_id: str
    case: dict[str, Any]
    reports: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    involved: list[dict[str, Any]] = field(default_factory=list)
    enforcement: list[dict[str, Any]] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)


def case_story(settings: Settings, event_id: str) -> CaseStory:
    """The story of the case ``event_id`` names: a case id, or the id of any report filed into a case."""
    wanted = event_id.strip()
    if not CASE_ID.fullmatch(wanted):
        raise CaseNotFound(f"{event_id[:100]!r} is not a case or report id (letters, digits, _ . : -)")
    owner = query_rows(settings, _owning_case_sql(wanted))
    if not owner:
        raise CaseNotFound(
            f"the warehouse holds no case or report {wanted!r} (yet); list cases with "
            'gridhub sql "SELECT case_id, status, category_name FROM cases ORDER BY reported_at DESC LIMIT 20"'
        )
    case_id = str(owner[0]["case_id"])
    return CaseStory(
        case_id=case_id,
        case=query_rows(settings, case_sql(case_id))[0],
        reports=query_rows(settings, case_reports_sql(case_id)),
        steps=query_rows(settings, case_transitions_sql(case_id)),
        involved=query_rows(settings, case_involved_sql(case_id)),
        enforcement=query_rows(settings, case_enforcement_sql(case_id)),
        lineage=query_rows(settings, case_lineage_sql(case_id)),
    )
