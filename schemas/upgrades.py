"""Read what any gridhub or publisher wrote, under any contract version this one knows, as the current contracts.

The steps of :mod:`schemas.versions` upgrade the document; what the current model derives (a
match key, a normalised address) it derives again from the upgraded document. A version this
gridhub does not read raises :class:`~schemas.versions.UnknownContractVersion`, which says what to do.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from schemas.records import CANONICAL_MODELS, ENTITY_KINDS, RawEnvelope
from schemas.rejects import Reject
from schemas.versions import CONTRACTS, Document, UnknownContractVersion

_OBJECT = TypeAdapter(dict[str, Any])
_PROVENANCE = ("record_uid", "source", "source_record_id", "entity", "run_id")


def read_envelope(raw: bytes | str) -> RawEnvelope:
    """A raw message's envelope, its payload upgraded to the current version of its kind.

    What is no JSON object, or no envelope, raises pydantic's ``ValidationError`` as the model would.
    """
    document = _OBJECT.validate_json(raw)
    try:
        envelope = CONTRACTS["raw_envelope"].upgrade(document, document.get("schema_version"))
        kind, payload = envelope.get("entity"), envelope.get("payload")
        if kind in ENTITY_KINDS and isinstance(payload, dict):  # any other kind or payload is the model's to refuse
            contract = CONTRACTS[kind]
            payload = contract.upgrade(payload, envelope.get("payload_version"))
            envelope = {
                **envelope,
                "schema_version": CONTRACTS["raw_envelope"].version,
                "payload": payload,
                "payload_version": contract.version,
            }
    except UnknownContractVersion as exc:
        provenance = {name: document[name] for name in _PROVENANCE if isinstance(document.get(name), str)}
        raise UnknownContractVersion(str(exc), provenance) from exc
    return RawEnvelope.model_validate(envelope)


def read_record(kind: str, record: Document, version: Any) -> Document:
    """A canonical record (as a canonical topic carries it) of ``version`` as the current version holds it.

    A record of the current version is returned as it is. An older one is upgraded, and what the
    current model derives (a match key, a normalised address) is derived again from it; it is not
    validated again: the sink checks what a canonical topic carries as it does for any record.
    """
    contract = CONTRACTS[kind]
    if contract.read_version(version) == contract.version:
        return record
    upgraded = contract.upgrade(record, version)
    model = CANONICAL_MODELS[kind]
    derived = model.model_construct(**upgraded)
    return {**upgraded, **{name: getattr(derived, name) for name in model.model_computed_fields}}


def read_reject(raw: bytes | str) -> Reject:
    """A reject from the ``rejects`` topic, of any version this gridhub reads."""
    document = _OBJECT.validate_json(raw)
    return Reject.model_validate(CONTRACTS["reject"].upgrade(document, document.get("schema_version")))
