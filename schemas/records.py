"""Canonical records: what the stream agents emit and the warehouse stores.

Each model validates and normalises its own fields, so the rules that make a
record acceptable live in one place and are exported as JSON Schema for the
departments that publish to us. Field names are the warehouse column names.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas import TOWN_TIMEZONE
from schemas.address import normalise_address
from schemas.dates import RegisterDate
from schemas.identity import (
    normalise_resident_id,
    normalise_uscc,
    resident_id_birth_date,
    resident_id_gender,
)
from schemas.phones import normalise_phone
from schemas.versions import CONTRACTS

ResidentId = Annotated[str, AfterValidator(normalise_resident_id)]
Uscc = Annotated[str, AfterValidator(normalise_uscc)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
_SPACE_BETWEEN_HAN = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")


def _tidy_name(value: str) -> str:
    """One spelling per name: registers pad two-character names (王  芳) and mix full- and half-width brackets."""
    return _SPACE_BETWEEN_HAN.sub("", " ".join(unicodedata.normalize("NFKC", value).split()))


Name = Annotated[str, AfterValidator(_tidy_name), Field(min_length=1, max_length=200)]
EntityKind = Literal[
    "person",
    "organisation",
    "place",
    "object",
    "event",
    "event_update",
    "application",
    "track_point",
    "case",
    "case_transition",
    "enforcement_case",
]
ENTITY_KINDS: tuple[str, ...] = get_args(EntityKind)
ActorRole = Literal["grid_worker", "desk", "command_centre", "system"]

EventStatus = Literal[
    "reported",
    "accepted",
    "dispatched",
    "in_handling",
    "extended",
    "handled",
    "verified",
    "closed",
    "returned",
    "rejected",
    "cancelled",
    "parked",
]
ApplicationStatus = Literal["submitted", "accepted", "in_review", "approved", "refused", "withdrawn"]
EVENT_STATUSES: tuple[str, ...] = get_args(EventStatus)
APPLICATION_STATUSES: tuple[str, ...] = get_args(ApplicationStatus)


def _aware(value: datetime) -> datetime:
    """Read a naive timestamp as town time, and express every instant in town time.

    The same instant written as UTC or +08:00 then serialises identically, so an
    unchanged record resent with another offset is still recognised as unchanged.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=TOWN_TIMEZONE)
    return value.astimezone(TOWN_TIMEZONE)


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class Canonical(BaseModel):
    """Common behaviour: strict field set, whitespace trimmed, a key for upserts."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore", frozen=True)
    kind: ClassVar[EntityKind]
    key_field: ClassVar[str]

    @property
    def key(self) -> str:
        """The natural key the warehouse upserts on and Kafka partitions by."""
        return str(getattr(self, self.key_field))

    @model_validator(mode="before")
    @classmethod
    def _blank_is_missing(cls, data: Any) -> Any:
        """Exports write empty cells for unknown values; treat them as absent."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if not _blank(value)}
        return data


def _require_any(record: BaseModel, fields: tuple[str, ...], enough: int, key: str) -> None:
    """A record without its strong key needs enough other fields for entity resolution to match it."""
    present = [name for name in fields if getattr(record, name) is not None]
    if len(present) < enough:
        raise PydanticCustomError(
            f"missing_{key}",
            "no {key}, and too little else to match the record by: it needs {key}, or at least {enough} of "
            "{fields} (has {present})",
            {"key": key, "enough": enough, "fields": ", ".join(fields), "present": ", ".join(present) or "none"},
        )


class Resolvable(Canonical):
    """Base data (people, organisations, places, objects) that entity resolution merges across sources.

    ``match_key`` is the strong key two sources must share to be one entity; a record
    without one is matched by the fuzzy rules of ``schemas/data/resolution.yaml``.
    """

    identity_fields: ClassVar[tuple[str, ...]] = ("name",)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def match_key(self) -> str | None:
        """The strong key, or None when the record has to be matched by similarity."""
        return getattr(self, self.key_field)

    @property
    def key(self) -> str:
        """Partition key: the strong key, else the identifying fields."""
        return self.match_key or "~" + "|".join(str(getattr(self, name)) for name in self.identity_fields)


