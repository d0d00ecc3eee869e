"""Turn the bytes of one raw message into a canonical record or a reject.

Pure functions, no Kafka: the agent hands over the message bytes and gets back
exactly one :class:`Accepted` or :class:`Rejected`. Decoding happens here rather
than in Faust's serializer because a value Faust fails to decode is acknowledged
before any agent sees it, which would drop it silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydantic import ValidationError

from foundation.settings import Settings
from schemas.approvals import ApprovalCatalogue, NotInCatalogue, load_catalogue
from schemas.enforcement import Bureau, CaseFileRefused, load_bureau
from schemas.grid import Grid, to_wgs84
from schemas.identity import InvalidCode
from schemas.records import (
    CANONICAL_MODELS,
    DERIVED_KINDS,
    Application,
    Canonical,
    EnforcementCase,
    Event,
    PatrolPoint,
    Place,
    RawEnvelope,
)
from schemas.rejects import Reject, RejectStage
from schemas.upgrades import read_envelope
from schemas.versions import UnknownContractVersion
from streams.routing import Category, RoutingRules, load_rules


@dataclass(frozen=True)
class Accepted:
    """A valid canonical record, with what dedup and routing need to know."""

    envelope: RawEnvelope
    record: Canonical
    fingerprint: str
    category: Category | None = None

    @property
    def dedup_key(self) -> str:
        """Identity of the source record: a resend or re-sync shares it."""
        return f"{self.envelope.source}|{self.envelope.source_record_id}"


@dataclass(frozen=True)
class Rejected:
    """A record that failed, with the reason to store and show."""

    reject: Reject


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """Condense pydantic's errors into a reason code and one readable sentence."""
    parts: list[str] = []
    code = ""
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "record"
        message = str(item["msg"]).removeprefix("Value error, ")
        if str(item["type"]).startswith("missing_"):
            code = code or str(item["type"])
        refused = (item.get("ctx") or {}).get("error")
        if isinstance(refused, InvalidCode) and type(refused) is not InvalidCode:
            code = code or refused.reason_code  # a refusal with a reason of its own (unknown_division)
        kind = "missing" if item["type"] == "missing" else "invalid"
        code = code or f"{kind}_{field}"
        parts.append(f"{field}: {message}")
    return code or "invalid_record", "; ".join(parts)


def fingerprint(record: Canonical) -> str:
    """Hash of the normalised content: equal for an unchanged record however it was formatted."""
    return hashlib.sha256(record.model_dump_json().encode()).hexdigest()


def rejection(raw: bytes, stage: RejectStage, code: str, reason: str, envelope: RawEnvelope | None = None) -> Rejected:
    """Refuse a record with the provenance of its envelope; without one, the raw bytes are all there is to keep."""
    if envelope is None:
        return Rejected(Reject.build(stage, code, reason, raw))
    return Rejected(
        Reject.build(
            stage,
            code,
            reason,
            envelope.payload,
            record_uid=envelope.record_uid,
            source=envelope.source,
            source_record_id=envelope.source_record_id,
            entity=envelope.entity,
            run_id=envelope.run_id,
        )
    )


def internal_failure(raw: bytes, error: Exception) -> Rejected:
    """Keep a record that hit a bug, with whatever provenance it carries, so it can be replayed after the fix."""
    try:
        envelope: RawEnvelope | None = RawEnvelope.model_validate_json(raw)
    except ValidationError:
        envelope = None
    reason = f"gridhub could not process this record ({type(error).__name__}: {error}); report it as a bug"
    return rejection(raw, "internal", "internal_error", reason, envelope)


def _place(record: Canonical, grid: Grid) -> Canonical | str:
    """Put an event, track point or place in its grid cell (WGS84); an event outside the town is refused."""
    if isinstance(record, Event):
        lat, lon = to_wgs84(record.lat, record.lon, record.coord_system)
        cell = grid.locate(lat, lon)
        if cell is None:
            return (
                f"point {record.lat}, {record.lon} ({record.coord_system}) lies outside the town's grid; "
                "check the phone's GPS fix and the coordinate system"
            )
        return record.model_copy(
            update={
                "lat": lat,
                "lon": lon,
                "coord_system": "wgs84",
                "grid_code": cell.code,
                "squad": cell.squad,
                "community": cell.community,
            }
        )
    located = isinstance(record, PatrolPoint | Place) and record.lat is not None and record.lon is not None
    if located and record.grid_code is None:
        cell = grid.locate(record.lat, record.lon)
        return record.model_copy(update={"grid_code": cell.code}) if cell else record
    return record


