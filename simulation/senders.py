"""The simulated town's callers and their tokens: a phone per grid worker, a desk per department, the centre.

The simulation knows who sent what it invents (a report's reporter, an update's actor), so it
signs each request with that sender's own token, and the gateway checks it as it would a
real phone's: a worker's phone reports only as that worker, a desk moves only its own cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from foundation.access import TokenBook, write_owner_only
from foundation.settings import Settings
from schemas.grid import Grid
from streams.routing import RoutingRules

COMMAND_CENTRE = "command-centre"
"""The actor name the simulated day gives the command centre's staff."""
DESK_PREFIX = "desk-"


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
            desks={name: book.add(f"{DESK_PREFIX}{name}", "desk", department=name) for name in rules.departments},
            commander=book.add(COMMAND_CENTRE, "commander"),
            analyst=book.add("analyst", "analyst"),
        )
        for role, token in (("analyst", tokens.analyst), ("commander", tokens.commander)):
            path = settings.data_dir / f"{role}.token"
            path.unlink(missing_ok=True)
            write_owner_only(path, token + "\n")
        return tokens

    def of_actor(self, actor: str) -> str:
        """The token of whoever the day says acts: a worker's phone, a department's desk, or the centre."""
        if actor in self.phones:
            return self.phones[actor]
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
