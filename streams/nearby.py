"""Geographic duplicate detection: which open case a new report most likely repeats.

Two grid workers photographing the same pile of rubbish should make one case, not two work orders.
This is geometry and search over open cases, not a step of the case flow, so it lives apart from the
state machine: the case agent asks it for a match, then merges the report with
:func:`streams.case_machine.merge_report` or opens a case. The simulated town day uses
:func:`distance_m` to keep distinct problems far enough apart that only its deliberate second reports
merge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from streams.case_machine import FINISHED_STATUSES
from streams.case_state import Case, aware

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), good to ~0.5 % for haversine distances


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres between two WGS84 points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def find_duplicate(
    open_cases: Iterable[Case],
    *,
    category: str,
    lat: float,
    lon: float,
    at: datetime,
    max_distance_m: float,
    max_minutes: float,
) -> Case | None:
    """The open case a new report most likely repeats, or None.

    A match has the same category, is not finished (closed, rejected or cancelled), lies within
    ``max_distance_m`` and was reported within ``max_minutes`` either side of ``at`` (both limits
    inclusive). The nearest match wins; ties go to the earlier report, then the smaller case id, so the
    answer never depends on order.
    """
    at = aware(at)
    window = timedelta(minutes=max_minutes)
    best: tuple[float, datetime, str, Case] | None = None
    for case in open_cases:
        if case.category != category or case.status in FINISHED_STATUSES:
            continue
        if abs(at - case.reported_at) > window:
            continue
        distance = distance_m(lat, lon, case.lat, case.lon)
        if distance > max_distance_m:
            continue
        candidate = (distance, case.reported_at, case.case_id, case)
        if best is None or candidate[:3] < best[:3]:
            best = candidate
    return None if best is None else best[3]


class OpenCases:
    """The open cases, by category and by square of the duplicate distance, for :func:`find_duplicate`.

    Comparing each new report with every open case of its category made a busy day quadratic
    (cases stay open for hours). Cases here sit in squares one ``max_distance_m`` on a side
    (in degrees of latitude and, at the equator, of longitude); :meth:`near` returns the cases
    of every square a circle of that radius around the report can touch, widening the band
    of longitude with the latitude, so it always holds every case :func:`find_duplicate` could
    choose and the answer is the one a full scan gives. Near a pole or across the 180th
    meridian, where the squares stop being a small neighbourhood, it returns the whole category.
    """

    MAX_COLUMNS = 64
    """Beyond this many squares east and west of the report, a scan of the category is cheaper."""

    def __init__(self, max_distance_m: float) -> None:
        if not max_distance_m > 0:
            raise ValueError(f"max_distance_m must be positive, got {max_distance_m!r}")
        self._radius = max_distance_m / EARTH_RADIUS_M  # the duplicate distance as an angle, radians
        self._side = math.degrees(self._radius)
        self._by_category: dict[str, dict[str, Case]] = {}
        self._squares: dict[tuple[str, int, int], dict[str, Case]] = {}
        self._square_of: dict[str, tuple[str, int, int]] = {}

    def _square(self, case: Case) -> tuple[str, int, int]:
        return case.category, math.floor(case.lat / self._side), math.floor(case.lon / self._side)

    def follow(self, case: Case) -> None:
        """Keep the latest state of ``case``: open cases are indexed, finished ones dropped."""
        previous = self._square_of.pop(case.case_id, None)
        if previous is not None:
            self._by_category[previous[0]].pop(case.case_id, None)
            self._squares[previous].pop(case.case_id, None)
        if case.status in FINISHED_STATUSES:
            return
        square = self._square(case)
        self._square_of[case.case_id] = square
        self._by_category.setdefault(case.category, {})[case.case_id] = case
        self._squares.setdefault(square, {})[case.case_id] = case

    def cases(self, category: str | None = None) -> list[Case]:
        """Every open case, or those of one category."""
        if category is not None:
            return list(self._by_category.get(category, {}).values())
        return [case for cases in self._by_category.values() for case in cases.values()]

    def near(self, category: str, lat: float, lon: float) -> list[Case]:
        """Open cases of ``category`` that may lie within the duplicate distance of a point.

        Within distance d, latitudes differ by at most d/R, and by the haversine formula
        sin(Δλ/2) ≤ sin(d/2R) / cos φ, where φ is the largest latitude either point can have
        (the report's plus d/R); these bound the squares to look in. Both bounds are widened by
        a thousandth against rounding.
        """
        radius = self._radius * 1.001
        widest = math.radians(abs(lat)) + radius
        ratio = math.sin(radius / 2) / math.cos(widest) if widest < math.pi / 2 else math.inf
        if ratio >= 1:
            return self.cases(category)
        reach = math.degrees(2 * math.asin(ratio))
        if abs(lon) + reach > 180 or reach > self.MAX_COLUMNS * self._side:
            return self.cases(category)
        reach_lat = math.degrees(radius)
        rows = range(math.floor((lat - reach_lat) / self._side), math.floor((lat + reach_lat) / self._side) + 1)
        columns = range(math.floor((lon - reach) / self._side), math.floor((lon + reach) / self._side) + 1)
        found: list[Case] = []
        for row in rows:
            for column in columns:
                square = self._squares.get((category, row, column))
                if square:
                    found.extend(square.values())
        return found
