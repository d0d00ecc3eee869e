"""The entity-resolution rules file, checked on load and turned into SQL expressions.

The rules are data (``schemas/data/resolution.yaml``) so a town can rank its own
departments and tune matching without code; this module is the only reader, and
it refuses a file that names an unknown field, method or kind with one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foundation import packaged
from foundation.errors import ConfigurationError
from schemas.config_file import load_yaml_model
from schemas.records import CANONICAL_MODELS, Canonical
from warehouse.sql import sql_literal

METRES_PER_DEGREE = 111_320.0


class RulesError(ConfigurationError):
    """The resolution rules file is unusable; the message says where and why."""


@dataclass(frozen=True)
class Entity:
    """Where one resolvable kind lives in the warehouse."""

    kind: str
    sources_table: str
    golden_table: str
    key_column: str
    strong_method: str
    address_field: str | None = None
    """The field ``address_norm`` is derived from; the two must survive from the same source."""

    @property
    def model(self) -> type[Canonical]:
        """The canonical model of the kind."""
        return CANONICAL_MODELS[self.kind]

    @property
    def fields(self) -> tuple[str, ...]:
        """Golden-record fields: the model's fields plus the derived ones worth keeping."""
        derived = tuple(name for name in self.model.model_computed_fields if name != "match_key")
        return (*self.model.model_fields, *derived)


ENTITIES: dict[str, Entity] = {
    "person": Entity("person", "person_sources", "people", "person_key", "id_number", "address"),
    "organisation": Entity(
        "organisation", "organisation_sources", "organisations", "organisation_key", "uscc", "registered_address"
    ),
    "place": Entity("place", "place_sources", "places", "place_key", "address_in_cell", "address"),
    "object": Entity("object", "object_sources", "objects", "object_key", "object_code"),
}


class Comparison(BaseModel):
    """One compared field of the fuzzy score."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    weight: float = Field(gt=0, le=1)
    method: Literal["exact", "jaro_winkler", "distance"]
    max_m: float = Field(default=10.0, gt=0, description="For distance: metres at which similarity reaches 0.")


class Survivorship(BaseModel):
    """Source ranking per field; ``newest`` lets the latest value win outright."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    default: list[str] = Field(default_factory=list)
    fields: dict[str, list[str] | Literal["newest"]] = Field(default_factory=dict)


class Fuzzy(BaseModel):
    """How records without a strong key find and score candidates."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    block: list[str] = Field(min_length=1)
    compare: dict[str, Comparison] = Field(min_length=1)


class KindRules(BaseModel):
    """Resolution rules of one kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    survivorship: Survivorship = Survivorship()
    fuzzy: Fuzzy


class ResolutionRules(BaseModel):
    """The whole rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    threshold: float = Field(gt=0, le=1)
    review_floor: float = Field(gt=0, le=1)
    ambiguity_margin: float = Field(default=0.05, ge=0, lt=1)
    person: KindRules
    organisation: KindRules
    place: KindRules
    object: KindRules

    @model_validator(mode="after")
    def _fields_exist(self) -> ResolutionRules:
        if self.review_floor > self.threshold:
            raise ValueError("review_floor must not exceed threshold")
        for kind, entity in ENTITIES.items():
            rules = self.of(kind)
            known = set(entity.fields)
            named = {*rules.survivorship.fields, *rules.fuzzy.block}
            named |= {field for field, rule in rules.fuzzy.compare.items() if rule.method != "distance"}
            unknown = named - known
            if unknown:
                raise ValueError(f"{kind}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}")
        return self

    def of(self, kind: str) -> KindRules:
        """The rules of one kind."""
        rules: KindRules = getattr(self, kind)
        return rules

    @classmethod
    def load(cls, path: Path = packaged.RESOLUTION_RULES) -> ResolutionRules:
        """Read and check a rules file."""
        return load_yaml_model(path, cls, "resolution rules", RulesError, "check GRIDHUB_RESOLUTION_RULES")

    def rank_sql(self, kind: str, field: str, alias: str = "s") -> str:
        """SQL ranking a source's value of ``field``: lower wins, ties go to the newest value."""
        survivorship = self.of(kind).survivorship
        if field == "address_norm":
            field = ENTITIES[kind].address_field or field
        order = survivorship.fields.get(field, survivorship.default)
        if order == "newest" or not order:
            return "0"
        cases = " ".join(f"WHEN {sql_literal(source)} THEN {rank}" for rank, source in enumerate(order))
        return f"CASE {alias}.source {cases} ELSE {len(order)} END"

    def similarity_sql(self, field: str, comparison: Comparison, left: str = "p", right: str = "g") -> str:
        """SQL similarity in [0, 1] of one compared field; 0 when either side lacks it."""
        if comparison.method == "distance":
            metres = (
                f"{METRES_PER_DEGREE} * sqrt(pow({left}.lat - {right}.lat, 2) + "
                f"pow(({left}.lon - {right}.lon) * cos(radians({left}.lat)), 2))"
            )
            return f"coalesce(greatest(0.0, 1.0 - ({metres}) / {comparison.max_m}), 0.0)"
        if comparison.method == "jaro_winkler":
            return (
                f"coalesce(jaro_winkler_similarity(CAST({left}.{field} AS VARCHAR), "
                f"CAST({right}.{field} AS VARCHAR)), 0.0)"
            )
        return f"CASE WHEN {left}.{field} = {right}.{field} THEN 1.0 ELSE 0.0 END"
