"""The town's governance grid ("one grid for governance", 一张网管治理): cells, workers and placement.

Every incident a grid worker photographs has to land in exactly one cell, because the cell
decides who is responsible: its grid workers, its community and the enforcement squad of its
area. The grid is therefore loaded once, validated strictly (a broken layer would silently
misroute every report in the affected area) and then queried for each incoming point.

Cells follow reference/domain-standards.md §3.2: a 15-digit code of 6 county + 3 township +
3 community/village + 3 sequence digits, basic cells (基础网格) that tile the town, and small
dedicated cells (专属网格) for schools, hospitals and parks that lie inside basic cells and take
precedence over them. Geometry is WGS84 longitude/latitude as GeoJSON (RFC 7946) requires.

Phones report WGS84, but coordinates copied from Chinese map services are GCJ-02 (Amap,
Tencent) or BD-09 (Baidu), offset by hundreds of metres (§6.4). :func:`to_wgs84` undoes those
offsets before a point is placed, otherwise events near a boundary fall into the wrong cell.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import shapely
from shapely.errors import GEOSException, ShapelyError
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.strtree import STRtree
from shapely.validation import explain_validity

from foundation.errors import ConfigurationError

Squad = Literal["wansui", "mengcheng", "xiaohe"]
"""The three area squads of the integrated enforcement bureau: 万绥, 孟城, 小河."""
CoordinateSystem = Literal["wgs84", "gcj02", "bd09"]
"""WGS84 (GPS), GCJ-02 (Amap/Tencent, state-mandated offset), BD-09 (Baidu, offset again)."""
CellKind = Literal["basic", "dedicated"]
"""基础网格 tiles the town; 专属网格 covers one institution inside a basic cell."""
DedicatedTo = Literal["school", "hospital", "park", "industrial_park", "agricultural_park"]
"""What a dedicated cell is dedicated to: the article names schools, hospitals and parks (园区), and among
these the industrial park (工业园区) and the modern agricultural park (现代农业园区)."""

SQUADS: tuple[str, ...] = get_args(Squad)
COORDINATE_SYSTEMS: tuple[str, ...] = get_args(CoordinateSystem)
CELL_KINDS: tuple[str, ...] = get_args(CellKind)
DEDICATED_TO: tuple[str, ...] = get_args(DedicatedTo)

CODE_PATTERN = re.compile(r"^[0-9]{15}$")
"""6 county (GB/T 2260) + 3 township + 3 community/village + 3 grid sequence digits."""
REQUIRED_PROPERTIES: tuple[str, ...] = ("code", "name", "community", "squad", "kind", "workers")

_OVERLAP_TOLERANCE_DEG2 = 1e-12
"""Overlap area (square degrees, about 0.01 m² here) above which two basic cells overlap.