def normalise(
    raw: bytes,
    rules: RoutingRules,
    grid: Grid | None = None,
    catalogue: ApprovalCatalogue | None = None,
    bureau: Bureau | None = None,
) -> Accepted | Rejected:
    """Decode (upgrading an older contract version), validate, classify and place one raw message.

    A version this gridhub does not read is refused, with the provenance the message still names.
    """
    try:
        envelope = read_envelope(raw)
    except UnknownContractVersion as exc:
        return Rejected(Reject.build("decode", exc.reason_code, str(exc), raw, **exc.provenance))
    except ValidationError as exc:
        _, reason = describe_validation_error(exc)
        if any(item["type"] == "json_invalid" for item in exc.errors()):
            return rejection(raw, "decode", "bad_json", f"message is not valid JSON: {reason}")
        return rejection(raw, "decode", "bad_envelope", f"raw envelope does not match schema: {reason}")
    return normalise_envelope(envelope, rules, grid, catalogue, raw, bureau)


def normalise_envelope(
    envelope: RawEnvelope,
    rules: RoutingRules,
    grid: Grid | None = None,
    catalogue: ApprovalCatalogue | None = None,
    raw: bytes = b"",
    bureau: Bureau | None = None,
) -> Accepted | Rejected:
    """Validate, classify and place a decoded envelope (a raw message's, or a row of a bulk batch)."""
    if envelope.entity in DERIVED_KINDS:
        reason = f"entity {envelope.entity!r} is derived by gridhub from reports and updates; publish those instead"
        return rejection(raw, "decode", "bad_envelope", reason, envelope)
    model = CANONICAL_MODELS[envelope.entity]
    try:
        record = model.model_validate(envelope.payload)
    except ValidationError as exc:
        code, reason = describe_validation_error(exc)
        return rejection(raw, "validate", code, reason, envelope)
    category: Category | None = None
    if isinstance(record, Event):
        category = rules.resolve(record.category)
        if category is None:
            return rejection(
                raw,
                "route",
                "unknown_category",
                f"category {record.category!r} is not in the routing table; known codes: {rules.known_codes()}",
                envelope,
            )
        record = record.model_copy(
            update={"category": category.code, "category_name": category.name, "department": category.department}
        )
    if isinstance(record, Application) and catalogue is not None:
        try:
            record = catalogue.check(record)
        except NotInCatalogue as exc:
            return rejection(raw, "route", exc.reason_code, str(exc), envelope)
    if isinstance(record, EnforcementCase) and bureau is not None:
        try:
            record = bureau.check(record)
        except CaseFileRefused as exc:
            return rejection(raw, "route", exc.reason_code, str(exc), envelope)
    if grid is not None:
        placed = _place(record, grid)
        if isinstance(placed, str):
            return rejection(raw, "route", "outside_town", placed, envelope)
        record = placed
    return Accepted(envelope=envelope, record=record, fingerprint=fingerprint(record), category=category)


@dataclass(frozen=True)
class ReferenceData:
    """The town's tables a record is judged with: routing rules, grid, approval catalogue, enforcement bureau.

    The worker (:func:`streams.app.build_app`) and ``gridhub check`` both load them here from the
    same settings, so a row is judged with the same files whichever of them judges it.
    """

    rules: RoutingRules
    grid: Grid
    catalogue: ApprovalCatalogue
    bureau: Bureau

    @classmethod
    def load(cls, settings: Settings) -> ReferenceData:
        """Read every table the settings name; a file that is wrong stops the caller with one line."""
        return cls(
            rules=load_rules(settings.routing_rules),
            grid=Grid.load(settings.grid_path),
            catalogue=load_catalogue(settings.approval_items),
            bureau=load_bureau(settings.enforcement),
        )

    def normalise(self, raw: bytes) -> Accepted | Rejected:
        """:func:`normalise` with these tables: what the integrate agent makes of one raw message."""
        return normalise(raw, self.rules, self.grid, self.catalogue, self.bureau)
