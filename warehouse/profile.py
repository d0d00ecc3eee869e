"""Everything the warehouse knows about one person, organisation, place or object.

`gridhub show` prints this: the golden record with each field's source, the source
copies behind it, the links to the other kinds, and any weak matches waiting for a
person to decide. Each part is one read-only query, so it works against a running
sink and against the file alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from foundation.errors import InputRejected
from foundation.settings import Settings
from schemas.address import normalise_address
from schemas.identity import InvalidCode, normalise_resident_id, normalise_uscc
from warehouse.reader import query_rows
from warehouse.resolution_rules import ENTITIES, Entity
from warehouse.sql import sql_literal

LABELS: dict[str, tuple[str, str, str]] = {
    "person": ("people", "person_key", "name"),
    "organisation": ("organisations", "organisation_key", "name"),
    "place": ("places", "place_key", "coalesce(name, address)"),
    "object": ("objects", "object_key", "name"),
    "event": ("events", "event_id", "category_name || ': ' || description"),
    "application": ("applications", "application_id", "coalesce(item_name, item_code) || ' (' || status || ')'"),
}
"""How to name the other end of a link: table, key column, label expression."""


def labels_sql(kinds: tuple[str, ...] = tuple(LABELS)) -> str:
    """A (kind, key, label) row for every entity of ``kinds``: how listings name what they point at."""
    return " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, {LABELS[kind][1]} AS key, {LABELS[kind][2]} AS label FROM {LABELS[kind][0]}"
        for kind in kinds
    )


class EntityNotFound(InputRejected):
    """No entity answers to the key; the message says what was tried."""

    reason_code = "not_found"


@dataclass
class Profile:
    """One entity's golden record, lineage, copies, links and pending reviews."""

    kind: str
    key: str
    lineage: list[dict[str, Any]] = field(default_factory=list)
    copies: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)


def _strong_form(kind: str, key: str) -> str:
    """Accept a key as people type it (lower-case x, spaces); fall back to the text as given."""
    normalise = {"person": normalise_resident_id, "organisation": normalise_uscc}.get(kind)
    if normalise is None:
        return key.strip()
    try:
        return normalise(key)
    except InvalidCode:
        return key.strip()


def _resolve_key(settings: Settings, entity: Entity, key: str) -> str:
    """The entity key for what the user typed: an entity key, any source's own id of it, or a place's address."""
    wanted = sql_literal(_strong_form(entity.kind, key))
    found = query_rows(
        settings,
        f"SELECT {entity.key_column} AS key FROM {entity.golden_table} WHERE {entity.key_column} = {wanted} "
        f"UNION SELECT m.entity_key FROM entity_matches m JOIN {entity.sources_table} s "
        f"  ON m.kind = '{entity.kind}' AND m.source = s.source AND m.source_record_id = s.source_record_id "
        f"WHERE s.source_record_id = {wanted} OR s.{entity.model.key_field} = {wanted}",
    )
    address = normalise_address(key) if entity.kind == "place" else None
    if address and not found:
        found = query_rows(settings, f"SELECT place_key AS key FROM places WHERE address_norm = {sql_literal(address)}")
    keys = sorted({row["key"] for row in found})
    if not keys:
        raise EntityNotFound(f"no {entity.kind} with key or source id {key!r} in the warehouse")
    if len(keys) > 1:
        raise EntityNotFound(f"{key!r} names {len(keys)} {entity.kind} entities: {', '.join(keys)}; pick one")
    return keys[0]


def entity_profile(settings: Settings, kind: str, key: str) -> Profile:
    """Gather one entity's profile from the warehouse."""
    entity = ENTITIES[kind]
    resolved = _resolve_key(settings, entity, key)
    target = sql_literal(resolved)
    profile = Profile(kind=kind, key=resolved)
    profile.lineage = query_rows(
        settings,
        f"SELECT field, value, source, observed_at FROM field_lineage "
        f"WHERE kind = '{kind}' AND entity_key = {target} ORDER BY field",
    )
    profile.copies = query_rows(
        settings,
        f"SELECT m.source, m.source_record_id, m.method, m.confidence, s.received_at, s.run_id, s.topic, "
        f"  s.partition, s.message_offset, s.record_uid "
        f"FROM entity_matches m JOIN {entity.sources_table} s ON m.source = s.source "
        f"  AND m.source_record_id = s.source_record_id "
        f"WHERE m.kind = '{kind}' AND m.entity_key = {target} ORDER BY s.received_at, m.source",
    )
    profile.links = query_rows(
        settings,
        f"WITH labels AS ({labels_sql()}) "
        f"SELECT l.relation, l.direction, l.other_kind, l.other_key, labels.label, l.evidence "
        f"FROM linked_to('{kind}', {target}) l LEFT JOIN labels "
        f"  ON labels.kind = l.other_kind AND labels.key = l.other_key "
        f"ORDER BY l.relation, l.other_kind, l.other_key",
    )
    profile.reviews = query_rows(
        settings,
        f"SELECT source, source_record_id, candidate_key, score, detail FROM match_review "
        f"WHERE kind = '{kind}' AND (candidate_key = {target} OR '~' || source || ':' || source_record_id = {target}) "
        f"ORDER BY score DESC",
    )
    profile.versions = query_rows(
        settings,
        f"SELECT valid_from, valid_to, source_count, sources FROM {entity.golden_table}_history "
        f"WHERE {entity.key_column} = {target} ORDER BY valid_from",
    )
    return profile
