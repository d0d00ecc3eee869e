"""A synthetic grid layer of Menghe town, shipped as schemas/data/menghe_grid.geojson.

The town's surveyed grid layer is not public, so this module draws a stand-in with the
figures of the article (reference BRIEF): 128 basic cells worked by GW001..GW128 and 18
dedicated cells (8 schools, 4 hospitals, 4 parks, the industrial park and the modern agricultural
park) worked by GW129..GW146, about 88 km²,
three enforcement squads by area. The layout is illustrative, not surveyed: basic cells are
a 16 × 8 lattice over the town's box (:data:`simulation.town.TOWN_BOX`), each village or
community owns a rectangular block of the lattice containing its centre in
:data:`simulation.town.VILLAGES`, and squads split the town into west, middle and east thirds.

Codes follow reference/domain-standards.md §3.2: ``320411`` (新北区) + ``101`` (孟河镇) +
community ``001``.. + a per-community sequence numbered west→east, north→south (as DB11
does), dedicated cells continuing their community's sequence. When the real layer arrives
it replaces the file; nothing else depends on this module.

The output is a pure function with no randomness, so the shipped file can be regenerated
byte for byte (``python -m simulation.grid``) and a test checks it is in sync.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.packaged import MENGHE_GRID
from schemas.grid import Grid
from simulation.town import TOWN_BOX

TOWN_PREFIX = "320411101"
"""320411 新北区 (GB/T 2260) + 101 孟河镇 (confirmed in domain-standards §3.2)."""
COLUMNS, ROWS = 16, 8
"""16 × 8 = 128 basic cells, each about 620 m (east-west) by 1,110 m (north-south)."""
_DECIMALS = 7
"""Coordinates are rounded to 1e-7° (about 1 cm); shared edges use the same rounded value."""


@dataclass(frozen=True)
class _Community:
    """A village or community and the block of lattice cells it owns (rows from the north)."""

    name: str
    rows: range
    columns: range


# In code order. Each block contains the village centre simulation.town gives it, and no
# block straddles a squad boundary (columns 0–4 west, 5–10 middle, 11–15 east), because a
# village is served by the enforcement squad of its area.
COMMUNITIES: tuple[_Community, ...] = (
    _Community("万绥村", range(0, 3), range(0, 5)),
    _Community("孟河社区", range(0, 3), range(5, 8)),
    _Community("通江村", range(0, 3), range(8, 11)),
    _Community("小河村", range(0, 3), range(11, 16)),
    _Community("新庄村", range(3, 5), range(0, 5)),
    _Community("孟城村", range(3, 5), range(5, 11)),
    _Community("东兵村", range(3, 5), range(11, 16)),
    _Community("石桥湾村", range(5, 8), range(0, 5)),
    _Community("南兴村", range(5, 8), range(5, 11)),
    _Community("富民村", range(5, 8), range(11, 16)),
)

# name, what it is dedicated to, host lattice cell (row, column). One per host cell.
DEDICATED: tuple[tuple[str, str, tuple[int, int]], ...] = (
    ("孟河中学", "school", (1, 6)),
    ("孟河实验小学", "school", (2, 7)),
    ("孟河中心幼儿园", "school", (0, 5)),
    ("万绥小学", "school", (1, 3)),
    ("小河中学", "school", (0, 12)),
    ("小河小学", "school", (2, 14)),
    ("南兴小学", "school", (6, 7)),
    ("东兵幼儿园", "school", (4, 13)),
    ("孟河人民医院", "hospital", (1, 5)),
    ("万绥卫生院", "hospital", (1, 1)),
    ("小河卫生院", "hospital", (1, 13)),
    ("新庄卫生服务站", "hospital", (3, 4)),
    ("万绥公园", "park", (2, 2)),
    ("孟河中心公园", "park", (2, 6)),
    ("通江河滨公园", "park", (2, 9)),
    ("孟河现代农业园区", "agricultural_park", (5, 2)),
    ("孟河工业园区", "industrial_park", (5, 11)),
    ("孟城古镇公园", "park", (3, 8)),
)
# Half-size in degrees (lat, lon) of a dedicated cell: a few hundred metres across.
_DEDICATED_HALF_SIZE: dict[str, tuple[float, float]] = {
    "school": (0.0010, 0.00125),  # about 220 m × 235 m
    "hospital": (0.0009, 0.0010),  # about 200 m × 190 m
    "park": (0.00125, 0.0015),  # about 280 m × 285 m
    "industrial_park": (0.0027, 0.0026),  # about 600 m × 490 m
    "agricultural_park": (0.0030, 0.0030),  # about 670 m × 570 m
}


def _lat(row_edge: int) -> float:
    """Latitude of the northern edge of lattice row ``row_edge`` (row 0 is the northernmost)."""
    return round(TOWN_BOX.lat_max - row_edge * (TOWN_BOX.lat_max - TOWN_BOX.lat_min) / ROWS, _DECIMALS)


def _lon(column_edge: int) -> float:
    """Longitude of the western edge of lattice column ``column_edge``."""
    return round(TOWN_BOX.lon_min + column_edge * (TOWN_BOX.lon_max - TOWN_BOX.lon_min) / COLUMNS, _DECIMALS)


def squad_of_column(column: int) -> str:
    """West third 万绥, middle third 孟城, east third 小河, by where the column's centre lies."""
    fraction = (column + 0.5) / COLUMNS
    if fraction < 1 / 3:
        return "wansui"
    return "mengcheng" if fraction < 2 / 3 else "xiaohe"