Cells that merely share an edge intersect with zero area; floating-point noise on a shared
edge stays far below this, a real overlap (a redrawn cell left in the layer) far above it.
"""

# WGS84 ellipsoid, for the local metric scale used by area_km2.
_WGS84_A = 6378137.0
_WGS84_E2 = 0.00669437999014

# GCJ-02 obfuscation constants (Krasovsky 1940 ellipsoid) and the BD-09 factor, as published
# with the widely reproduced conversion code (eviltransform, coordtransform, gcoord).
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
_BD_X_PI = math.pi * 3000.0 / 180.0
_INVERSE_TOLERANCE_DEG = 1e-10
_INVERSE_MAX_ITERATIONS = 30


class GridError(ConfigurationError):
    """A grid layer that cannot be used; the message lists every problem, not just the first.

    Whoever maintains the layer fixes it in a GIS tool and reloads it, so being told about all
    broken features at once saves a round trip per feature. :attr:`problems` holds them one by one.
    """

    def __init__(self, problems: Iterable[str], *, source: str = "grid") -> None:
        self.problems: list[str] = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"{source}: {self.problems[0]}")
        else:
            listed = "".join(f"\n  - {problem}" for problem in self.problems)
            super().__init__(f"{source}: {len(self.problems)} problems{listed}")


@dataclass(frozen=True)
class GridCell:
    """One grid cell: the unit of responsibility a report is dispatched by.

    Construction checks the cell's own rules (code format, allowed values, a valid polygon),
    so a cell that exists is usable; rules that involve several cells are checked by :class:`Grid`.
    """

    code: str
    """15 digits: 320411 (新北区) + 101 (孟河镇) + community/village + grid sequence."""
    name: str
    community: str
    """The community (社区) or village (村) that owns the cell; every cell belongs to one."""
    squad: Squad
    kind: CellKind
    dedicated_to: DedicatedTo | None
    """What a dedicated cell serves (:data:`DedicatedTo`), ``None`` for a basic cell."""
    workers: tuple[str, ...]
    """Ids of the grid workers who patrol the cell, e.g. ``("GW017",)``."""
    polygon: Polygon | MultiPolygon
    """WGS84 longitude/latitude, as in GeoJSON."""

    def __post_init__(self) -> None:
        """Refuse a cell that would misroute reports rather than fail later at dispatch time."""
        problems = _cell_problems(self)
        if problems:
            raise GridError(problems, source=f"grid cell {self.code!r}")


def _cell_problems(cell: GridCell) -> list[str]:
    """Every rule a single cell breaks, worded for the person who maintains the layer."""
    problems: list[str] = []
    if not isinstance(cell.code, str) or not CODE_PATTERN.match(cell.code):
        problems.append(f"code {cell.code!r} is not 15 digits (county 6 + township 3 + community 3 + sequence 3)")
    for field in ("name", "community"):
        value = getattr(cell, field)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{field} must be a non-empty string, got {value!r}")
    if cell.squad not in SQUADS:
        problems.append(f"squad {cell.squad!r} is not one of {', '.join(SQUADS)}")
    if cell.kind not in CELL_KINDS:
        problems.append(f"kind {cell.kind!r} is not one of {', '.join(CELL_KINDS)}")
    elif cell.kind == "dedicated" and cell.dedicated_to not in DEDICATED_TO:
        problems.append(f"dedicated cell needs dedicated_to in {', '.join(DEDICATED_TO)}, got {cell.dedicated_to!r}")
    elif cell.kind == "basic" and cell.dedicated_to is not None:
        problems.append(f"basic cell must not have dedicated_to, got {cell.dedicated_to!r}")
    if not isinstance(cell.workers, tuple) or not all(
        isinstance(worker, str) and worker.strip() for worker in cell.workers
    ):
        problems.append(f"workers must be a list of non-empty worker ids, got {cell.workers!r}")
    elif not cell.workers:
        problems.append("workers is empty: every cell needs at least one grid worker")
    elif len(set(cell.workers)) != len(cell.workers):
        problems.append(f"workers lists a worker twice: {list(cell.workers)}")
    problems.extend(_polygon_problems(cell.polygon))
    return problems


def _polygon_problems(polygon: object) -> list[str]:
    """Why a geometry cannot serve as a cell: wrong type, empty, invalid, or not lon/lat."""
    if not isinstance(polygon, Polygon | MultiPolygon):
        return [f"geometry must be a Polygon or MultiPolygon, got {type(polygon).__name__}"]
    if polygon.is_empty:
        return ["geometry is empty"]
    if not polygon.is_valid:
        # e.g. "Self-intersection[119.85 31.97]": tells the maintainer where to look.
        return [f"geometry is invalid: {explain_validity(polygon)}"]
    min_lon, min_lat, max_lon, max_lat = polygon.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        # The usual cause is a layer exported as lat/lon instead of GeoJSON's lon/lat.
        return [f"coordinates {polygon.bounds} are not longitude/latitude (GeoJSON order is lon, lat)"]
    return []


def _feature_to_cell(feature: object) -> tuple[GridCell | None, list[str]]:
    """Parse one GeoJSON feature into a cell, or say everything wrong with it."""
    if not isinstance(feature, dict):
        return None, [f"is not a JSON object but {type(feature).__name__}"]
    problems: list[str] = []
    if feature.get("type") != "Feature":
        problems.append(f"type is {feature.get('type')!r}, expected 'Feature'")
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        problems.append("has no properties object")
        properties = {}
    for key in REQUIRED_PROPERTIES:
        if properties.get(key) is None:
            problems.append(f"missing property {key!r}")
    if properties.get("kind") == "dedicated" and properties.get("dedicated_to") is None:
        problems.append("missing property 'dedicated_to' (required for a dedicated cell)")
    workers = properties.get("workers")
    if workers is not None and not isinstance(workers, list):
        problems.append(f"property 'workers' must be a list of worker ids, got {workers!r}")
    polygon, geometry_problem = _read_geometry(feature.get("geometry"))
    if geometry_problem:
        problems.append(geometry_problem)
    if problems or polygon is None:
        return None, problems
    try:
        cell = GridCell(
            code=properties["code"],
            name=properties["name"],
            community=properties["community"],
            squad=properties["squad"],
            kind=properties["kind"],
            dedicated_to=properties.get("dedicated_to"),
            workers=tuple(properties["workers"]),
            polygon=polygon,
        )
    except GridError as exc:
        return None, exc.problems
    return cell, []


def _read_geometry(geometry: object) -> tuple[Polygon | MultiPolygon | None, str | None]:
    """The feature's polygon, or why there is none (validity is checked by :class:`GridCell`)."""
    if not isinstance(geometry, dict):
        return None, "has no geometry object"
    if geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None, f"geometry must be a Polygon or MultiPolygon, got {geometry.get('type')!r}"
    try:
        parsed = shape(geometry)
    except (ShapelyError, GEOSException, ValueError, TypeError, IndexError, KeyError) as exc:
        return None, f"geometry cannot be read: {exc}"
    if not isinstance(parsed, Polygon | MultiPolygon):  # pragma: no cover - shape() follows "type"
        return None, f"geometry must be a Polygon or MultiPolygon, got {parsed.geom_type}"
    return parsed, None


