"""The simulated town's callers and their tokens: a phone per grid worker, a desk per desk unit, the centre.

The simulation knows who sent what it invents (a report's reporter, an update's actor), so it
signs each request with that sender's own token, and the gateway checks it as it would a
real phone's: a worker's phone reports only as that worker, a desk moves only its own cases.
The enforcement bureau's cases go to the squad desk of their area (一支队伍管执法) and are assigned
to one of that squad's officers, who is named as the actor of the desk's steps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from foundation import packaged
from foundation.access import TokenBook, write_owner_only
from foundation.settings import Settings
from schemas.enforcement import load_bureau
from schemas.grid import Grid
from schemas.topics import desk_unit
from streams.routing import RoutingRules

COMMAND_CENTRE = "command-centre"
"""The actor name the simulated day gives the command centre's staff."""
DESK_PREFIX = "desk-"
ENFORCEMENT = "enforcement"
"""The department whose cases go to squads and are handled by named officers."""
OFFICER_SQUADS: dict[str, str] = {
    officer.id: officer.unit for officer in load_bureau(packaged.ENFORCEMENT).file.officers
}
"""Each enforcement officer's squad, from the bureau's roster the simulated town ships with."""


@functools.cache
def _town_grid() -> Grid:
    """The packaged grid the simulated day's reports are placed in, loaded once."""
    return Grid.load(packaged.MENGHE_GRID)


def own_cell_point(worker: str) -> tuple[float, float]:
    """A point inside the worker's own cell (its polygon's representative point), where their patrol starts."""
    point = _town_grid().workers()[worker].polygon.representative_point()
    return round(point.y, 6), round(point.x, 6)


def case_workers(department: str, lat: float, lon: float, number: int) -> tuple[str, str]:
    """Who works a simulated case of ``department`` reported at the point: its desk (as an actor) and its handler.

    An enforcement case goes to the squad desk of the point's area and is handled by one of that
    squad's officers (the ``number``-th, cycling), outside every cell to the bureau's own desk;
    any other department's desk handles its cases itself.
    """
    own = f"{DESK_PREFIX}{department}"
    cell = _town_grid().locate(lat, lon) if department == ENFORCEMENT else None
    if cell is None:
        return own, own
    officers = [officer for officer, squad in OFFICER_SQUADS.items() if squad == cell.squad]
    return f"{DESK_PREFIX}{desk_unit(department, cell.squad)}", officers[number % len(officers)]


@dataclass
class TownTokens:
    """One token per simulated sender, made in the demo's own token book."""

    phones: dict[str, str] = field(default_factory=dict)
    desks: dict[str, str] = field(default_factory=dict)
    commander: str = ""
    analyst: str = ""

    @classmethod
    def make(cls, settings: Settings, grid: Grid, rules: RoutingRules) -> TownTokens:
        """Make every token the day needs; the analyst's and the commander's are also left in owner-only files."""
        book = TokenBook(settings.tokens_file)
        tokens = cls(
            phones={worker: book.add(f"phone-{worker}", "device", worker=worker) for worker in grid.workers()},
            desks={unit: book.add(f"{DESK_PREFIX}{unit}", "desk", department=unit) for unit in rules.desk_units()},
            commander=book.add(COMMAND_CENTRE, "commander"),
            analyst=book.add("analyst", "analyst"),
        )
        for role, token in (("analyst", tokens.analyst), ("commander", tokens.commander)):
            path = settings.data_dir / f"{role}.token"
            path.unlink(missing_ok=True)
            write_owner_only(path, token + "\n")
        return tokens

    def of_actor(self, actor: str) -> str:
        """The token of whoever the day says acts: a worker's phone, a desk (an officer's squad desk), or the centre."""
        if actor in self.phones:
            return self.phones[actor]
        if actor in OFFICER_SQUADS:
            return self.desks[desk_unit(ENFORCEMENT, OFFICER_SQUADS[actor])]
        if actor.startswith(DESK_PREFIX) and actor.removeprefix(DESK_PREFIX) in self.desks:
            return self.desks[actor.removeprefix(DESK_PREFIX)]
        return self.commander

    def of_report(self, report: dict[str, Any]) -> str:
        """A report comes from its reporter's phone (a malformed one, from any phone)."""
        return self.of_actor(str(report.get("reporter_id", ""))) if report.get("reporter_id") else self.any_phone

    @property
    def any_phone(self) -> str:
        """Some worker's phone, for requests whose sender the day does not name."""
        return next(iter(self.phones.values()))
