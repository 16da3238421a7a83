"""The companion's Prometheus metrics: how long each request took, by the NAME of the
route it matched (never its path: /vote/<link> paths hold secret tokens), and /metrics.

On only with ``[web] metrics = true``; a proxy in front must keep /metrics from the
public (docker/nginx.conf refuses it), and the monitor scrapes each process directly.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from harmony_matrix.companion.keys import METRICS, SERVICES
from harmony_matrix.metrics import CONTENT_TYPE, UNMATCHED, WebMetrics, exposition

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_metrics(app: web.Application) -> None:
    """Time every request and serve /metrics. Call before any other middleware is added,
    so that the time and status are those of the whole answer, error pages included."""
    app[METRICS] = WebMetrics()
    app.middlewares.insert(0, timed)
    app.router.add_get("/metrics", metrics, name="metrics")


def route_name(request: web.Request) -> str:
    """The name of the route the request matched; ``UNMATCHED`` when none did (a 404, or
    a 405: aiohttp's system route, which has no resource)."""
    resource = request.match_info.route.resource
    if resource is None or not resource.name:
        return UNMATCHED
    return resource.name


@web.middleware
async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    # A failure no middleware turned into a page reaches the client as a 500.
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        request.app[METRICS].observe(
            route_name(request), request.method, status, time.perf_counter() - started
        )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus's text format; the database's figures are read for each scrape."""
    collected = request.app[METRICS]
    body = await exposition(collected.registry, collected.database, request.app[SERVICES])
    response = web.Response(body=body)
    # Set whole: web.Response would refuse the charset parameter inside content_type.
    response.headers["Content-Type"] = CONTENT_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response
