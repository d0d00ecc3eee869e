"""Report bodies that never merge: every report of a benchmark run gets a category-and-place pair of its own.

The case agent files a report into an open case of its category within the duplicate distance
(50 m), and the benchmark's cases stay open, so two reports of one run, or of two loads of one
run, on the same pair would become one case and break the exact counts the warehouse is checked
against. The pairs are laid out once, on a lattice over the town's grid, and handed out in
consecutive slices: each load takes the next slice, so no two reports of the whole run share one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bench.hub import BenchError
from schemas import TOWN_TIMEZONE
from schemas.grid import Grid
from simulation.town import REPORT_BOX, VILLAGES, ReportedCategory

LATTICE_DEG = 0.0012
"""Spacing of report locations: ~133 m north-south, ~113 m east-west at Menghe, over the 50 m merge distance."""
REPORTERS = 146
"""Grid workers of the town, who take turns as reporters."""


def lattice_points(grid: Grid) -> list[tuple[float, float]]:
    """The lattice's points that fall inside the town grid, row by row from the south-west corner."""
    box = REPORT_BOX
    points = []
    for row in range(int((box.lat_max - box.lat_min) / LATTICE_DEG)):
        for column in range(int((box.lon_max - box.lon_min) / LATTICE_DEG)):
            lat, lon = round(box.lat_min + row * LATTICE_DEG, 6), round(box.lon_min + column * LATTICE_DEG, 6)
            if grid.locate(lat, lon) is not None:
                points.append((lat, lon))
    return points


class ReportLattice:
    """Hands out report bodies, each on a (category, location) pair no earlier body of this lattice had."""

    def __init__(self, points: list[tuple[float, float]], categories: tuple[ReportedCategory, ...]) -> None:
        self.points = points
        self.categories = categories
        self.used = 0
        """Pairs handed out so far: the next body takes pair number ``used``."""

    @classmethod
    def of(cls, grid: Grid, categories: tuple[ReportedCategory, ...]) -> ReportLattice:
        """The lattice of the town grid, with every reported category on every point."""
        return cls(lattice_points(grid), categories)

    @property
    def capacity(self) -> int:
        """How many separate reports the lattice holds in all."""
        return len(self.points) * len(self.categories)

    def require(self, count: int) -> None:
        """Fail before a run starts if its ``count`` reports would not all find a pair of their own."""
        if self.used + count > self.capacity:
            raise BenchError(
                f"the town grid has room for {self.capacity - self.used:,} more separate reports, not {count:,}"
            )

    def take(self, count: int, prefix: str) -> list[dict[str, Any]]:
        """The next ``count`` valid report bodies, with report ids ``prefix`` + a six-digit number."""
        self.require(count)
        first, self.used = self.used, self.used + count
        return [self._body(f"{prefix}{number:06d}", first + number) for number in range(count)]

    def _body(self, report_id: str, pair: int) -> dict[str, Any]:
        spec = self.categories[pair % len(self.categories)]
        lat, lon = self.points[pair // len(self.categories)]
        villages = list(VILLAGES)
        place = villages[pair % len(villages)] + "村口"
        return {
            "report_id": report_id,
            "category": spec.code,
            "description": spec.descriptions[pair % len(spec.descriptions)].format(place=place),
            "lat": lat,
            "lon": lon,
            "reporter_id": f"GW{pair % REPORTERS + 1:03d}",
            "photos": [f"sha256:{uuid.uuid5(uuid.NAMESPACE_OID, str(pair)).hex * 2}"],
        }


def sent_now(body: dict[str, Any]) -> dict[str, Any]:
    """The body as a phone sends it: stamped with the moment it leaves, in town time."""
    return {**body, "reported_at": datetime.now(TOWN_TIMEZONE).isoformat(timespec="seconds")}