def _rectangle(south: float, west: float, north: float, east: float) -> dict[str, Any]:
    """A GeoJSON Polygon with a closed, counter-clockwise exterior ring (RFC 7946 §3.1.6)."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _feature(properties: dict[str, Any], worker: str, geometry: dict[str, Any]) -> dict[str, Any]:
    """A cell feature with the property order of :meth:`schemas.grid.Grid.to_geojson`."""
    ordered = {key: properties[key] for key in ("code", "name", "community", "squad", "kind", "dedicated_to")}
    return {"type": "Feature", "properties": {**ordered, "workers": [worker]}, "geometry": geometry}


def synthetic_grid() -> dict[str, Any]:
    """The Menghe grid as a GeoJSON FeatureCollection: 128 basic cells, then 18 dedicated cells."""
    owner: dict[tuple[int, int], int] = {}
    for index, community in enumerate(COMMUNITIES):
        for row in community.rows:
            for column in community.columns:
                owner[(row, column)] = index
    missing = [(row, column) for row in range(ROWS) for column in range(COLUMNS) if (row, column) not in owner]
    if missing or len(owner) != ROWS * COLUMNS:  # pragma: no cover - guards edits of COMMUNITIES
        raise AssertionError(f"community blocks do not tile the lattice; uncovered cells {missing}")

    sequence = [0] * len(COMMUNITIES)
    basic: list[dict[str, Any]] = []
    for index, community in enumerate(COMMUNITIES):
        for row in community.rows:
            for column in community.columns:
                sequence[index] += 1
                code = f"{TOWN_PREFIX}{index + 1:03d}{sequence[index]:03d}"
                name = f"{community.name}第{sequence[index]:02d}网格"
                geometry = _rectangle(_lat(row + 1), _lon(column), _lat(row), _lon(column + 1))
                worker = f"GW{len(basic) + 1:03d}"
                properties = {
                    "code": code,
                    "name": name,
                    "community": community.name,
                    "squad": squad_of_column(column),
                    "kind": "basic",
                    "dedicated_to": None,
                }
                basic.append(_feature(properties, worker, geometry))

    dedicated: list[dict[str, Any]] = []
    in_code_order = sorted(DEDICATED, key=lambda entry: owner[entry[2]])  # stable: listed order within a community
    for name, dedicated_to, (row, column) in in_code_order:
        index = owner[(row, column)]
        sequence[index] += 1
        code = f"{TOWN_PREFIX}{index + 1:03d}{sequence[index]:03d}"
        centre_lat = (_lat(row) + _lat(row + 1)) / 2
        centre_lon = (_lon(column) + _lon(column + 1)) / 2
        half_lat, half_lon = _DEDICATED_HALF_SIZE[dedicated_to]
        geometry = _rectangle(
            round(centre_lat - half_lat, _DECIMALS),
            round(centre_lon - half_lon, _DECIMALS),
            round(centre_lat + half_lat, _DECIMALS),
            round(centre_lon + half_lon, _DECIMALS),
        )
        worker = f"GW{len(basic) + len(dedicated) + 1:03d}"
        properties = {
            "code": code,
            "name": name,
            "community": COMMUNITIES[index].name,
            "squad": squad_of_column(column),
            "kind": "dedicated",
            "dedicated_to": dedicated_to,
        }
        dedicated.append(_feature(properties, worker, geometry))
    return {"type": "FeatureCollection", "features": basic + dedicated}


def write_synthetic_grid(path: Path) -> Path:
    """Validate the synthetic grid and write it as compact UTF-8 GeoJSON to ``path``; return ``path``.

    Validation goes through :class:`schemas.grid.Grid`, so a bad edit of the tables above
    fails here instead of shipping a layer the town cannot load.
    """
    document = synthetic_grid()
    Grid.from_geojson(document, source="synthetic Menghe grid")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover - regeneration entry point
    print(write_synthetic_grid(MENGHE_GRID))