class Person(Resolvable):
    """A resident, keyed on the GB 11643 resident ID; without one, matched on name, birth date, phone, address."""

    kind: ClassVar[EntityKind] = "person"
    key_field: ClassVar[str] = "id_number"
    identity_fields: ClassVar[tuple[str, ...]] = ("name", "birth_date", "phone")
    id_number: ResidentId | None = None
    name: Name
    gender: Literal["M", "F"] | None = None
    birth_date: RegisterDate | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9\- ]{5,20}$"), AfterValidator(normalise_phone)] | None = Field(
        default=None,
        description="Kept in E.164 (+8613800000000) when it can be a number, so matching compares one form.",
    )
    address: str | None = None
    employer_uscc: Uscc | None = Field(default=None, description="Unified social credit code of the employer.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def address_norm(self) -> str | None:
        """The address in matching form (see :mod:`schemas.address`)."""
        return normalise_address(self.address)

    @model_validator(mode="after")
    def _consistent_with_id(self) -> Person:
        """Gender and birth date are encoded in the ID; a register that disagrees is wrong."""
        if self.id_number is None:
            _require_any(self, ("birth_date", "phone", "address"), 2, "id_number")
            return self
        encoded_gender = resident_id_gender(self.id_number)
        encoded_birth = resident_id_birth_date(self.id_number)
        if self.gender is not None and self.gender != encoded_gender:
            raise ValueError(f"gender {self.gender} contradicts the resident ID, which encodes {encoded_gender}")
        if self.birth_date is not None and self.birth_date != encoded_birth:
            raise ValueError(f"birth_date {self.birth_date} contradicts the resident ID ({encoded_birth})")
        object.__setattr__(self, "gender", encoded_gender)
        object.__setattr__(self, "birth_date", encoded_birth)
        return self

    @field_validator("gender", mode="before")
    @classmethod
    def _gender_words(cls, value: Any) -> Any:
        words = {"男": "M", "女": "F", "male": "M", "female": "F", "m": "M", "f": "F"}
        return words.get(str(value).strip().lower(), value) if value is not None else None


class Organisation(Resolvable):
    """An enterprise or institution, keyed on the GB 32100 unified social credit code."""

    kind: ClassVar[EntityKind] = "organisation"
    key_field: ClassVar[str] = "uscc"
    identity_fields: ClassVar[tuple[str, ...]] = ("name", "registered_address")
    uscc: Uscc | None = None
    name: Name
    legal_representative: str | None = None
    legal_representative_id: ResidentId | None = Field(
        default=None, description="Resident ID of the legal representative; links the person."
    )
    registered_address: str | None = None
    phone: Annotated[str, AfterValidator(normalise_phone)] | None = Field(
        default=None, description="Kept in E.164 when it can be a number, as for people."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def address_norm(self) -> str | None:
        """The registered address in matching form."""
        return normalise_address(self.registered_address)

    @model_validator(mode="after")
    def _matchable(self) -> Organisation:
        if self.uscc is None:
            _require_any(self, ("legal_representative", "registered_address", "phone"), 1, "uscc")
        return self


class Place(Resolvable):
    """Land: a parcel, a house, a grid cell or any addressable location.

    ``place_id`` is the source's own number for it; departments number the same house
    differently, so one place across sources is its normalised address in its grid cell.
    """

    kind: ClassVar[EntityKind] = "place"
    key_field: ClassVar[str] = "place_id"
    identity_fields: ClassVar[tuple[str, ...]] = ("place_id",)
    place_id: Annotated[str, Field(min_length=1, max_length=64)]
    place_type: Literal["parcel", "house", "grid_cell", "building", "site"] = "site"
    name: str | None = None
    address: str | None = None
    grid_code: str | None = Field(default=None, pattern=r"^\d{15}$")
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def address_norm(self) -> str | None:
        """The address in matching form."""
        return normalise_address(self.address)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def match_key(self) -> str | None:
        """Normalised address within its grid cell; without both, the place is matched by similarity."""
        if self.address_norm and self.grid_code:
            return f"{self.grid_code}|{self.address_norm}"
        return None


STANDARD_OBJECT_CODE = re.compile(r"^\d{16}$")
"""GB/T 30428.2 部件标识码: county (6) + category (4) + sequence (6); the only asset code shared across sources."""


class ThingObject(Resolvable):
    """A managed object (部件): a manhole cover, a street lamp, a hydrant.

    A standard 16-digit code identifies it across sources; a department's own asset
    number does not, so such objects are matched by category and location instead.
    """

    kind: ClassVar[EntityKind] = "object"
    key_field: ClassVar[str] = "object_id"
    identity_fields: ClassVar[tuple[str, ...]] = ("object_id",)
    object_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Text
    category_code: str | None = None
    state: str | None = None
    place_id: str | None = None
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def match_key(self) -> str | None:
        """The standard code with spaces and dashes removed, else None."""
        code = re.sub(r"[\s\-]", "", self.object_id)
        return code if STANDARD_OBJECT_CODE.match(code) else None


class Event(Canonical):
    """An incident a grid worker (or any feed) reported; the seed of a case."""

    kind: ClassVar[EntityKind] = "event"
    key_field: ClassVar[str] = "event_id"
    event_id: Annotated[str, Field(min_length=1, max_length=64)]
    category: Annotated[str, Field(min_length=1, max_length=32)]
    category_name: str | None = None
    department: str | None = None
    description: Text
    reported_at: AwareDatetime
    reporter_id: Annotated[str, Field(min_length=1, max_length=64)]
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    coord_system: Literal["wgs84", "gcj02", "bd09"] = Field(
        default="wgs84", description="Datum of lat/lon as sent; stored points are always WGS84."
    )
    photo_refs: list[str] = Field(default_factory=list)
    status: EventStatus = "reported"
    grid_code: str | None = Field(default=None, description="Set by the stream from the point.")
    squad: str | None = Field(default=None, description="Enforcement squad of the grid cell.")
    community: str | None = Field(default=None, description="Community or village of the grid cell.")
    case_id: str | None = Field(default=None, description="The case this report belongs to; set by the stream.")
    subject_id_number: ResidentId | None = Field(default=None, description="Resident the report is about.")
    subject_uscc: Uscc | None = Field(default=None, description="Organisation the report is about (e.g. a shop).")
    object_id: str | None = Field(default=None, description="Asset code of the object concerned (e.g. a manhole).")
    place_id: str | None = Field(default=None, description="Source id of the place concerned.")


class EventUpdate(Canonical):
    """One step of an event's life, posted by a dispatch desk or a grid worker."""

    kind: ClassVar[EntityKind] = "event_update"
    key_field: ClassVar[str] = "update_id"
    update_id: Annotated[str, Field(min_length=1, max_length=96)]
    event_id: Annotated[str, Field(min_length=1, max_length=64)]
    status: EventStatus
    occurred_at: AwareDatetime = Field(validation_alias=AliasChoices("occurred_at", "at"))
    actor: Annotated[str, Field(min_length=1, max_length=64)]
    actor_role: ActorRole | None = Field(
        default=None,
        description="The role the actor acts in, set by the door from the caller's token (a body's own is "
        "overwritten); an update without one is refused.",
    )
    note: str | None = None
    photo_ref: str | None = None
    new_due_at: AwareDatetime | None = Field(
        default=None,
        validation_alias=AliasChoices("new_due_at", "due_at"),
        description="The new deadline, when the command centre extends a case (延期).",
    )
    department: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="The department a re-dispatch (改派) sends the case to, when not its own; only the command "
        "centre's redispatch may name one.",
    )


class Application(Canonical):
    """An application filed at the one-window service centre, with its applicant."""

    kind: ClassVar[EntityKind] = "application"
    key_field: ClassVar[str] = "application_id"
    application_id: Annotated[str, Field(min_length=1, max_length=64)]
    item_code: Annotated[str, Field(min_length=1, max_length=32)]
    item_name: str | None = None
    applicant_id_number: ResidentId | None = None
    applicant_uscc: Uscc | None = None
    status: ApplicationStatus
    submitted_at: AwareDatetime
    updated_at: AwareDatetime
    window_no: int | None = Field(
        default=None, ge=1, description="The service centre's window that took it; none when taken online."
    )
    channel: Literal["window", "online"] | None = Field(
        default=None,
        description="window: at a window of the centre; online: fully online (外网受理、内网办理、快递送达); "
        "none when the approval system does not say.",
    )

    @model_validator(mode="after")
    def _has_applicant(self) -> Application:
        if not self.applicant_id_number and not self.applicant_uscc:
            raise ValueError("an application needs an applicant: applicant_id_number or applicant_uscc")
        return self


class PatrolPoint(Canonical):
    """One point of a grid worker's patrol track, for patrol-compliance KPIs."""

    kind: ClassVar[EntityKind] = "track_point"
    key_field: ClassVar[str] = "worker_id"
    worker_id: Annotated[str, Field(min_length=1, max_length=64)]
    recorded_at: AwareDatetime = Field(validation_alias=AliasChoices("recorded_at", "at"))
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    grid_code: str | None = Field(default=None, pattern=r"^\d{15}$")

    @property
    def key(self) -> str:
        """A worker is in one place at a time: worker and time identify a point."""
        return f"{self.worker_id}|{self.recorded_at.isoformat()}"


class CaseRecord(Canonical):
    """A case (案卷): one problem, however many reports it has, and where it stands.

    Derived by the stream's case agent from reports and updates; never published by a source.
    """

    kind: ClassVar[EntityKind] = "case"
    key_field: ClassVar[str] = "case_id"
    case_id: str
    category: str
    category_name: str | None = None
    department: str
    squad: str | None = None
    grid_code: str | None = None
    community: str | None = None
    reporter_id: str
    status: EventStatus
    reported_at: AwareDatetime
    due_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    report_ids: list[str] = Field(min_length=1, description="The first report, then any that joined it.")
    report_count: int = Field(ge=1)
    seq: int = Field(ge=1, description="Transitions so far; a reader keeps the record with the highest.")
    rework_count: int = Field(ge=0)
    return_count: int = Field(ge=0)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    overdue_alerted: bool = False
    handled_by: list[str] = Field(
        default_factory=list,
        description="Who took action handle on the case (巡办分离: none of them may verify it); "
        "empty in records written before it was kept.",
    )
    escalation_level: int = Field(
        default=0,
        ge=0,
        description="The supervision level its lateness reached under the current deadline (1 overdue, 2 督办, "
        "...: the flow file's escalation levels); 0 before it was kept.",
    )
    escalated_at: AwareDatetime | None = Field(
        default=None, description="When the case first reached level 2 (督办); kept after a new deadline."
    )
    review_at: AwareDatetime | None = Field(
        default=None, description="The review date of its last parking (挂账); None if it was never parked."
    )
    review_alerted: bool = Field(default=False, description="Whether its parking's review date passed while parked.")


class CaseTransition(Canonical):
    """One step in a case's history, with who did it, when, and the deadline in force."""

    kind: ClassVar[EntityKind] = "case_transition"
    key_field: ClassVar[str] = "case_id"
    case_id: str
    seq: int = Field(ge=1)
    from_status: EventStatus | None = None
    to_status: EventStatus
    action: str
    actor: str
    actor_role: ActorRole
    at: AwareDatetime
    due_at: AwareDatetime
    note: str | None = None
    photo_ref: str | None = None

    @property
    def key(self) -> str:
        """A transition is identified by its case and its place in the case's history."""
        return f"{self.case_id}|{self.seq}"


STAGE_TIMES: dict[str, str] = {
    "filing": "filed_at",
    "investigation": "investigated_at",
    "notice": "notified_at",
    "decision": "decided_at",
    "execution": "executed_at",
    "closing": "closed_at",
}
"""The stages of an enforcement case (立案 调查取证 告知 决定 执行 结案) and the field holding the time of each.

The moves between stages are data (``schemas/data/enforcement.yaml``); the stages themselves are columns
of the case file every enforcement case system keeps, so a flow file may rewire them but not invent one."""


class EnforcementCase(Canonical):
    """An enforcement case (执法案件) of the integrated enforcement bureau, as its case file stands.

    The bureau's case system sends the whole file each time it changes, with the time of every stage
    reached; the stream checks the stages against the flow and the power and officer against the
    bureau's roster (``schemas.enforcement``), and sets ``status`` to the last stage reached.
    """

    kind: ClassVar[EntityKind] = "enforcement_case"
    key_field: ClassVar[str] = "case_no"
    case_no: Annotated[str, Field(min_length=1, max_length=64)] = Field(description="The bureau's case number.")
    grid_case_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")] | None = Field(
        default=None, description="The grid case that started it (its opening report's id), when one did."
    )
    power_code: Annotated[str, Field(min_length=1, max_length=32)]
    power_name: str | None = None
    party_id_number: ResidentId | None = Field(default=None, description="Resident ID of a person who is the party.")
    party_uscc: Uscc | None = Field(default=None, description="Credit code of an organisation that is the party.")
    party_name: Name | None = None
    officer_id: Annotated[str, Field(min_length=1, max_length=32)]
    squad: str | None = Field(default=None, description="The officer's unit, set by the stream from the roster.")
    status: str | None = Field(default=None, description="The last stage reached, set by the stream.")
    filed_at: AwareDatetime | None = None
    investigated_at: AwareDatetime | None = None
    notified_at: AwareDatetime | None = None
    decided_at: AwareDatetime | None = None
    executed_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    decision: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="What was decided (责令限期拆除, 罚款, 不予处罚...)."
    )
    fine_yuan: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _has_party(self) -> EnforcementCase:
        """A case is against someone: a resident ID, a credit code, or at least a name to resolve later."""
        if not (self.party_id_number or self.party_uscc or self.party_name):
            raise PydanticCustomError(
                "missing_party",
                "an enforcement case needs its party: party_id_number, party_uscc or party_name",
            )
        return self


