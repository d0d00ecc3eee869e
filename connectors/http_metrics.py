"""How long a door takes to answer, by route, for its ops endpoint's /metrics.

The route label is the route's template (``/v1/photos/{reference}``), never the path asked for,
and a method aiohttp serves none of is ``other``: what a client sends cannot grow the series.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from foundation.metrics import OTHER, REQUEST_SECONDS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(request: web.Request) -> str:
    """The template of the route that answered, or ``unmatched``."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def timed_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Observe each request's time to answer; the outermost middleware, so it sees the status sent."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in METHODS else OTHER
        REQUEST_SECONDS.labels(route_of(request), method, str(status)).observe(time.perf_counter() - started)
