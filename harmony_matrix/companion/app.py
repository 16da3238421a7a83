"""The app factory shared by ``harmony web``, the tests and the benchmark."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from harmony_matrix.companion import ballot, paper, public
from harmony_matrix.companion.failures import error_pages
from harmony_matrix.companion.keys import (
    BALLOT_LIMITER,
    RENDERER,
    SECURITY,
    SERVICES,
    SETTINGS,
)
from harmony_matrix.companion.monitoring import add_metrics
from harmony_matrix.companion.rendering import Renderer
from harmony_matrix.companion.security import (
    RateLimiter,
    WebSecurity,
    add_security_headers,
    origin_of,
)
from harmony_matrix.config import Config, WebSettings
from harmony_matrix.resources import data_dir
from harmony_matrix.services import health
from harmony_matrix.services.context import ServiceContext

#: Ballot pages post a few numbers; a paper-ballot upload is the largest form (1 MiB).
MAX_REQUEST_BYTES = 1024 * 1024


def make_app(ctx: ServiceContext, settings: WebSettings | None = None) -> web.Application:
    """The companion for a ready :class:`ServiceContext` (its engine is the caller's)."""
    settings = settings or WebSettings(public_base_url=ctx.public_base_url)
    app = web.Application(middlewares=[error_pages], client_max_size=MAX_REQUEST_BYTES)
    app[SERVICES] = ctx
    app[SETTINGS] = settings
    app[RENDERER] = Renderer(party_name=ctx.party.name, timezone=ctx.party.timezone)
    app[SECURITY] = WebSecurity(ctx.secret_key, origin_of(settings.public_base_url))
    app[BALLOT_LIMITER] = RateLimiter(settings.ballot_posts_per_minute)
    app.on_response_prepare.append(add_security_headers)
    app.router.add_static("/static/", data_dir("web") / "static", name="static")
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    ballot.add_routes(app)
    paper.add_routes(app)
    public.add_routes(app)
    if settings.metrics:
        add_metrics(app)
    return app


def app_for_config(config: Config) -> web.Application:
    """The companion ``harmony web`` serves: its database engine is the app's resource,
    checked at start-up (a database that is not migrated stops the start with what to
    do) and disposed at clean-up. Serve it with ``AccessLogger`` and after
    ``install_log_redaction()``, as ``harmony web`` does, or links reach the logs."""
    app = make_app(ServiceContext.from_config(config), config.web)

    async def database(app: web.Application) -> AsyncIterator[None]:
        await health.require_ready(app[SERVICES])
        yield
        await app[SERVICES].engine.dispose()

    app.cleanup_ctx.append(database)
    return app


async def healthz(_request: web.Request) -> web.Response:
    """The process answers."""
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """The database answers and has the schema this code expects."""
    if not await health.is_ready(request.app[SERVICES]):
        return web.Response(status=503, text="not ready\n")
    return web.Response(text="ready\n")
