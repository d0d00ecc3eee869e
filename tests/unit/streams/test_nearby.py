"""Geographic duplicate detection: distances, the duplicate rules and the index of open cases."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.case_state import Case
from streams.nearby import OpenCases, distance_m, find_duplicate
from tests.support.cases import LAT, LON, T0, at_status, fresh

# Duplicate reports --------------------------------------------------------------------------------------


def test_distance_of_known_points() -> None:
    assert distance_m(LAT, LON, LAT, LON) == 0
    assert distance_m(0, 0, 1, 0) == pytest.approx(111_195, abs=1)  # one degree of latitude
    assert distance_m(0, 0, 0, 1) == pytest.approx(111_195, abs=1)  # one degree of longitude on the equator
    assert distance_m(LAT, LON, LAT + 0.001, LON) == pytest.approx(distance_m(LAT + 0.001, LON, LAT, LON))
    assert distance_m(0, 0, 0, 180) == pytest.approx(20_015_115, abs=1)


def near(case_id: str, north_m: float, *, minutes: float = 0, category: str = "0102") -> Case:
    """A case ``north_m`` metres north of the centre, reported ``minutes`` after T0."""
    return fresh(
        case_id, lat=LAT + north_m / 111_195, lon=LON, category=category, reported_at=T0 + timedelta(minutes=minutes)
    )


def dup(cases: list[Case], *, at: datetime = T0, category: str = "0102", metres: float = 50, minutes: float = 60):
    return find_duplicate(cases, category=category, lat=LAT, lon=LON, at=at, max_distance_m=metres, max_minutes=minutes)


def test_duplicate_distance_limit_is_inclusive() -> None:
    case = near("C-1", 40)
    exact = distance_m(LAT, LON, case.lat, case.lon)
    assert dup([case], metres=exact) == case
    assert dup([case], metres=exact - 0.01) is None


@pytest.mark.parametrize("sign", [1, -1])
def test_duplicate_time_window_is_inclusive_either_side(sign: int) -> None:
    case = near("C-1", 10)
    assert dup([case], at=T0 + sign * timedelta(minutes=60)) == case
    assert dup([case], at=T0 + sign * timedelta(minutes=60, seconds=1)) is None


def test_duplicate_needs_the_same_category() -> None:
    assert dup([near("C-1", 10, category="0104")]) is None


@pytest.mark.parametrize("status", ["closed", "rejected", "cancelled"])
def test_finished_cases_are_never_duplicates(status: str) -> None:
    finished = at_status(status)
    assert dup([finished]) is None
    assert dup([finished, near("C-2", 30)]).case_id == "C-2"


def test_nearest_duplicate_wins_whatever_the_order() -> None:
    cases = [near("C-far", 45), near("C-near", 5), near("C-mid", 20)]
    assert dup(cases).case_id == "C-near"
    assert dup(list(reversed(cases))).case_id == "C-near"


def test_equally_near_duplicates_go_to_the_earlier_report() -> None:
    cases = [near("C-b", 10, minutes=5), near("C-a", 10, minutes=-5)]
    assert dup(cases).case_id == "C-a" and dup(list(reversed(cases))).case_id == "C-a"


def test_duplicates_in_progress_still_match() -> None:
    assert dup([at_status("handled")]).case_id == "C-1"


def scattered(lat: float, lon: float, offsets: list[tuple[float, float, int]]) -> list[Case]:
    """Cases around a point: (metres north, metres east, category number) each."""
    metres_per_degree = 111_195
    return [
        fresh(
            f"C-{number}",
            lat=max(-90.0, min(90.0, lat + north / metres_per_degree)),
            lon=lon + east / (metres_per_degree * max(math.cos(math.radians(lat)), 1e-6)),
            category=f"010{category}",
        )
        for number, (north, east, category) in enumerate(offsets)
    ]


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-89.9, 89.9),
    lon=st.floats(-179.99, 179.99),
    metres=st.sampled_from([1.0, 50.0, 400.0]),
    offsets=st.lists(st.tuples(st.floats(-150, 150), st.floats(-150, 150), st.integers(1, 2)), max_size=25),
)
@example(lat=LAT, lon=LON, metres=50.0, offsets=[(50.0, 0.0, 1), (0.0, 49.99, 1), (-35.0, 35.0, 1)])
@example(lat=89.9, lon=0.0, metres=400.0, offsets=[(0.0, 150.0, 1)])
@example(lat=0.0, lon=179.9999, metres=50.0, offsets=[(0.0, 30.0, 1)])
def test_the_open_case_index_finds_the_duplicate_a_full_scan_finds(
    lat: float, lon: float, metres: float, offsets: list[tuple[float, float, int]]
) -> None:
    cases = scattered(lat, lon, offsets)
    index = OpenCases(metres)
    for case in cases:
        index.follow(case)
    for category in ("0101", "0102"):
        wanted = find_duplicate(
            cases, category=category, lat=lat, lon=lon, at=T0, max_distance_m=metres, max_minutes=60
        )
        found = find_duplicate(
            index.near(category, lat, lon),
            category=category,
            lat=lat,
            lon=lon,
            at=T0,
            max_distance_m=metres,
            max_minutes=60,
        )
        assert found == wanted


def test_the_open_case_index_looks_only_near_the_report() -> None:
    index = OpenCases(50)
    for case in scattered(
        LAT, LON, [(north, east, 2) for north in range(-2000, 2001, 100) for east in range(-2000, 2001, 100)]
    ):
        index.follow(case)
    assert 0 < len(index.near("0102", LAT, LON)) <= 9
    assert len(index.cases("0102")) == 41 * 41


def test_the_open_case_index_follows_moves_and_drops_finished_cases() -> None:
    index = OpenCases(50)
    case = fresh("C-1")
    index.follow(case)
    moved = replace(case, lat=LAT + 0.01)
    index.follow(moved)
    assert index.near("0102", LAT, LON) == []
    assert index.near("0102", LAT + 0.01, LON) == [moved]
    index.follow(replace(moved, status="closed"))
    assert index.cases() == [] and index.near("0102", LAT + 0.01, LON) == []
