"""``gridhub review``: the weak matches waiting for a person, and that person's decisions.

A decision is checked against the warehouse first (the copy exists, has no strong
key, and the entity to merge into exists), then sent through Kafka to the sink,
the warehouse's only writer; the command waits until the warehouse shows it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from foundation.access import require_role
from foundation.errors import InputRejected, RetryableError
from foundation.settings import Settings
from gridhub.running import hub_publisher
from schemas.decisions import MatchDecision
from warehouse.profile import labels_sql
from warehouse.reader import query, whoami
from warehouse.resolution_rules import ENTITIES
from warehouse.sql import sql_literal


class ReviewError(InputRejected):
    """A decision that cannot apply; the message says why."""

    reason_code = "decision_refused"


def pending_sql(kind: str | None) -> str:
    """The review list, strongest candidates first, with each candidate's name."""
    where = f"WHERE r.kind = {sql_literal(kind)}" if kind else ""
    return (
        f"WITH labels AS ({labels_sql(tuple(ENTITIES))}) "
        f"SELECT r.kind, r.source, r.source_record_id, r.candidate_key, labels.label AS candidate, r.score, r.detail "
        f"FROM match_review r LEFT JOIN labels ON labels.kind = r.kind AND labels.key = r.candidate_key {where} "
        f"ORDER BY r.score DESC, r.kind, r.source, r.source_record_id"
    )


def _count(settings: Settings, sql: str) -> int:
    return int(query(settings, sql)["rows"][0][0])


def _check(settings: Settings, decision: MatchDecision) -> None:
    entity = ENTITIES[decision.kind]
    copy = (
        f"FROM {entity.sources_table} WHERE source = {sql_literal(decision.source)} "
        f"AND source_record_id = {sql_literal(decision.source_record_id)}"
    )
    if not _count(settings, f"SELECT count(*) {copy}"):
        raise ReviewError(f"no {decision.kind} copy {decision.source}/{decision.source_record_id} in the warehouse")
    if _count(settings, f"SELECT count(*) {copy} AND match_key IS NOT NULL"):
        raise ReviewError(
            f"{decision.source}/{decision.source_record_id} carries its own key, which decides its entity; "
            "correct the record at its source instead"
        )
    target = decision.entity_key
    if target and not _count(
        settings, f"SELECT count(*) FROM {entity.golden_table} WHERE {entity.key_column} = {sql_literal(target)}"
    ):
        raise ReviewError(f"no {decision.kind} {target!r} to merge into; `gridhub review` lists the candidates")


def decide(settings: Settings, decision: MatchDecision, timeout_s: float = 60) -> str:
    """Check, send and wait for one decision; return the entity the copy now belongs to.

    Only command-centre staff decide (they see the personal data a decision rests on): the hub
    confirms the token's role before anything is sent.
    """
    require_role(whoami(settings), "commander")
    _check(settings, decision)
    publisher = hub_publisher(settings, "review")
    try:
        publisher.acknowledged([publisher.decide(decision)], "sending the decision")
    finally:
        publisher.close()
    applied = (
        f"SELECT entity_key FROM entity_matches WHERE kind = {sql_literal(decision.kind)} "
        f"AND source = {sql_literal(decision.source)} AND source_record_id = {sql_literal(decision.source_record_id)} "
        f"AND method = 'manual' AND matched_at >= {sql_literal(decision.decided_at.isoformat())}"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = query(settings, applied)["rows"]
        if rows:
            return str(rows[0][0])
        time.sleep(0.5)
    raise RetryableError(
        f"the decision was sent but the warehouse has not applied it within {timeout_s:.0f}s; "
        "check that the sink runs (gridhub up) and list the reviews again"
    )


def decision(
    settings: Settings, kind: str, source: str, record_id: str, entity_key: str | None, decided_by: str | None
) -> MatchDecision:
    """A decision made now by the caller (or the person it names): merge when an entity is named, else keep apart."""
    return MatchDecision(
        kind=kind,  # type: ignore[arg-type]
        source=source,
        source_record_id=record_id,
        decision="merge" if entity_key else "separate",
        entity_key=entity_key,
        decided_by=decided_by or whoami(settings).name,
        decided_at=datetime.now(UTC),
    )
