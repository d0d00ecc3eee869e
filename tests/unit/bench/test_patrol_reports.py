"""Report bodies of one benchmark run never share a category-and-place pair, across all its loads.

Two reports of one category within 50 m become one case, and the benchmark's cases stay open,
so a shared pair anywhere in the run would merge two reports and break the exact counts.
"""

from __future__ import annotations

import pytest

from bench.hub import BenchError
from bench.incidents import DURATION_S, RATE_PER_S
from bench.latency_curve import plan
from bench.patrol_reports import ReportLattice
from foundation.packaged import CATEGORIES, MENGHE_GRID
from schemas.grid import Grid
from simulation.town import reported_categories
from streams.routing import load_rules


@pytest.fixture(scope="module")
def lattice_of_the_town() -> ReportLattice:
    return ReportLattice.of(Grid.load(MENGHE_GRID), reported_categories(load_rules(CATEGORIES)))


def fresh(lattice: ReportLattice) -> ReportLattice:
    return ReportLattice(lattice.points, lattice.categories)


def test_the_whole_incidents_run_fits_on_the_town_lattice(lattice_of_the_town: ReportLattice) -> None:
    planned = 1 + RATE_PER_S * DURATION_S + sum(step.reports for step in plan())
    assert planned <= lattice_of_the_town.capacity
    fresh(lattice_of_the_town).require(planned)


def test_pairs_never_repeat_across_the_loads_of_a_run(lattice_of_the_town: ReportLattice) -> None:
    lattice = fresh(lattice_of_the_town)
    bodies = [
        *lattice.take(1, "BENCH-x-trace-"),
        *lattice.take(RATE_PER_S * DURATION_S, "BENCH-x-main-"),
        *(body for step in plan() for body in lattice.take(step.reports, f"BENCH-x-r{step.rate_per_s:g}-")),
    ]
    pairs = {(body["category"], body["lat"], body["lon"]) for body in bodies}
    assert len(pairs) == len(bodies)
    assert len({body["report_id"] for body in bodies}) == len(bodies)
    assert all(len(body["report_id"]) <= 64 for body in bodies)


def test_places_of_one_category_are_apart_beyond_the_merge_distance(lattice_of_the_town: ReportLattice) -> None:
    lattice = fresh(lattice_of_the_town)
    bodies = lattice.take(5 * len(lattice.categories), "BENCH-x-")
    first = bodies[0]
    same_category = [body for body in bodies if body["category"] == first["category"]]
    assert len(same_category) == 5
    assert len({(body["lat"], body["lon"]) for body in same_category}) == 5


def test_the_lattice_refuses_more_than_it_holds(lattice_of_the_town: ReportLattice) -> None:
    lattice = fresh(lattice_of_the_town)
    lattice.take(lattice.capacity - 10, "BENCH-x-")
    with pytest.raises(BenchError, match="room for 10 more"):
        lattice.take(11, "BENCH-y-")
    assert len(lattice.take(10, "BENCH-y-")) == 10
