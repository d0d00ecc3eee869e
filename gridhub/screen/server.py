"""The screen's HTTP side: its page and assets, and JSON read through the role-aware query layer.

The screen never opens the warehouse: every number comes from the sink's SQL endpoint, asked
with the viewer's own token, so an analyst's screen shows what an analyst's ``gridhub sql``
shows (masked), the KPIs are the rows ``gridhub kpi`` prints, and each read is audited. A viewer
logs in with a token: as ``Authorization: Bearer`` (scripts) or, from the page, once through
``POST /login``, which keeps it in an HttpOnly cookie. Nothing is fetched from outside at run
time: the page, its script and its map are all served from here.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from datetime import date
from importlib import resources
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from connectors.http_guard import json_error, json_errors
from connectors.patrol_access import refusal
from foundation.access import Caller, Doorkeeper, Forbidden, RateLimited, Role, Unauthenticated, bearer_token
from foundation.errors import InputRejected, RetryableError
from foundation.service import Service
from foundation.settings import Settings
from schemas.grid import Grid
from streams.case_flow import load_flow
from warehouse.kpi import GROUPINGS, kpi_sql
from warehouse.reader import query
from warehouse.sql import sql_literal

VIEWERS: tuple[Role, ...] = ("analyst", "commander", "admin")
COOKIE = "gridhub_token"
ASSETS = ("index.html", "screen.js", "screen.css")
OPEN_CASE_COLUMNS = (
    "case_id, category, category_name, department, squad, grid_code, community, status, "
    "reported_at, due_at, lat, lon, report_count, reporter_id"
)


def open_cases_sql() -> str:
    """Every case not yet ended, oldest first, with what the map and the lists show."""
    ended = ", ".join(sql_literal(status) for status in sorted(load_flow().terminals))
    return f"SELECT {OPEN_CASE_COLUMNS} FROM cases WHERE status NOT IN ({ended}) ORDER BY reported_at"


class ScreenService(Service):
    """The screen's web server, on its own port (``GRIDHUB_SCREEN_PORT``)."""

    def __init__(self, settings: Settings, doorkeeper: Doorkeeper, grid: Grid) -> None:
        self.settings = settings
        self.doorkeeper = doorkeeper
        self.grid_geojson = grid.to_geojson()
        self._socket: socket.socket | None = None

    def prepare(self) -> dict[str, Any]:
        """Take the port, so the announced URL already answers."""
        self._socket = socket.create_server((self.settings.screen_host, self.settings.screen_port))
        return {"url": f"http://{self.settings.screen_host}:{self._socket.getsockname()[1]}"}

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set."""
        asyncio.run(self._serve(stop))

    async def _serve(self, stop: threading.Event) -> None:
        if self._socket is None:
            raise RuntimeError("prepare() binds the screen's socket before run()")
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        site = web.SockSite(runner, self._socket)
        await site.start()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    def close(self) -> None:
        """Release the port."""
        if self._socket is not None:
            self._socket.close()

    def application(self) -> web.Application:
        """The routes: the page and its assets (open: they hold no data), login, and the JSON behind a token."""
        app = web.Application(middlewares=[json_errors])
        app.add_routes(
            [
                web.get("/", self.asset),
                *(web.get(f"/{name}", self.asset) for name in ASSETS),
                web.post("/login", self.login),
                web.get("/api/me", self._viewer(self.me)),
                web.get("/api/grid", self._viewer(self.grid)),
                web.get("/api/cases", self._viewer(self.cases)),
                web.get("/api/kpi", self._viewer(self.kpi)),
            ]
        )
        return app

    async def asset(self, request: web.Request) -> web.Response:
        """The page, its script and its style, from the package: nothing comes from elsewhere."""
        name = request.path.strip("/") or "index.html"
        text = resources.files("gridhub.screen").joinpath("assets", name).read_text(encoding="utf-8")
        kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
        response = web.Response(text=text, content_type=kind, charset="utf-8")
        response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def login(self, request: web.Request) -> web.Response:
        """Check a token from the login form and keep it in an HttpOnly cookie for the page's requests."""
        form = await request.post()
        token = str(form.get("token", "")).strip()
        try:
            caller = self.doorkeeper.admit(f"Bearer {token}", *VIEWERS)
        except (Unauthenticated, Forbidden, RateLimited) as exc:
            return refusal(exc)
        response = web.json_response({"name": caller.name, "role": caller.role})
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=12 * 3600)
        return response

    def _viewer(self, handler: Any) -> Any:
        async def admitted(request: web.Request) -> web.StreamResponse:
            header = request.headers.get("Authorization")
            if header is None and COOKIE in request.cookies:
                header = f"Bearer {request.cookies[COOKIE]}"
            try:
                caller = self.doorkeeper.admit(header, *VIEWERS)
                # As the viewer, never as this process: the hub's own secret would see everything whole.
                token = SecretStr(bearer_token(header))
                as_viewer = self.settings.model_copy(update={"token": token, "service_token": None})
                return await handler(request, caller, as_viewer)
            except (Unauthenticated, Forbidden, RateLimited) as exc:
                return refusal(exc)
            except InputRejected as exc:
                return json_error(400, exc.reason_code, str(exc))
            except RetryableError as exc:
                response = json_error(503, "warehouse_unavailable", str(exc))
                response.headers["Retry-After"] = "5"
                return response

        return admitted

    async def me(self, _request: web.Request, caller: Caller, _as_viewer: Settings) -> web.Response:
        """Who is looking, and whether personal data is shown whole to them."""
        return web.json_response({"name": caller.name, "role": caller.role, "masked": not caller.sees_personal_data})

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
        return web.json_response(await asyncio.to_thread(query, as_viewer, open_cases_sql()))

    async def kpi(self, request: web.Request, _caller: Caller, as_viewer: Settings) -> web.Response:
        """The case KPIs, exactly as ``gridhub kpi [--by B] [--date D]`` computes them."""
        by = request.query.get("by") or None
        if by is not None and by not in GROUPINGS:
            return json_error(400, "bad_grouping", f"by must be one of {', '.join(GROUPINGS)}")
        try:
            day = date.fromisoformat(request.query["date"]) if request.query.get("date") else None
        except ValueError:
            return json_error(400, "bad_date", "date looks like 2026-11-25")
        return web.json_response(await asyncio.to_thread(query, as_viewer, kpi_sql(by, day)))  # type: ignore[arg-type]


def build_screen(settings: Settings, _bootstrap: str) -> Service:
    """The screen, reading through the sink's SQL endpoint with each viewer's token."""
    from foundation.access import doorkeeper_of

    return ScreenService(settings, doorkeeper_of(settings), Grid.load(settings.grid_path))
