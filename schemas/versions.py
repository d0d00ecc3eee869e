"""The history of every contract gridhub speaks, and how a document written under an older version is read.

A contract is a record kind (:mod:`schemas.records`), the raw envelope, the bulk lane's batch
(:mod:`schemas.batches`) or the reject (:mod:`schemas.rejects`). Each step of its history says what
changed and upgrades a document of the version before it: a pure function from one JSON document
to another that fills what the older writer could not know, as the current model treats a missing
field. Every document names its version: an envelope its ``schema_version`` and ``payload_version``,
a batch both in its metadata, a canonical message ``meta.record_version``, a reject its
``schema_version``. A document without one is version 1: every gridhub wrote that before versions
were carried, whatever its records held, so each step leaves alone what a later writer already wrote.

A new version is one more :class:`Step` on its contract, with a fixture of the version it replaces
in ``tests/fixtures/contracts/``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from foundation.errors import InputRejected
from schemas.phones import normalise_phone

Document = dict[str, Any]
Upgrade = Callable[[Document], Document]


class UnknownContractVersion(InputRejected):
    """A document of a version this gridhub does not read: newer than it knows, or no version at all.

    ``provenance`` holds what the refused document still says about its record (uid, source, ...),
    so its reject is counted against the record it names.
    """

    reason_code = "unknown_contract_version"

    def __init__(self, reason: str, provenance: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.provenance = dict(provenance or {})


def as_is(document: Document) -> Document:
    """A step that only widened what a document may hold (a new status): older documents read unchanged."""
    return document


def adds(**defaults: Any) -> Upgrade:
    """A step that added fields: an older document gets each with the default the model gives it."""

    def upgrade(document: Document) -> Document:
        return {**copy.deepcopy(defaults), **document}

    return upgrade


def renames(old: str, new: str) -> Upgrade:
    """A step that renamed a field: the value moves to its new name, unless the document has both."""

    def upgrade(document: Document) -> Document:
        if old not in document or new in document:
            return document
        moved = {name: value for name, value in document.items() if name != old}
        return {**moved, new: document[old]}

    return upgrade


def _phone_in_e164(document: Document) -> Document:
    phone = document.get("phone")
    return {**document, "phone": normalise_phone(phone)} if isinstance(phone, str) else document


def _numbered_case(document: Document) -> Document:
    """A case before report_ids and seq: it bears its opening report's id, and ranks below any numbered record."""
    return {"report_ids": [document.get("case_id")], "seq": 1, **document}


@dataclass(frozen=True)
class Step:
    """One version after the first: what it changed, and how a document of the version before is upgraded."""

    change: str
    upgrade: Upgrade = as_is


@dataclass(frozen=True)
class Contract:
    """One contract's versions: 1, then one more per step."""

    name: str
    steps: tuple[Step, ...] = ()

    @property
    def version(self) -> int:
        """The version this gridhub writes."""
        return len(self.steps) + 1

    def read_version(self, value: Any) -> int:
        """The version a document names (None: 1), refused when this gridhub does not read it."""
        version = 1 if value is None else value
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= self.version:
            raise UnknownContractVersion(
                f"{self.name} of contract version {value!r}: this gridhub reads {self.name} versions 1 to "
                f"{self.version}; upgrade gridhub to a release that reads it, or have the publisher write "
                f"version {self.version} (gridhub schemas export writes its JSON Schema)"
            )
        return version

    def upgrade(self, document: Document, version: Any) -> Document:
        """``document``, written under ``version`` (as the document names it), as the current version reads it."""
        for step in self.steps[self.read_version(version) - 1 :]:
            document = step.upgrade(document)
        return document


_STATUSES_EXTENDED = "statuses extended (延期) and cancelled"
_STATUS_PARKED = "status parked (挂账)"
_DERIVED = "the record carries its match_key and address_norm, which the current model derives"

CONTRACTS: dict[str, Contract] = {
    contract.name: contract
    for contract in (
        Contract(
            "person",
            (
                Step(
                    "the resident ID became optional (matched on name, birth date, phone, address), employer_uscc "
                    f"added; {_DERIVED}",
                    adds(employer_uscc=None),
                ),
                Step("phone kept in E.164", _phone_in_e164),
            ),
        ),
        Contract(
            "organisation",
            (
                Step(
                    f"the credit code became optional, legal_representative_id added; {_DERIVED}",
                    adds(legal_representative_id=None),
                ),
                Step("phone kept in E.164", _phone_in_e164),
            ),
        ),
        Contract("place", (Step(_DERIVED),)),
        Contract("object", (Step("the record carries its match_key, which the current model derives"),)),
        Contract(
            "event",
            (
                Step(
                    "coord_system, grid_code, squad and community added",
                    adds(coord_system="wgs84", grid_code=None, squad=None, community=None),
                ),
                Step("case_id added", adds(case_id=None)),
                Step(_STATUSES_EXTENDED),
                Step(
                    "subject_id_number, subject_uscc, object_id and place_id added",
                    adds(subject_id_number=None, subject_uscc=None, object_id=None, place_id=None),
                ),
                Step(_STATUS_PARKED),
            ),
        ),
        Contract(
            "event_update",
            (
                Step("at renamed occurred_at", renames("at", "occurred_at")),
                Step("actor_role added", adds(actor_role=None)),
                Step(f"new_due_at added; {_STATUSES_EXTENDED}", adds(new_due_at=None)),
                Step("department added (a re-dispatch, 改派)", adds(department=None)),
                Step(_STATUS_PARKED),
            ),
        ),
        Contract("application", (Step("window_no and channel added", adds(window_no=None, channel=None)),)),
        Contract("track_point"),
        Contract(
            "case",
            (
                Step(
                    "report_ids and seq added: an older case names its opening report, whose id it bears (the "
                    "reports merged into it stay linked by events.case_id), and ranks below every numbered record",
                    _numbered_case,
                ),
                Step(_STATUSES_EXTENDED),
                Step("handled_by added", adds(handled_by=[])),
                Step(
                    f"escalation_level, escalated_at, review_at and review_alerted added; {_STATUS_PARKED}",
                    adds(escalation_level=0, escalated_at=None, review_at=None, review_alerted=False),
                ),
            ),
        ),
        Contract("case_transition", (Step(_STATUSES_EXTENDED), Step(_STATUS_PARKED))),
        Contract("enforcement_case"),
        Contract(
            "raw_envelope",
            (Step("payload_version added: the version of the payload's kind", adds(payload_version=1)),),
        ),
        Contract(
            "record_batch",
            (Step("payload_version added to the metadata: the version of the rows' kind", adds(payload_version="1")),),
        ),
        Contract(
            "reject",
            (
                Step("stage lifecycle"),
                Step("stages warehouse and sink"),
                Step(
                    "topic, partition, message_offset, error, payload_sha256 and payload_bytes added; payload "
                    "may be null (too large to keep)",
                    adds(
                        topic=None,
                        partition=None,
                        message_offset=None,
                        error=None,
                        payload_sha256=None,
                        payload_bytes=None,
                    ),
                ),
            ),
        ),
    )
}
"""Every contract by name: the record kinds by their ``kind``, then the envelope, the batch and the reject."""
