"""What each of the screen's JSON routes answers, for a viewer the server has already admitted.

Every handler gets settings that carry the viewer's own token, so each warehouse read is masked
and audited as that viewer's ``gridhub sql`` would be. The KPI routes run the very SQL
``gridhub kpi`` runs, so the wall and the command line cannot disagree.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import aiohttp
from aiohttp import web

from connectors.http_guard import json_error
from foundation import runfiles
from foundation.access import Caller, Doorkeeper, Unauthenticated, bearer_token
from foundation.errors import InputRejected
from foundation.settings import Settings
from gridhub.screen.feed import LiveFeed
from gridhub.screen.queries import (
    NEWEST_TRACK_SQL,
    cell_cases_sql,
    cell_counts_sql,
    open_cases_sql,
    tracks_sql,
)
from schemas import TOWN_TIMEZONE
from schemas.grid import Grid
from warehouse.case_story import (
    CASE_ID,
    case_enforcement_sql,
    case_involved_sql,
    case_reports_sql,
    case_sql,
    case_transitions_sql,
)
from warehouse.kpi import GROUPINGS, approvals_kpi_sql, kpi_sql, kpi_trend_sql, parse_month, patrol_sql
from warehouse.profile import entity_profile
from warehouse.reader import query
from warehouse.sql import sql_literal

ACTIONS: dict[str, str] = {"redispatch": "dispatched", "extend": "extended", "cancel": "cancelled"}
"""What the commander may do from the screen, and the case status each asks the case flow for."""
COOKIE = "gridhub_token"
"""The HttpOnly cookie the login keeps a viewer's token in, for the page's own requests."""
KINDS = ("person", "organisation", "place", "object")
HEARTBEAT_S = 5.0
"""How often an idle feed says it is alive; the viewer's token is checked again at each beat."""
TREND_DAYS = 30


class Period:
    """The day or month a KPI request names (``date=YYYY-MM-DD`` or ``month=YYYY-MM``), or all time."""

    def __init__(self, request: web.Request) -> None:
        self.day: date | None = None
        self.month: date | None = None
        if request.query.get("date") and request.query.get("month"):
            raise BadRequest("bad_period", "ask for a date or a month, not both")
        try:
            if request.query.get("date"):
                self.day = date.fromisoformat(request.query["date"])
            if request.query.get("month"):
                self.month = parse_month(request.query["month"])
        except ValueError:
            raise BadRequest("bad_period", "date looks like 2026-11-25, month like 2026-11") from None


class BadRequest(InputRejected):
    """A request the screen refuses with a 400 and a reason the page can show."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, code)


def today() -> date:
    """The town's day now (Asia/Shanghai), which the trend ends on by default."""
    return datetime.now(TOWN_TIMEZONE).date()


