"""Turn messages from the sink's topics into warehouse rows, or into the sink's own rejects (pure, no I/O).

Every message the sink polls ends as rows or as rejects, never as an exception: one that is not
what its topic carries (not JSON, a kind or field the topic does not have, a list where text
belongs, a batch without fingerprints) is refused here at once, and one the warehouse later
cannot store is refused by the sink through :func:`refuse` once it has failed alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import pyarrow as pa
from pydantic import BaseModel, ValidationError

from foundation.errors import InputRejected
from schemas.batches import PROVENANCE_COLUMNS, BatchFormatError, decode_batch
from schemas.decisions import MatchDecision
from schemas.records import CANONICAL_MODELS, Canonical
from schemas.rejects import Reject, describe_error
from schemas.runs import RunNotice
from schemas.topics import CANONICAL_BATCHES, DUPLICATES, MATCH_DECISIONS, REJECTS, RUNS
from schemas.upgrades import read_record, read_reject
from schemas.versions import UnknownContractVersion
from warehouse.resolution_rules import ENTITIES
from warehouse.writer import Batch, Origin, UnwritableBatch

LINEAGE = ("source", "source_record_id", "record_uid", "fingerprint", "received_at", "run_id")
"""What every stored row keeps of the record that set it; with the place of its message, its lineage."""
UNDECODABLE = "undecodable_at_sink"
UNWRITABLE = UnwritableBatch.reason_code
_REASONS = {
    UNDECODABLE: "the warehouse sink could not read this message ({problem}); fix what published it to "
    "{topic} and publish the record again",
    UNWRITABLE: "the warehouse could not store this message even on its own ({problem}); fix the record "
    "and publish it again, or report a gridhub bug if gridhub published it to {topic}",
    UnknownContractVersion.reason_code: "the warehouse sink does not read this message on {topic}: {problem}",
}
_PROVENANCE = ("record_uid", "source", "source_record_id", "entity", "run_id")
_LONGEST_ID = 200
"""Longest provenance value a sink reject takes over from the message it refuses: an id, not a payload."""
_OUTCOMES = ("new", "update")


ModelT = TypeVar("ModelT", bound=BaseModel)


class Undecodable(InputRejected):
    """A message that is not what its topic carries."""

    reason_code = UNDECODABLE


def _json_type(value: Any) -> str:
    """The JSON type of a decoded JSON value (``bool`` before ``int``: True is an int in Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _allowed(schema: Mapping[str, Any]) -> frozenset[str]:
    """The JSON types a JSON Schema property allows (an integer is a number too); empty: anything."""
    types: set[str] = set()
    for option in (schema, *schema.get("anyOf", ())):
        if "type" in option:
            types.add(option["type"])
        types.update(_json_type(value) for value in option.get("enum", ()))
        if "const" in option:
            types.add(_json_type(option["const"]))
    if "number" in types:
        types.add("integer")
    return frozenset(types)


Shape = dict[str, tuple[frozenset[str], frozenset[str]]]
"""A kind's fields, each with the JSON types it allows and, for a list, those of its items."""


def _shape(model: type[Canonical]) -> Shape:
    """What a canonical message's record may hold: the model's fields as the worker dumps them."""
    properties = model.model_json_schema(mode="serialization")["properties"]
    return {name: (_allowed(schema), _allowed(schema.get("items", {}))) for name, schema in properties.items()}


SHAPES: dict[str, Shape] = {kind: _shape(model) for kind, model in CANONICAL_MODELS.items()}


def _object(document: Any, what: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise Undecodable(f"{what} must be a JSON object, not {_json_type(document)}")
    return document


def _check_record(kind: str, record: dict[str, Any]) -> None:
    """Refuse fields the kind does not have and values of the wrong JSON type, with the field's name.

    DuckDB would refuse an unknown column only at the write, and would store a list given for a
    text column as its printed form; neither may reach the warehouse. Whether a text is a valid
    time or date is left to DuckDB, which refuses it at the write.
    """
    shape = SHAPES[kind]
    unknown = sorted(set(record) - set(shape))
    if unknown:
        raise Undecodable(f"{kind} records have no field {', '.join(unknown)}; known: {', '.join(shape)}")
    for name, value in record.items():
        allowed, items = shape[name]
        found = _json_type(value)
        if value is not None and allowed and found not in allowed:
            raise Undecodable(f"{kind} field {name} holds {found} where {_named(allowed)} belongs")
        if found == "array" and items and any(_json_type(item) not in items for item in value):
            raise Undecodable(f"{kind} field {name} holds items that are not {_named(items)}")


def _named(types: frozenset[str]) -> str:
    """JSON types as a reader expects them: a number (an integer is one too), text; null goes without saying."""
    shown = types - {"null"} - ({"integer"} if "number" in types else set())
    return " or ".join(sorted(shown))


def _validated(model: type[ModelT], value: bytes, read: Callable[[bytes], ModelT] | None = None) -> ModelT:
    """A message read by its contract's model (or ``read``, which upgrades); its errors condensed into one line."""
    try:
        return (read or model.model_validate_json)(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'message'}: {error['msg']}" for error in exc.errors()
        )
        raise Undecodable(f"not a {model.__name__}: {problems}") from exc


def _texts(meta: dict[str, Any], names: Iterable[str]) -> None:
    """Provenance values are text (or absent): anything else would be stored as its printed form."""
    for name in names:
        if meta.get(name) is not None and not isinstance(meta[name], str):
            raise Undecodable(f"meta.{name} must be text, not {_json_type(meta[name])}")


def _record_uid(meta: dict[str, Any]) -> str:
    uid = meta.get("record_uid")
    if not isinstance(uid, str) or not uid:
        raise Undecodable("meta.record_uid must be the record's uid (text)")
    return uid


def _intake(meta: dict[str, Any], outcome: str, reason_code: str | None, now: datetime) -> dict[str, Any]:
    return {
        "record_uid": meta["record_uid"],
        "run_id": meta.get("run_id"),
        "source": meta.get("source"),
        "source_record_id": meta.get("source_record_id"),
        "entity": meta.get("entity"),
        "outcome": outcome,
        "reason_code": reason_code,
        "received_at": meta.get("received_at"),
        "processed_at": meta.get("processed_at"),
        "written_at": now,
    }


def decode_message(topic: str, partition: int, offset: int, value: bytes, now: datetime | None = None) -> Batch:
    """One message as a batch of its own, holding the offset after it; a message it cannot read, as its reject.

    The sink weighs each message before it joins a transaction, and the offsets a transaction
    stores are then exactly those of the messages it holds.
    """
    origin = Origin(topic, partition, offset, value)
    now = now or datetime.now(UTC)
    batch = Batch(offsets={(topic, partition): offset + 1}, origins=[origin])
    try:
        _add(batch, origin, now)
    except UnknownContractVersion as exc:
        return refuse(origin, exc.reason_code, exc, now)
    except Exception as exc:  # noqa: BLE001 - whatever a message holds, reading it must not stop the sink
        return refuse(origin, UNDECODABLE, exc, now)
    return batch


def decode_all(origins: Iterable[Origin]) -> Batch:
    """Messages decoded again into one batch, in the order given (a part of a batch that failed)."""
    batch = Batch()
    for origin in origins:
        batch.absorb(decode_message(origin.topic, origin.partition, origin.offset, origin.value))
    return batch


def _add(batch: Batch, origin: Origin, now: datetime) -> None:
    """Decode one message into the batch's rows and ledger entries, raising on anything its topic does not carry."""
    topic, value = origin.topic, origin.value
    if topic == CANONICAL_BATCHES:
        part = decode_batch(value)
        if part.kind not in ENTITIES:
            raise Undecodable(f"batches of {part.kind} records are not stored; known: {', '.join(ENTITIES)}")
        if "fingerprint" not in part.rows.column_names or not pa.types.is_string(part.rows.column("fingerprint").type):
            raise Undecodable("a canonical batch carries a text fingerprint column, for the sink's dedup")
        rows = part.rows
        for name, value in _place(origin).items():
            rows = rows.append_column(name, pa.repeat(pa.scalar(value, _PLACE_TYPES[name]), rows.num_rows))
        batch.bulk.setdefault(part.kind, []).append(replace(part, rows=rows))
        return
    if topic == REJECTS:
        reject = _validated(Reject, value, read_reject).model_dump(mode="json")
        batch.rejects.append(reject)
        batch.intake.append(
            _intake({**reject, "processed_at": reject["rejected_at"]}, "rejected", reject["reason_code"], now)
        )
        return
    if topic == MATCH_DECISIONS:
        batch.decisions.append(_validated(MatchDecision, value).model_dump())
        return
    if topic == RUNS:
        batch.runs.append({**_validated(RunNotice, value).model_dump(), "noticed_at": now})
        return
    document = _object(json.loads(value), "the message")
    meta = _object(document.get("meta"), "meta")
    _texts(meta, (*_PROVENANCE, "fingerprint"))
    if topic == DUPLICATES:
        _record_uid(meta)
        batch.intake.append(_intake(meta, "duplicate", None, now))
        return
    record = _object(document.get("record"), "record")
    kind = topic.removeprefix("canonical.")
    named = meta.get("derived_kind") or meta.get("entity")
    if named != kind:
        raise Undecodable(f"{topic} carries {kind} records; this message names {named!r}")
    record = read_record(kind, record, meta.get("record_version"))
    _check_record(kind, record)
    if not meta.get("derived_kind"):  # a derived record (a case, a transition) is no outcome of a raw record
        _record_uid(meta)
        if meta.get("outcome") not in _OUTCOMES:
            raise Undecodable(f"meta.outcome must be one of {', '.join(_OUTCOMES)}, not {meta.get('outcome')!r}")
        batch.intake.append(_intake(meta, meta["outcome"], None, now))
    batch.entities.setdefault(kind, []).append(
        {**record, **{name: meta.get(name) for name in LINEAGE}, **_place(origin), "loaded_at": now}
    )


_PLACE_TYPES = {"topic": pa.string(), "partition": pa.int32(), "message_offset": pa.int64()}


def _place(origin: Origin) -> dict[str, Any]:
    """Where the message that wrote a row sits, so any row can be traced back to it."""
    return {"topic": origin.topic, "partition": origin.partition, "message_offset": origin.offset}


def refuse(origin: Origin, reason_code: str, error: BaseException, now: datetime | None = None) -> Batch:
    """A message as the sink's own rejects, each with its ledger entry, holding the offset after it.

    Each record the message still names is refused under its own uid, so the ledger accounts for it
    (and ``gridhub ingest --wait`` sees its run complete): every row of a batch that still reads,
    the record of a per-record message or of a reject. A message that names none is known by its
    place (:meth:`Reject.at`). Derived records (cases, transitions) carry the uid of the report
    that caused them, which has its own outcome, so they are known by their place too.
    """
    now = now or datetime.now(UTC)
    problem = str(error) if isinstance(error, InputRejected) else describe_error(error)
    reason = _REASONS[reason_code].format(topic=origin.topic, problem=problem)
    batch = Batch(offsets={(origin.topic, origin.partition): origin.offset + 1}, origins=[origin])
    for provenance, payload in _records(origin):
        reject = Reject.build("sink", reason_code, reason, payload, **provenance, rejected_at=now, error=error).at(
            origin.topic, origin.partition, origin.offset
        )
        batch.rejects.append(reject.model_dump(mode="json"))
        batch.intake.append(_intake(reject.model_dump(), "rejected", reason_code, now))
    return batch


def _records(origin: Origin) -> list[tuple[dict[str, str], bytes | dict[str, Any]]]:
    """The provenance and payload of each record a refused message names (one without provenance if none)."""
    if origin.topic == CANONICAL_BATCHES:
        try:
            part = decode_batch(origin.value)
        except (BatchFormatError, UnknownContractVersion):
            return [({}, origin.value)]
        common = {"source": part.source, "entity": part.kind, **({"run_id": part.run_id} if part.run_id else {})}
        rows = part.rows.to_pylist()
        return [({**common, **{name: row[name] for name in PROVENANCE_COLUMNS}}, row) for row in rows] or [
            ({}, origin.value)
        ]
    try:
        document = json.loads(origin.value)
    except ValueError:
        return [({}, origin.value)]
    meta = document if origin.topic == REJECTS else document.get("meta") if isinstance(document, dict) else None
    if not isinstance(meta, dict) or meta.get("derived_kind"):
        return [({}, origin.value)]
    provenance = {
        name: meta[name] for name in _PROVENANCE if isinstance(meta.get(name), str) and len(meta[name]) <= _LONGEST_ID
    }
    return [(provenance, origin.value)]
