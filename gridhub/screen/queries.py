"""The screen's questions to the warehouse, as SQL for the role-aware query layer.

Each runs as the viewer (masked views for a masked role), so these builders only choose tables
and filters. What they interpolate is a status from the case flow, a grid code the grid knows, or
always through :func:`sql_literal`: never free text. A case's own story is
:mod:`warehouse.case_story`'s, shared with ``gridhub show event``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from streams.case_flow import load_flow
from streams.case_state import aware
from warehouse.sql import sql_literal

OPEN_CASE_COLUMNS = (
    "case_id, category, category_name, department, squad, grid_code, community, status, "
    "reported_at, due_at, lat, lon, report_count, reporter_id"
)
TRACK_WINDOW_MINUTES = 60
"""How far back "on patrol now" reaches, counted from the newest track point the hub holds."""


def _ended() -> str:
    return ", ".join(sql_literal(status) for status in sorted(load_flow().terminals))


def open_cases_sql() -> str:
    """Every case not yet ended, oldest first, with what the map and the lists show."""
    return f"SELECT {OPEN_CASE_COLUMNS} FROM cases WHERE status NOT IN ({_ended()}) ORDER BY reported_at"


NEWEST_TRACK_SQL = "SELECT max(recorded_at) AS newest FROM patrol_tracks"
"""The time of the newest track point, which "on patrol now" counts back from (:func:`tracks_sql`)."""


def tracks_sql(newest: datetime, minutes: int = TRACK_WINDOW_MINUTES) -> str:
    """The track points of the last ``minutes`` up to ``newest`` (:data:`NEWEST_TRACK_SQL`), per worker in time order.

    Counted from the newest point rather than the wall clock, so a replayed or simulated day shows
    its patrols too; on a live hub the two are the same moment. The bound is a literal, asked for
    first, because DuckDB skips the blocks of a year of points outside a literal range but reads
    them all against a subquery's value (2 ms against 200 ms on 3 million points).
    """
    since = aware(newest) - timedelta(minutes=minutes)
    return (
        "SELECT worker_id, recorded_at, lat, lon, grid_code FROM patrol_tracks "
        f"WHERE recorded_at >= TIMESTAMPTZ {sql_literal(since.isoformat())} ORDER BY worker_id, recorded_at"
    )


def cell_cases_sql(code: str) -> str:
    """The cases of one grid cell: the open ones first, then the latest ended ones."""
    return (
        "SELECT case_id, category_name, status, reported_at, due_at, closed_at, department "
        f"FROM cases WHERE grid_code = {sql_literal(code)} "
        f"ORDER BY status IN ({_ended()}), reported_at DESC LIMIT 200"
    )


def cell_counts_sql(code: str) -> str:
    """How many places, people, organisations and objects the warehouse ties to one grid cell.

    Places carry their cell; people, organisations and objects are counted through the links that
    tie them to those places (lives at, registered at, located at), as ``gridhub show`` lists them.
    """
    cell = sql_literal(code)
    linked = (
        "SELECT count(DISTINCT l.from_key) FROM entity_links AS l JOIN places AS p ON p.place_key = l.to_key "
        f"WHERE l.to_kind = 'place' AND p.grid_code = {cell} AND l.from_kind = "
    )
    return (
        f"SELECT (SELECT count(*) FROM places WHERE grid_code = {cell}) AS places, "
        f"({linked}'person') AS people, ({linked}'organisation') AS organisations, ({linked}'object') AS objects"
    )
