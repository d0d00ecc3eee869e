"""The governance grid: the shipped layer, point placement, coordinate offsets and layer validation.

Expected values come from the article's figures (128 + 18 cells, 146 workers, about 88 km²),
from published conversion vectors of an independent implementation (gcoord's test suite) and
from geometry recomputed here with shapely, not from the generator's own tables.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point, Polygon, box

from foundation.packaged import MENGHE_GRID
from schemas.grid import Grid, GridCell, GridError, from_wgs84, to_wgs84
from simulation.day import simulate_day
from simulation.grid import synthetic_grid, write_synthetic_grid

LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = 31.95, 32.03, 119.82, 119.925
EARTH_RADIUS_M = 6_371_008.8


@pytest.fixture(scope="module")
def grid() -> Grid:
    return Grid.load(MENGHE_GRID)


def _basic(grid: Grid) -> list[GridCell]:
    return [cell for cell in grid.cells.values() if cell.kind == "basic"]


def _dedicated(grid: Grid) -> list[GridCell]:
    return [cell for cell in grid.cells.values() if cell.kind == "dedicated"]


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance, independent of the module under test."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


# --- the shipped layer ------------------------------------------------------------------------


def test_shipped_file_is_the_generated_grid(tmp_path: Path) -> None:
    shipped = MENGHE_GRID.read_bytes()
    assert json.loads(shipped) == synthetic_grid()
    # byte for byte, so regenerating never produces a spurious diff
    assert write_synthetic_grid(tmp_path / "grid.geojson").read_bytes() == shipped
    assert "万绥村" in shipped.decode("utf-8")  # ensure_ascii=False: readable in a diff
    assert b"\n " not in shipped  # compact


def test_shipped_grid_round_trips_through_geojson(grid: Grid) -> None:
    assert grid.to_geojson() == synthetic_grid()
    assert Grid.from_geojson(grid.to_geojson()).cells == grid.cells


def test_cell_counts_match_the_article(grid: Grid) -> None:
    assert len(_basic(grid)) == 128
    assert len(_dedicated(grid)) == 18
    assert Counter(cell.dedicated_to for cell in _dedicated(grid)) == {
        "school": 8,
        "hospital": 4,
        "park": 4,
        "industrial_park": 1,
        "agricultural_park": 1,
    }
    assert all(cell.dedicated_to is None for cell in _basic(grid))


def test_146_distinct_workers_one_cell_each(grid: Grid) -> None:
    workers = grid.workers()
    assert len(workers) == 146
    assert sum(len(cell.workers) for cell in grid.cells.values()) == 146
    assert sorted(workers) == [f"GW{number:03d}" for number in range(1, 147)]
    assert {worker for cell in _basic(grid) for worker in cell.workers} == {f"GW{n:03d}" for n in range(1, 129)}
    assert {worker for cell in _dedicated(grid) for worker in cell.workers} == {f"GW{n:03d}" for n in range(129, 147)}
    assert all(worker in cell.workers for worker, cell in workers.items())


def test_area_is_about_88_km2(grid: Grid) -> None:
    area = grid.area_km2()
    assert 85 <= area <= 91
    # independent estimate: the box on a sphere, exact spherical-zone formula
    zone = EARTH_RADIUS_M**2 * math.radians(LON_MAX - LON_MIN)
    spherical = zone * (math.sin(math.radians(LAT_MAX)) - math.sin(math.radians(LAT_MIN))) / 1e6
    assert area == pytest.approx(spherical, rel=0.005)


def test_area_counts_basic_cells_once_and_uses_metres() -> None:
    # 0.01° × 0.01° at the equator: 1.10574 km × 1.11320 km on the WGS84 ellipsoid
    basic = GridCell("320411101001001", "a", "甲村", "wansui", "basic", None, ("GW1",), box(0, 0, 0.01, 0.01))
    inside = GridCell("320411101001002", "b", "甲村", "wansui", "dedicated", "park", ("GW2",), box(0, 0, 0.005, 0.005))
    assert Grid([basic, inside]).area_km2() == pytest.approx(1.10574 * 1.11320, rel=1e-4)


def test_codes_are_15_digits_unique_and_follow_the_community(grid: Grid) -> None:
    codes = [cell.code for cell in grid.cells.values()]
    assert len(codes) == len(set(codes)) == 146
    assert all(re.fullmatch(r"320411101\d{6}", code) for code in codes)
    by_community: dict[str, set[str]] = {}
    for cell in grid.cells.values():
        by_community.setdefault(cell.community, set()).add(cell.code[9:12])
    assert all(len(segment) == 1 for segment in by_community.values()), by_community
    assert sorted(segment.pop() for segment in by_community.values()) == [f"{n:03d}" for n in range(1, 11)]
    for community in by_community:
        sequences = sorted(int(cell.code[12:]) for cell in grid.cells.values() if cell.community == community)
        assert sequences == list(range(1, len(sequences) + 1)), community
    assert {"万绥村", "小河村", "孟城村", "孟河社区"} <= set(by_community)


def test_basic_cells_tile_the_box(grid: Grid) -> None:
    polygons = [cell.polygon for cell in _basic(grid)]
    assert sum(polygon.area for polygon in polygons) == pytest.approx(box(LON_MIN, LAT_MIN, LON_MAX, LAT_MAX).area)
    for polygon in polygons:
        assert box(LON_MIN, LAT_MIN, LON_MAX, LAT_MAX).covers(polygon)


def test_communities_own_contiguous_blocks(grid: Grid) -> None:
    from shapely import union_all

    for community in {cell.community for cell in _basic(grid)}:
        block = union_all([cell.polygon for cell in _basic(grid) if cell.community == community])
        assert block.geom_type == "Polygon", community


def test_dedicated_cells_lie_inside_one_basic_cell_of_their_community(grid: Grid) -> None:
    hosts = []
    for cell in _dedicated(grid):
        containing = [basic for basic in _basic(grid) if basic.polygon.contains(cell.polygon)]
        assert len(containing) == 1, cell.name
        host = containing[0]
        assert (host.community, host.squad) == (cell.community, cell.squad)
        hosts.append(host.code)
        lat_span = cell.polygon.bounds[3] - cell.polygon.bounds[1]
        assert 100 < lat_span * 111_000 < 700, cell.name  # a few hundred metres across
    assert len(set(hosts)) == 18


# --- placement --------------------------------------------------------------------------------


def test_a_dedicated_cell_wins_over_its_basic_cell(grid: Grid) -> None:
    for cell in _dedicated(grid):
        host = next(basic for basic in _basic(grid) if basic.polygon.contains(cell.polygon))
        inside = cell.polygon.representative_point()
        assert grid.locate(inside.y, inside.x) == cell
        elsewhere = host.polygon.difference(cell.polygon).representative_point()
        assert grid.locate(elsewhere.y, elsewhere.x) == host


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (LAT_MAX + 0.001, 119.87),
        (LAT_MIN - 0.001, 119.87),
        (31.99, LON_MIN - 0.001),
        (31.99, LON_MAX + 0.001),
        (39.9087, 116.3975),
        (0.0, 0.0),
    ],
)
def test_points_outside_the_town_are_none(grid: Grid, lat: float, lon: float) -> None:
    assert grid.locate(lat, lon) is None


def test_boundary_points_are_inside_and_shared_edges_go_to_the_lower_code(grid: Grid) -> None:
    assert grid.locate(LAT_MIN, LON_MIN) is not None
    assert grid.locate(LAT_MAX, LON_MAX) is not None
    edge_lon = LON_MIN + (LON_MAX - LON_MIN) / 16  # between 320411101001001 and ...002
    assert grid.locate(32.025, edge_lon).code == "320411101001001"


@pytest.mark.parametrize(
    ("lon", "squad"),
    [(119.823, "wansui"), (119.85, "wansui"), (119.87, "mengcheng"), (119.885, "mengcheng"), (119.92, "xiaohe")],
)
def test_squads_by_area(grid: Grid, lon: float, squad: str) -> None:
    for lat in (31.955, 31.99, 32.025):
        assert grid.locate(lat, lon).squad == squad


def test_every_cell_squad_follows_its_third_of_the_town(grid: Grid) -> None:
    third = (LON_MAX - LON_MIN) / 3
    expected = {0: "wansui", 1: "mengcheng", 2: "xiaohe"}
    for cell in grid.cells.values():
        assert cell.squad == expected[int((cell.polygon.centroid.x - LON_MIN) // third)], cell.code
    assert Counter(cell.squad for cell in _basic(grid)) == {"wansui": 40, "mengcheng": 48, "xiaohe": 40}


def test_offset_coordinates_are_converted_before_placement(grid: Grid) -> None:
    school = next(cell for cell in _dedicated(grid) if cell.name == "孟河中学")
    point = school.polygon.representative_point()
    for system in ("gcj02", "bd09"):
        lat, lon = from_wgs84(point.y, point.x, system)
        assert grid.locate(lat, lon, system) == school
        assert grid.locate(lat, lon) != school  # read as WGS84, the offset misplaces it


def test_town_day_reports_all_land_in_the_grid(grid: Grid) -> None:
    reports = simulate_day(events=300).reports
    assert len(reports) >= 300
    unplaced = [(r["lat"], r["lon"]) for r in reports if grid.locate(r["lat"], r["lon"]) is None]
    assert unplaced == []


def test_locates_10000_random_points_correctly(grid: Grid) -> None:
    rng = random.Random(20261125)
    inside = 0
    for _ in range(10_000):
        lat, lon = rng.uniform(31.94, 32.04), rng.uniform(119.81, 119.935)
        cell = grid.locate(lat, lon)
        in_box = LAT_MIN < lat < LAT_MAX and LON_MIN < lon < LON_MAX
        assert (cell is not None) == in_box, (lat, lon)
        if cell is not None:
            inside += 1
            assert cell.polygon.covers(Point(lon, lat))
    assert 5_000 < inside < 8_000


def test_locate_refuses_values_that_are_not_coordinates(grid: Grid) -> None:
    with pytest.raises(ValueError, match="finite"):
        grid.locate(math.nan, 119.87)
    with pytest.raises(ValueError, match="swapped"):
        grid.locate(119.87, 31.99)
    with pytest.raises(ValueError, match="unknown coordinate system"):
        grid.locate(31.99, 119.87, "cgcs2000")  # type: ignore[arg-type]


# --- coordinate systems -----------------------------------------------------------------------


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_round_trips_across_the_town_and_china(system: str) -> None:
    points = [(LAT_MIN + i * 0.02, LON_MIN + j * 0.025) for i in range(5) for j in range(5)]
    points += [(39.9087, 116.3975), (22.54, 114.06), (45.75, 126.63), (29.65, 91.13)]
    for lat, lon in points:
        offset = from_wgs84(lat, lon, system)
        assert _metres(lat, lon, *offset) > 100  # there is an offset to undo
        back = to_wgs84(*offset, system)
        assert back == pytest.approx((lat, lon), abs=1e-6)


def test_published_vectors() -> None:
    # hujiulong/gcoord test/unit/crs/*.spec.ts, point (lon 123, lat 45), 5 decimals published
    assert from_wgs84(45, 123, "gcj02") == pytest.approx((45.00197815, 123.00607541), abs=1e-7)
    assert from_wgs84(45, 123, "bd09") == pytest.approx((45.0083293, 123.0124491), abs=1e-6)
    assert to_wgs84(45, 123, "gcj02") == pytest.approx((44.99804071, 122.99395597), abs=5e-6)
    assert to_wgs84(45, 123, "bd09") == pytest.approx((44.99171540, 122.98762210), abs=5e-6)


def test_tiananmen_offset_is_a_few_hundred_metres() -> None:
    lat, lon = 39.9087, 116.3975
    gcj = from_wgs84(lat, lon, "gcj02")
    assert gcj == pytest.approx((39.91010, 116.40374), abs=1e-5)  # the familiar Amap position
    assert 100 < _metres(lat, lon, *gcj) < 700
    assert to_wgs84(*gcj, "gcj02") == pytest.approx((lat, lon), abs=1e-6)


def test_wgs84_is_identity_and_gcj_is_identity_outside_china() -> None:
    assert to_wgs84(31.99, 119.87, "wgs84") == (31.99, 119.87)
    assert from_wgs84(51.5, -0.12, "gcj02") == (51.5, -0.12)
    assert to_wgs84(51.5, -0.12, "gcj02") == (51.5, -0.12)


# --- validation -------------------------------------------------------------------------------

BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[119.82, 32.02], [119.83, 32.03], [119.83, 32.02], [119.82, 32.03], [119.82, 32.02]]],
}


def _broken(mutate: Any) -> dict[str, Any]:
    document = copy.deepcopy(synthetic_grid())
    mutate(document)
    return document


def _set(index: int, key: str, value: Any) -> Any:
    def mutate(document: dict[str, Any]) -> None:
        document["features"][index]["properties"][key] = value

    return mutate


def _delete(index: int, key: str) -> Any:
    def mutate(document: dict[str, Any]) -> None:
        del document["features"][index]["properties"][key]

    return mutate


def _geometry(index: int, geometry: Any) -> Any:
    def mutate(document: dict[str, Any]) -> None:
        document["features"][index]["geometry"] = geometry

    return mutate


def _swap_lat_lon(document: dict[str, Any]) -> None:
    ring = document["features"][4]["geometry"]["coordinates"][0]
    document["features"][4]["geometry"]["coordinates"][0] = [[lat, lon] for lon, lat in ring]


def _overlap(document: dict[str, Any]) -> None:
    ring = document["features"][1]["geometry"]["coordinates"][0]
    document["features"][1]["geometry"]["coordinates"][0] = [[lon - 0.002, lat] for lon, lat in ring]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_delete(3, "squad"), r"feature 3 \(320411101001004\): missing property 'squad'"),
        (_delete(3, "workers"), r"feature 3 \(320411101001004\): missing property 'workers'"),
        (_set(3, "code", "32041110100104"), r"feature 3 \(32041110100104\): code '32041110100104' is not 15 digits"),
        (_set(3, "code", "32041110100100A"), r"code '32041110100100A' is not 15 digits"),
        (_set(3, "code", 320411101001004), r"feature 3: code 320411101001004 is not 15 digits"),
        (_set(1, "code", "320411101001001"), r"duplicate code 320411101001001 \(2 cells\)"),
        (_geometry(5, BOWTIE), r"feature 5 \(320411101001006\): geometry is invalid: Self-intersection"),
        (_geometry(5, {"type": "Point", "coordinates": [119.85, 31.99]}), r"feature 5 .*got 'Point'"),
        (_geometry(5, None), r"feature 5 .*has no geometry"),
        (_geometry(5, {"type": "Polygon", "coordinates": [[[1, 2]]]}), r"feature 5 .*geometry cannot be read"),
        (_set(2, "squad", "menghe"), r"feature 2 .*squad 'menghe' is not one of wansui, mengcheng, xiaohe"),
        (_set(2, "kind", "special"), r"feature 2 .*kind 'special'"),
        (_set(2, "dedicated_to", "school"), r"feature 2 .*basic cell must not have dedicated_to"),
        (_set(-1, "dedicated_to", None), r"feature 145 .*missing property 'dedicated_to'"),
        (_set(-1, "dedicated_to", "factory"), r"feature 145 .*dedicated_to in school, hospital, park"),
        (_set(2, "workers", "GW003"), r"feature 2 .*'workers' must be a list"),
        (_set(2, "workers", []), r"feature 2 .*workers is empty"),
        (_set(2, "workers", ["GW001"]), r"worker GW001 patrols two cells: 320411101001001 and 320411101001003"),
        (_set(2, "name", ""), r"feature 2 .*name must be a non-empty string"),
        (_swap_lat_lon, r"feature 4 .*not longitude/latitude"),
        (_overlap, r"basic cells 320411101001001 and 320411101001002 overlap"),
    ],
)
def test_layer_problems_are_named(mutate: Any, expected: str) -> None:
    with pytest.raises(GridError, match=expected) as caught:
        Grid.from_geojson(_broken(mutate))
    assert len(caught.value.problems) == 1, caught.value.problems


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"type": "Feature", "properties": {}, "geometry": None},
            r"not a GeoJSON FeatureCollection \(type 'Feature'\)",
        ),
        ([], r"not a GeoJSON FeatureCollection \(type 'list'\)"),
        ({"type": "FeatureCollection", "features": []}, r"non-empty 'features' list"),
        ({"type": "FeatureCollection"}, r"non-empty 'features' list"),
        ({"type": "FeatureCollection", "features": ["x"]}, r"feature 0: is not a JSON object"),
        ({"type": "FeatureCollection", "features": [{"type": "Feature"}]}, r"feature 0: has no properties object"),
    ],
)
def test_documents_that_are_not_grid_layers(document: Any, expected: str) -> None:
    with pytest.raises(GridError, match=expected):
        Grid.from_geojson(document)


def test_every_problem_is_reported_at_once() -> None:
    def many(document: dict[str, Any]) -> None:
        _delete(3, "squad")(document)
        _set(7, "code", "123")(document)
        _geometry(9, BOWTIE)(document)
        _set(11, "code", "320411101001001")(document)

    with pytest.raises(GridError) as caught:
        Grid.from_geojson(_broken(many))
    message = str(caught.value)
    assert message.startswith("grid GeoJSON: 4 problems")
    for fragment in ("feature 3", "feature 7 (123)", "feature 9", "duplicate code 320411101001001"):
        assert fragment in message


def test_load_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.geojson"
    with pytest.raises(GridError, match=re.escape(str(missing))):
        Grid.load(missing)
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", ', encoding="utf-8")
    with pytest.raises(GridError, match=re.escape(str(broken)) + r".*not valid JSON"):
        Grid.load(broken)
    wrong = tmp_path / "wrong.geojson"
    wrong.write_text('{"type": "Topology"}', encoding="utf-8")
    with pytest.raises(GridError, match=re.escape(str(wrong)) + r".*FeatureCollection"):
        Grid.load(wrong)


def test_cells_validate_themselves() -> None:
    square = Polygon([(119.85, 31.99), (119.86, 31.99), (119.86, 32.0), (119.85, 32.0)])
    with pytest.raises(GridError, match="not 15 digits"):
        GridCell("3204111010010", "a", "甲村", "wansui", "basic", None, ("GW1",), square)
    with pytest.raises(GridError, match="Polygon or MultiPolygon"):
        GridCell("320411101001001", "a", "甲村", "wansui", "basic", None, ("GW1",), Point(119.85, 31.99))  # type: ignore[arg-type]
    with pytest.raises(GridError, match="worker GW1 patrols two cells"):
        cell = GridCell("320411101001001", "a", "甲村", "wansui", "basic", None, ("GW1",), square)
        Grid([cell, GridCell("320411101001002", "b", "甲村", "wansui", "dedicated", "park", ("GW1",), square)])