CANONICAL_MODELS: dict[str, type[Canonical]] = {
    model.kind: model
    for model in (
        Person,
        Organisation,
        Place,
        ThingObject,
        Event,
        EventUpdate,
        Application,
        PatrolPoint,
        CaseRecord,
        CaseTransition,
        EnforcementCase,
    )
}
DERIVED_KINDS = frozenset({"case", "case_transition"})
"""Kinds only gridhub's stream creates; a raw record claiming one is refused."""


class RawEnvelope(BaseModel):
    """What a connector publishes to a ``raw.*`` topic: the payload as received plus provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int = Field(
        default=CONTRACTS["raw_envelope"].version, description="Version of the envelope's contract; absent: 1."
    )
    record_uid: str = Field(description="Unique per publication; keys the intake ledger.")
    source: str = Field(description="The publishing system, e.g. 'patrol', 'approvals', 'civil-affairs'.")
    source_record_id: str = Field(description="The record's id in its source system.")
    entity: EntityKind
    received_at: datetime
    content_hash: str = Field(description="sha256 of the canonical JSON of the payload.")
    run_id: str | None = Field(default=None, description="Groups one ingest run, for --wait and audits.")
    payload: dict[str, Any]
    payload_version: int = Field(
        default=1, ge=1, description="Version of the contract of the payload's kind (the entity's); absent: 1."
    )

    @model_validator(mode="before")
    @classmethod
    def _written_now(cls, data: Any) -> Any:
        """An envelope gridhub builds carries its payload's current version; read from the wire, absent is 1.

        :func:`schemas.upgrades.read_envelope` reads the wire, and names the version before validating.
        """
        if isinstance(data, dict) and "payload_version" not in data and data.get("entity") in CONTRACTS:
            return {**data, "payload_version": CONTRACTS[data["entity"]].version}
        return data