class ScreenHandlers:
    """The screen's routes, each reading as the admitted viewer."""

    def __init__(
        self, settings: Settings, doorkeeper: Doorkeeper, grid: Grid, feed: LiveFeed, departments: dict[str, str]
    ) -> None:
        self.settings = settings
        self.departments = departments
        self.doorkeeper = doorkeeper
        self.town_grid = grid
        self.grid_geojson = grid.to_geojson()
        self.feed = feed
        self.closing = asyncio.Event()

    @staticmethod
    async def _read(as_viewer: Settings, sql: str) -> dict[str, Any]:
        return await asyncio.to_thread(query, as_viewer, sql)

    async def me(self, _request: web.Request, caller: Caller, _as_viewer: Settings) -> web.Response:
        """Who is looking, whether personal data is shown whole to them, and whether they may dispatch."""
        return web.json_response(
            {
                "name": caller.name,
                "role": caller.role,
                "masked": not caller.sees_personal_data,
                "can_dispatch": caller.role == "commander",
                "today": today().isoformat(),
                "departments": self.departments,
            }
        )

    async def grid(self, _request: web.Request, caller: Caller, _as_viewer: Settings) -> web.Response:
        """The grid the hub places reports with: every cell as a GeoJSON feature.

        Who patrols which cell names grid workers: only a viewer who sees personal data gets that roster.
        """
        if caller.sees_personal_data:
            return web.json_response(self.grid_geojson)
        features = [
            {**feature, "properties": {**feature["properties"], "workers": []}}
            for feature in self.grid_geojson["features"]
        ]
        return web.json_response({**self.grid_geojson, "features": features})

    async def cases(self, _request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """The open cases, as the viewer's role sees them."""
        return web.json_response(await self._read(as_viewer, open_cases_sql()))

    async def tracks(self, _request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """The patrol tracks of the last hour, per worker (pseudonymous workers for a masked role)."""
        newest = (await self._read(as_viewer, NEWEST_TRACK_SQL))["rows"][0][0]
        if newest is None:
            return web.json_response({"columns": ["worker_id", "recorded_at", "lat", "lon", "grid_code"], "rows": []})
        return web.json_response(await self._read(as_viewer, tracks_sql(moment(newest))))

    async def cell(self, request: web.Request, caller: Caller, as_viewer: Settings) -> web.Response:
        """One grid cell: what it is, its cases, its workers (for who may see them) and its base data counts."""
        code = request.match_info["code"]
        found = self.town_grid.cells.get(code)
        if found is None:
            return json_error(404, "unknown_cell", f"the grid has no cell {code!r}")
        feature = next(f for f in self.grid_geojson["features"] if f["properties"]["code"] == code)
        properties = dict(feature["properties"])
        if not caller.sees_personal_data:
            properties["workers"] = []
        cases, counts = await asyncio.gather(
            self._read(as_viewer, cell_cases_sql(code)), self._read(as_viewer, cell_counts_sql(code))
        )
        totals = dict(zip(counts["columns"], counts["rows"][0], strict=True)) if counts["rows"] else {}
        return web.json_response({"cell": properties, "cases": cases, "counts": totals})

    async def case(self, request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """One case: as it stands, its reports, its steps and what it concerns."""
        case_id = _case_id(request)
        parts = await asyncio.gather(
            *(
                self._read(as_viewer, sql)
                for sql in (
                    case_sql(case_id),
                    case_reports_sql(case_id),
                    case_transitions_sql(case_id),
                    case_involved_sql(case_id),
                    case_enforcement_sql(case_id),
                )
            )
        )
        found, reports, transitions, involved, enforcement = parts
        if not found["rows"]:
            return json_error(404, "unknown_case", f"the warehouse holds no case {case_id!r} (yet)")
        case = dict(zip(found["columns"], found["rows"][0], strict=True))
        return web.json_response(
            {
                "case": case,
                "reports": reports,
                "transitions": transitions,
                "involved": involved,
                "enforcement": enforcement,
            },
            dumps=_dumps,
        )

    async def search(self, request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """Everything about one person, organisation, place or object, as ``gridhub show`` gives it."""
        key = request.query.get("q", "").strip()
        kind = request.query.get("kind", "person")
        if not key or len(key) > 200:
            return json_error(400, "bad_search", "type an ID, a credit code, an address, a key or a source's id")
        if kind not in KINDS:
            return json_error(400, "bad_kind", f"kind must be one of {', '.join(KINDS)}")
        profile = await asyncio.to_thread(entity_profile, as_viewer, kind, key)
        return web.json_response(asdict(profile), dumps=_dumps)

    async def kpi(self, request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """The case KPIs, exactly as ``gridhub kpi [--by B] [--date D | --month M]`` computes them."""
        by = request.query.get("by") or None
        if by is not None and by not in GROUPINGS:
            return json_error(400, "bad_grouping", f"by must be one of {', '.join(GROUPINGS)}")
        period = Period(request)
        return web.json_response(await self._read(as_viewer, kpi_sql(by, period.day, period.month)))  # type: ignore[arg-type]

    async def trend(self, request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """The case KPIs of each of the 30 days up to ``end``, as ``gridhub kpi --trend 30 --date END``."""
        try:
            end = date.fromisoformat(request.query["end"]) if request.query.get("end") else today()
        except ValueError:
            return json_error(400, "bad_date", "end looks like 2026-11-25")
        return web.json_response(await self._read(as_viewer, kpi_trend_sql(end, TREND_DAYS)))

    async def patrol(self, request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """Patrol compliance by squad, as ``gridhub kpi --patrol --by squad [--date D]``."""
        return web.json_response(await self._read(as_viewer, patrol_sql(Period(request).day, "squad")))

    async def approvals(self, request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """The service centre's figures, as ``gridhub kpi --approvals [--date D | --month M]``."""
        period = Period(request)
        return web.json_response(await self._read(as_viewer, approvals_kpi_sql(period.day, period.month)))

    async def act(self, request: web.Request, caller: Caller, _as_viewer: Settings) -> web.Response:
        """Re-dispatch (to its own or another ``department``), extend (to ``due_at``) or cancel a case.

        Sent to the patrol gateway as the commander's own update, so its rules and refusals apply as they are.
        """
        case_id = _case_id(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return json_error(400, "bad_json", "send a JSON object with action and, for extend, due_at")
        if not isinstance(body, dict) or body.get("action") not in ACTIONS:
            return json_error(400, "bad_action", f"action must be one of {', '.join(ACTIONS)}")
        update: dict[str, Any] = {
            "update_id": f"screen-{uuid.uuid4().hex}",
            "event_id": case_id,
            "status": ACTIONS[body["action"]],
            "at": datetime.now(TOWN_TIMEZONE).isoformat(),
            "actor": caller.name,
        }
        if body.get("note"):
            update["note"] = str(body["note"])[:500]
        if body.get("due_at"):
            update["due_at"] = str(body["due_at"])
        if body.get("department"):
            update["department"] = str(body["department"])
        return await self._relay(request, "POST", "/v1/updates", json.dumps(update).encode())

    async def update_outcome(self, request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """What became of an update the screen sent: applied, refused with the case flow's reason, or pending."""
        update_id = request.match_info["update_id"]
        if not CASE_ID.fullmatch(update_id):
            return json_error(400, "bad_update_id", "that is not an update id")
        target = sql_literal(update_id)
        applied, refused = await asyncio.gather(
            self._read(as_viewer, f"SELECT status FROM event_updates WHERE update_id = {target}"),
            self._read(
                as_viewer,
                f"SELECT reason_code, reason FROM rejects WHERE source_record_id = {target} "
                "ORDER BY rejected_at DESC LIMIT 1",
            ),
        )
        if applied["rows"]:
            return web.json_response({"state": "applied", "status": applied["rows"][0][0]})
        if refused["rows"]:
            code, reason = refused["rows"][0]
            return web.json_response({"state": "refused", "error": code, "reason": reason})
        return web.json_response({"state": "pending"})

    async def photo(self, request: web.Request, _caller: Caller, _as_viewer: Settings) -> web.StreamResponse:
        """A report's photo, fetched from the gateway with the viewer's token (the gateway decides who may)."""
        return await self._relay(request, "GET", f"/v1/photos/{request.match_info['reference']}", None)

    async def _relay(self, request: web.Request, method: str, path: str, body: bytes | None) -> web.Response:
        """Ask the patrol gateway as the viewer and answer with what it answered, refusals included."""
        gateway = self.settings.patrol_url or (runfiles.discover(self.settings, "patrol") or {}).get("url")
        if not gateway:
            return _unavailable("the patrol gateway is not running; start `gridhub up` or set GRIDHUB_PATROL_URL")
        headers = {"Authorization": authorization_of(request) or "", "Content-Type": "application/json"}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
                session.request(method, f"{gateway}{path}", data=body, headers=headers) as answer,
            ):
                payload = await answer.read()
                if answer.status >= 500:
                    return _unavailable(f"the patrol gateway answered {answer.status}; try again")
                response = web.Response(body=payload, status=answer.status, content_type=answer.content_type)
                if "Retry-After" in answer.headers:
                    response.headers["Retry-After"] = answer.headers["Retry-After"]
                return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _unavailable(f"the patrol gateway did not answer ({exc}); try again")

    async def live(self, request: web.Request, _caller: Caller, _as_viewer: Settings) -> web.StreamResponse:
        """The live feed as server-sent events: recent items first, then each as it happens.

        The stream ends when the viewer's token is revoked (checked at every heartbeat) or the
        screen stops; the browser's EventSource then reconnects and meets the door again.
        """
        token = bearer_token(authorization_of(request))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        async with self.feed.watch() as queue:
            with contextlib.suppress(ConnectionResetError):  # the viewer closed the page
                while not self.closing.is_set():
                    item = await self._next(queue)
                    if item is None:
                        if not self._still_admitted(token):
                            break
                        await response.write(b": alive\n\n")
                        continue
                    data = json.dumps(item, ensure_ascii=False, default=str)
                    await response.write(f"id: {item['seq']}\nevent: case\ndata: {data}\n\n".encode())
        return response

    async def _next(self, queue: asyncio.Queue[dict[str, Any]]) -> dict[str, Any] | None:
        """The next item, or None after a heartbeat's silence or when the screen closes."""
        getting = asyncio.ensure_future(queue.get())
        closing = asyncio.ensure_future(self.closing.wait())
        done, _ = await asyncio.wait({getting, closing}, timeout=HEARTBEAT_S, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if getting in done:
            return getting.result()
        getting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getting
        return None

    def _still_admitted(self, token: str) -> bool:
        try:
            self.doorkeeper.book.caller(token)
        except Unauthenticated:
            return False
        return True


def moment(value: object) -> datetime:
    """A timestamp as the sink's JSON gives it (ISO text) or as DuckDB does (a datetime)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _case_id(request: web.Request) -> str:
    case_id = request.match_info["case_id"]
    if not CASE_ID.fullmatch(case_id):
        raise BadRequest("bad_case_id", "a case id is its first report's id: letters, digits and - _ . :")
    return case_id


def authorization_of(request: web.Request) -> str | None:
    """The viewer's credentials as an ``Authorization`` header, whether they came as one or in the login cookie."""
    header = request.headers.get("Authorization")
    if header is None and COOKIE in request.cookies:
        return f"Bearer {request.cookies[COOKIE]}"
    return header


def _unavailable(reason: str) -> web.Response:
    response = json_error(503, "gateway_unavailable", reason)
    response.headers["Retry-After"] = "5"
    return response


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
