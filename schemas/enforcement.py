"""The integrated enforcement bureau (综合行政执法局) as data: its units, officers, powers and case flow.

Kept in ``schemas/data/enforcement.yaml`` (``GRIDHUB_ENFORCEMENT``) because the roster changes with
every posting and the list of powers by provincial notice, not by release. The stream checks every
enforcement case file against it (:meth:`Bureau.check`): a power the bureau does not hold, an officer
not on its roster, or stages that skip a step of the flow or run backwards in time are refused with a
reason the bureau's clerk can act on. The sink loads the same file into the warehouse, so the KPIs
count squads, officers and powers as the running hub knows them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foundation import packaged
from foundation.errors import ConfigurationError, InputRejected
from schemas.config_file import read_yaml, validated
from schemas.grid import SQUADS
from schemas.records import STAGE_TIMES, EnforcementCase


class BureauFileError(ConfigurationError):
    """The bureau's file is wrong; services must not start on it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Unit(_Strict):
    """The legal affairs section or an area squad (中队)."""

    name: str
    name_en: str
    kind: Literal["section", "squad"]


class Officer(_Strict):
    """An enforcement officer, who also inspects a few basic grid cells (网格督查员)."""

    id: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1)
    unit: str
    cells: tuple[str, ...] = ()


class Power(_Strict):
    """One enforcement power (行政处罚事项) the bureau exercises, with its time limit for a decision."""

    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1)
    department: str
    legal_basis: str = Field(min_length=1)
    time_limit_days: int = Field(gt=0)


class Label(_Strict):
    """A Chinese and an English name."""

    name: str
    name_en: str


class Stage(_Strict):
    """A stage of an enforcement case, named for the screen and the CLI."""

    zh: str
    en: str


class Move(_Strict):
    """One allowed step from a stage to the next, with why a case takes it."""

    from_: str = Field(alias="from")
    to: str
    note: str = ""


class Flow(_Strict):
    """The stages in order and the moves between them."""

    stages: dict[str, Stage]
    moves: tuple[Move, ...]

    @model_validator(mode="after")
    def _known_stages(self) -> Flow:
        unknown = [name for name in self.stages if name not in STAGE_TIMES]
        if unknown:
            raise ValueError(f"stages {', '.join(unknown)} are not case-file stages ({', '.join(STAGE_TIMES)})")
        for move in self.moves:
            for end in (move.from_, move.to):
                if end not in self.stages:
                    raise ValueError(f"move {move.from_} → {move.to} names stage {end!r}, which 'stages' lacks")
        return self


class BureauFile(_Strict):
    """The whole file, checked for references between its parts."""

    department: str
    name: str
    units: dict[str, Unit]
    power_departments: dict[str, Label]
    flow: Flow
    officers: tuple[Officer, ...]
    powers: tuple[Power, ...]

    @model_validator(mode="after")
    def _consistent(self) -> BureauFile:
        squads = [key for key, unit in self.units.items() if unit.kind == "squad"]
        if sorted(squads) != sorted(SQUADS):
            raise ValueError(f"the squads must be the grid's squads {', '.join(SQUADS)}, got {', '.join(squads)}")
        keyed = (("officer id", [o.id for o in self.officers]), ("power code", [p.code for p in self.powers]))
        for kind, keys in keyed:
            repeated = sorted({key for key in keys if keys.count(key) > 1})
            if repeated:
                raise ValueError(f"{kind} {', '.join(repeated)} appears twice")
        for officer in self.officers:
            if officer.unit not in self.units:
                raise ValueError(f"officer {officer.id} is in unit {officer.unit!r}, which 'units' lacks")
        for power in self.powers:
            if power.department not in self.power_departments:
                raise ValueError(f"power {power.code} names department {power.department!r}, not in power_departments")
        return self


class CaseFileRefused(InputRejected):
    """A case file the bureau's own rules refuse; ``reason_code`` says which rule.

    ``unknown_power``, ``unknown_officer``, ``not_filed`` (no filing time), ``stage_skipped`` (two stages
    the flow does not connect) or ``stage_out_of_order`` (a stage dated before the one it follows).
    """

    reason_code = "unknown_power"


@dataclass(frozen=True)
class Bureau:
    """The bureau as the hub runs with it; :meth:`check` judges one enforcement case file."""

    file: BureauFile
    path: Path

    @cached_property
    def officers(self) -> dict[str, Officer]:
        """Officers by id (built once: every case file is checked against it)."""
        return {officer.id: officer for officer in self.file.officers}

    @cached_property
    def powers(self) -> dict[str, Power]:
        """Powers by code (built once, as the officers)."""
        return {power.code: power for power in self.file.powers}

    def stages_reached(self, record: EnforcementCase) -> list[str]:
        """The stages the file names a time for, in the flow's order."""
        return [stage for stage in self.file.flow.stages if getattr(record, STAGE_TIMES[stage]) is not None]

    def _check_flow(self, record: EnforcementCase) -> None:
        reached = self.stages_reached(record)
        first = next(iter(self.file.flow.stages))
        if not reached or reached[0] != first:
            raise CaseFileRefused(
                f"case {record.case_no} has no {STAGE_TIMES[first]} ({self.file.flow.stages[first].zh}); "
                "every enforcement case starts by being filed: send the filing time",
                "not_filed",
            )
        moves = {(move.from_, move.to) for move in self.file.flow.moves}
        for before, after in itertools.pairwise(reached):
            if (before, after) not in moves:
                skipped = [s for s in self.file.flow.stages if (before, s) in moves]
                raise CaseFileRefused(
                    f"case {record.case_no} goes from {self.file.flow.stages[before].zh} ({before}) to "
                    f"{self.file.flow.stages[after].zh} ({after}), which the flow does not allow; after {before} "
                    f"comes {' or '.join(skipped) or 'nothing'}: send the missing stage's time",
                    "stage_skipped",
                )
            earlier, later = getattr(record, STAGE_TIMES[before]), getattr(record, STAGE_TIMES[after])
            if later < earlier:
                raise CaseFileRefused(
                    f"case {record.case_no}: {STAGE_TIMES[after]} {later.isoformat()} is before "
                    f"{STAGE_TIMES[before]} {earlier.isoformat()}; check the dates in the case system",
                    "stage_out_of_order",
                )

    def check(self, record: EnforcementCase) -> EnforcementCase:
        """The case with its power's name, the officer's squad and its status filled in; raise why it is refused."""
        power = self.powers.get(record.power_code.strip())
        if power is None:
            raise CaseFileRefused(
                f"power {record.power_code!r} is not one the bureau exercises ({self.path.name}); "
                "check the power code in the case system or add the power to the bureau's file",
                "unknown_power",
            )
        officer = self.officers.get(record.officer_id.strip())
        if officer is None:
            raise CaseFileRefused(
                f"officer {record.officer_id!r} is not on the bureau's roster ({self.path.name}); "
                "check the officer id or add the officer to the roster",
                "unknown_officer",
            )
        self._check_flow(record)
        return record.model_copy(
            update={
                "power_code": power.code,
                "power_name": record.power_name or power.name,
                "officer_id": officer.id,
                "squad": officer.unit,
                "status": self.stages_reached(record)[-1],
            }
        )


def load_bureau(path: Path = packaged.ENFORCEMENT) -> Bureau:
    """Read and check the bureau's file; every problem is one :class:`BureauFileError` naming the file."""
    document = read_yaml(path, "the enforcement bureau's file", BureauFileError, "check GRIDHUB_ENFORCEMENT")
    return Bureau(validated(BureauFile, document, path, "the enforcement bureau's file", BureauFileError), path)