def _label(index: int, feature: object) -> str:
    """``feature 3 (320411101001003)``: the index finds it in the file, the code in a GIS tool."""
    properties = feature.get("properties") if isinstance(feature, dict) else None
    code = properties.get("code") if isinstance(properties, dict) else None
    return f"feature {index} ({code})" if isinstance(code, str) else f"feature {index}"


def _grid_problems(cells: list[GridCell]) -> list[str]:
    """Rules across cells: unique codes, one cell per worker, basic cells that do not overlap.

    A duplicate code would let two cells claim the same work orders; a worker in two cells
    would be dispatched to whichever was read last; overlapping basic cells would make the
    placement of a point depend on tie-breaking instead of the map.
    """
    problems: list[str] = []
    seen_codes: dict[str, int] = {}
    seen_workers: dict[str, str] = {}
    for cell in cells:
        seen_codes[cell.code] = seen_codes.get(cell.code, 0) + 1
        for worker in cell.workers:
            if worker in seen_workers:
                problems.append(f"worker {worker} patrols two cells: {seen_workers[worker]} and {cell.code}")
            else:
                seen_workers[worker] = cell.code
    problems.extend(f"duplicate code {code} ({count} cells)" for code, count in sorted(seen_codes.items()) if count > 1)
    basic = [cell for cell in cells if cell.kind == "basic"]
    tree = STRtree([cell.polygon for cell in basic])
    for i, cell in enumerate(basic):
        for j in tree.query(cell.polygon, predicate="intersects"):
            other = basic[int(j)]
            if int(j) > i and cell.polygon.intersection(other.polygon).area > _OVERLAP_TOLERANCE_DEG2:
                problems.append(f"basic cells {cell.code} and {other.code} overlap")
    return problems


