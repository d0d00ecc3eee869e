"""The screen's web server: its page and assets, the viewer's login, and the JSON and live feed behind it.

The screen never opens the warehouse: every number comes from the sink's SQL endpoint, asked
with the viewer's own token, so an analyst's screen shows what an analyst's ``gridhub sql``
shows (masked), the KPIs are the rows ``gridhub kpi`` prints, and each read is audited. A viewer
logs in with a token: as ``Authorization: Bearer`` (scripts) or, from the page, once through
``POST /login``, which keeps it in an HttpOnly cookie. A commander's actions are relayed to the
patrol gateway with the commander's own token, so they meet the HTTP API's rules and refusals.
Nothing is fetched from outside at run time: the page, its script and its map are served from here.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from connectors.http_guard import json_error, json_errors
from connectors.patrol_access import refusal
from foundation.access import Caller, Doorkeeper, Forbidden, RateLimited, Role, Unauthenticated, bearer_token
from foundation.errors import InputRejected, RetryableError
from foundation.logs import get_logger
from foundation.service import Service
from foundation.settings import Settings
from gridhub.screen.feed import LiveFeed
from gridhub.screen.handlers import COOKIE, ScreenHandlers, authorization_of
from schemas.grid import Grid
from warehouse.profile import EntityNotFound

VIEWERS: tuple[Role, ...] = ("analyst", "commander", "admin")
ASSETS = ("index.html", "screen.js", "screen.css")
log = get_logger(__name__)
Handler = Callable[[web.Request, Caller, Settings], Awaitable[web.StreamResponse]]


class ScreenService(Service):
    """The screen's web server, on its own port (``GRIDHUB_SCREEN_PORT``)."""

    def __init__(
        self, settings: Settings, doorkeeper: Doorkeeper, grid: Grid, feed: LiveFeed, departments: dict[str, str]
    ) -> None:
        self.settings = settings
        self.doorkeeper = doorkeeper
        self.feed = feed
        self.handlers = ScreenHandlers(settings, doorkeeper, grid, feed, departments)
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
        self.handlers.closing = asyncio.Event()
        following = asyncio.create_task(self.feed.run())
        following.add_done_callback(_feed_stopped)
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        site = web.SockSite(runner, self._socket)
        await site.start()
        await asyncio.to_thread(stop.wait)
        self.handlers.closing.set()
        following.cancel()
        await runner.cleanup()

    def close(self) -> None:
        """Release the port."""
        if self._socket is not None:
            self._socket.close()

    def application(self) -> web.Application:
        """The routes: the page and its assets (open: they hold no data), login, and the JSON behind a token."""
        app = web.Application(middlewares=[json_errors])
        views = self.handlers
        app.add_routes(
            [
                web.get("/", self.asset),
                *(web.get(f"/{name}", self.asset) for name in ASSETS),
                web.post("/login", self.login),
                web.post("/logout", self.logout),
                web.get("/api/me", self._viewer(views.me)),
                web.get("/api/grid", self._viewer(views.grid)),
                web.get("/api/cases", self._viewer(views.cases)),
                web.get("/api/cases/{case_id}", self._viewer(views.case)),
                web.post("/api/cases/{case_id}/actions", self._viewer(views.act, "commander")),
                web.get("/api/updates/{update_id}", self._viewer(views.update_outcome, "commander")),
                web.get("/api/photos/{reference}", self._viewer(views.photo, "commander")),
                web.get("/api/cells/{code}", self._viewer(views.cell)),
                web.get("/api/tracks", self._viewer(views.tracks)),
                web.get("/api/search", self._viewer(views.search)),
                web.get("/api/kpi", self._viewer(views.kpi)),
                web.get("/api/kpi/trend", self._viewer(views.trend)),
                web.get("/api/kpi/patrol", self._viewer(views.patrol)),
                web.get("/api/kpi/approvals", self._viewer(views.approvals)),
                web.get("/api/feed", self._viewer(views.live)),
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
        response.headers["Cache-Control"] = "no-cache"
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
        # Secure whenever the viewer came over HTTPS, here or through the town's TLS proxy.
        secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=secure, max_age=12 * 3600)
        return response

    async def logout(self, _request: web.Request) -> web.Response:
        """Forget the viewer's cookie, so a shared wall screen can change hands."""
        response = web.json_response({"status": "logged_out"})
        response.del_cookie(COOKIE)
        return response

    def _viewer(self, handler: Handler, *roles: Role) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Admit a viewer (of ``roles``, by default any viewer) and hand the handler settings that read as them."""
        allowed = roles or VIEWERS

        async def admitted(request: web.Request) -> web.StreamResponse:
            header = authorization_of(request)
            try:
                caller = self.doorkeeper.admit(header, *allowed)
                # As the viewer, never as this process: the hub's own secret would see everything whole.
                token = SecretStr(bearer_token(header))
                as_viewer = self.settings.model_copy(update={"token": token, "service_token": None})
                return await handler(request, caller, as_viewer)
            except (Unauthenticated, Forbidden, RateLimited) as exc:
                return refusal(exc)
            except EntityNotFound as exc:
                return json_error(404, exc.reason_code, str(exc))
            except InputRejected as exc:
                return json_error(400, exc.reason_code, str(exc))
            except RetryableError as exc:
                response = json_error(503, "warehouse_unavailable", str(exc))
                response.headers["Retry-After"] = "5"
                return response

        return admitted


def _feed_stopped(task: asyncio.Task[None]) -> None:
    """Say so when the live feed ends other than by the screen's own stop: the wall would go quiet without it."""
    if not task.cancelled() and task.exception() is not None:
        log.error("screen_feed_failed", error=repr(task.exception()), action="restart gridhub; report this as a bug")


def build_screen(settings: Settings, bootstrap: str) -> Service:
    """The screen, reading through the sink's SQL endpoint with each viewer's token, and the topics for its feed."""
    from foundation.access import doorkeeper_of
    from streams.routing import load_rules

    grid, departments = Grid.load(settings.grid_path), load_rules(settings.routing_rules).departments
    return ScreenService(settings, doorkeeper_of(settings), grid, LiveFeed(settings, bootstrap), departments)