class Grid:
    """The loaded grid: validated cells plus a spatial index for placing points.

    Build it with :meth:`load` or :meth:`from_geojson`; both refuse a layer with any problem.
    """

    def __init__(self, cells: Iterable[GridCell]) -> None:
        """Index ``cells`` (in the given order) after checking the rules that span several cells."""
        ordered = list(cells)
        problems = _grid_problems(ordered)
        if problems:
            raise GridError(problems)
        self.cells: dict[str, GridCell] = {cell.code: cell for cell in ordered}
        self._ordered: tuple[GridCell, ...] = tuple(ordered)
        self._tree = STRtree([cell.polygon for cell in ordered])

    def __repr__(self) -> str:
        """Short summary; the cells themselves are too many to print."""
        kinds = [cell.kind for cell in self._ordered]
        return f"Grid({kinds.count('basic')} basic, {kinds.count('dedicated')} dedicated cells)"

    @classmethod
    def from_geojson(cls, document: object, *, source: str = "grid GeoJSON") -> Grid:
        """Validate a GeoJSON FeatureCollection and build the grid, or raise one :class:`GridError`.

        Every feature is checked even after the first failure, and the rules across cells are
        checked on the features that did parse, so the error names every problem at once.
        """
        if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
            found = document.get("type") if isinstance(document, dict) else type(document).__name__
            raise GridError([f"not a GeoJSON FeatureCollection (type {found!r})"], source=source)
        features = document.get("features")
        if not isinstance(features, list) or not features:
            raise GridError(["a FeatureCollection needs a non-empty 'features' list"], source=source)
        cells: list[GridCell] = []
        problems: list[str] = []
        for index, feature in enumerate(features):
            cell, feature_problems = _feature_to_cell(feature)
            label = _label(index, feature)
            problems.extend(f"{label}: {problem}" for problem in feature_problems)
            if cell is not None:
                cells.append(cell)
        problems.extend(_grid_problems(cells))
        if problems:
            raise GridError(problems, source=source)
        return cls(cells)

    @classmethod
    def load(cls, path: Path) -> Grid:
        """Read a GeoJSON file; an unreadable file or broken JSON is a :class:`GridError` naming the path."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GridError([f"cannot read the file: {exc}"], source=str(path)) from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GridError([f"not valid JSON: {exc}"], source=str(path)) from exc
        return cls.from_geojson(document, source=str(path))

    def locate(self, lat: float, lon: float, system: CoordinateSystem = "wgs84") -> GridCell | None:
        """The cell a point lies in, or ``None`` outside the town.

        The point is converted to WGS84 first. A dedicated cell wins over the basic cell it lies
        in (a report at the school gate belongs to the school's worker). A point on a shared edge
        or the outer boundary counts as inside; on a shared edge the lower code wins, so the
        answer never depends on load order.
        """
        wgs_lat, wgs_lon = to_wgs84(lat, lon, system)
        hits = self._tree.query(shapely.points(wgs_lon, wgs_lat), predicate="covered_by")
        if len(hits) == 0:
            return None
        candidates = [self._ordered[int(i)] for i in hits]
        return min(candidates, key=lambda cell: (cell.kind != "dedicated", cell.code))

    def area_km2(self) -> float:
        """Area of the union of basic cells in km², measured on the WGS84 ellipsoid.

        Degrees are not metres: a degree of longitude here is about 94 km, of latitude 111 km.
        The union is projected with the ellipsoid's meridional and prime-vertical radii at its
        centroid latitude (a local equirectangular projection), which over a town a few km across
        is accurate to far better than the 0.1 km² the article quotes its area with.
        """
        union = shapely.union_all([cell.polygon for cell in self._ordered if cell.kind == "basic"])
        if union.is_empty:
            return 0.0
        phi = math.radians(union.centroid.y)
        denominator = 1.0 - _WGS84_E2 * math.sin(phi) ** 2
        meridional = _WGS84_A * (1.0 - _WGS84_E2) / denominator**1.5
        prime_vertical = _WGS84_A / math.sqrt(denominator)
        metres_per_degree_lat = math.radians(1.0) * meridional
        metres_per_degree_lon = math.radians(1.0) * prime_vertical * math.cos(phi)
        return union.area * metres_per_degree_lat * metres_per_degree_lon / 1e6

    def workers(self) -> dict[str, GridCell]:
        """Worker id → the cell they patrol (the grid guarantees each worker has exactly one)."""
        return {worker: cell for cell in self._ordered for worker in cell.workers}

    def to_geojson(self) -> dict[str, Any]:
        """The grid as a GeoJSON FeatureCollection, in load order; :meth:`from_geojson` reads it back."""
        return {"type": "FeatureCollection", "features": [_cell_feature(cell) for cell in self._ordered]}


def _cell_feature(cell: GridCell) -> dict[str, Any]:
    """One cell as a GeoJSON feature with plain lists, so it compares equal to parsed JSON."""
    return {
        "type": "Feature",
        "properties": {
            "code": cell.code,
            "name": cell.name,
            "community": cell.community,
            "squad": cell.squad,
            "kind": cell.kind,
            "dedicated_to": cell.dedicated_to,
            "workers": list(cell.workers),
        },
        "geometry": _listify(mapping(cell.polygon)),
    }


def _listify(value: Any) -> Any:
    """Turn the tuples of :func:`shapely.geometry.mapping` into the lists JSON parsing gives."""
    if isinstance(value, dict):
        return {key: _listify(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_listify(item) for item in value]
    return value


# --- coordinate systems ----------------------------------------------------------------------


def _check_point(lat: float, lon: float, system: str) -> None:
    """Refuse what cannot be a coordinate instead of quietly placing it "outside the town".

    Swapped latitude and longitude (lat 119.8) is the common case, and NaN from a phone
    without a fix the other; both would otherwise look like a report from outside the town.
    """
    if system not in COORDINATE_SYSTEMS:
        raise ValueError(f"unknown coordinate system {system!r}; expected one of {', '.join(COORDINATE_SYSTEMS)}")
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"coordinate is not a finite number: lat={lat!r}, lon={lon!r}")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"lat={lat!r}, lon={lon!r} is not a latitude/longitude (swapped?)")


def _outside_china(lat: float, lon: float) -> bool:
    """The published formulas apply the GCJ-02 offset only inside this box around China."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _gcj_delta_lat(x: float, y: float) -> float:
    result = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    result += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    result += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    result += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return result


def _gcj_delta_lon(x: float, y: float) -> float:
    result = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    result += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    result += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    result += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return result


def _wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """The forward GCJ-02 offset, exactly as published; identity outside China."""
    if _outside_china(lat, lon):
        return lat, lon
    d_lat = _gcj_delta_lat(lon - 105.0, lat - 35.0)
    d_lon = _gcj_delta_lon(lon - 105.0, lat - 35.0)
    rad_lat = math.radians(lat)
    magic = 1.0 - _GCJ_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_GCJ_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lat + d_lat, lon + d_lon


def _gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """Baidu's published forward transform from GCJ-02."""
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD_X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def _invert(forward: Any, lat: float, lon: float) -> tuple[float, float]:
    """Solve ``forward(x) == (lat, lon)`` by fixed-point iteration.

    The published one-step inverses are only good to a few metres; since both offsets change
    slowly with position, iterating ``x += target - forward(x)`` converges to ~1e-10° in a few
    steps, well under the 1e-6° the grid needs.
    """
    guess_lat, guess_lon = lat, lon
    for _ in range(_INVERSE_MAX_ITERATIONS):
        got_lat, got_lon = forward(guess_lat, guess_lon)
        d_lat, d_lon = lat - got_lat, lon - got_lon
        guess_lat, guess_lon = guess_lat + d_lat, guess_lon + d_lon
        if abs(d_lat) < _INVERSE_TOLERANCE_DEG and abs(d_lon) < _INVERSE_TOLERANCE_DEG:
            break
    return guess_lat, guess_lon


def _wgs84_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lat, lon))


def to_wgs84(lat: float, lon: float, system: CoordinateSystem) -> tuple[float, float]:
    """Convert a (lat, lon) in ``system`` to WGS84 (lat, lon), to about 1e-9°.

    Raises ValueError for an unknown system or a value that is not a latitude/longitude.
    """
    _check_point(lat, lon, system)
    if system == "gcj02":
        return _invert(_wgs84_to_gcj02, lat, lon)
    if system == "bd09":
        return _invert(_wgs84_to_bd09, lat, lon)
    return float(lat), float(lon)


def from_wgs84(lat: float, lon: float, system: CoordinateSystem) -> tuple[float, float]:
    """Convert a WGS84 (lat, lon) to ``system`` with the published forward formulas."""
    _check_point(lat, lon, system)
    if system == "gcj02":
        return _wgs84_to_gcj02(lat, lon)
    if system == "bd09":
        return _wgs84_to_bd09(lat, lon)
    return float(lat), float(lon)
