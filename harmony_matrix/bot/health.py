"""The bot's health and metrics port (``[matrix] health_port``; 0: none).

- ``/healthz``: is this bot process doing its job? 200 for the active bot that has
  handled a sync response within ``STALE_AFTER_SECONDS`` (or became active less than
  that ago and is still starting), and for a standby bot, which is healthy while it
  waits for the lock: a container orchestrator that restarts "unhealthy" containers
  must not restart the standby in a loop. 503 for an active bot whose sync has stalled
  (the homeserver or the database is away, or the loop is stuck).
- ``/readyz``: is this the bot that acts? 200 only for the active bot with a recent
  sync; 503 for a standby (the body says "standby") and while starting.
- ``/metrics``: the bot's Prometheus metrics (harmony_matrix/metrics.py).

The bodies are one word and the figures are counts: nothing here names a person.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import _
from harmony_matrix.metrics import CONTENT_TYPE, BotMetrics, exposition
from harmony_matrix.services.context import ServiceContext

#: An active bot that has handled no sync response for this long is not working: a
#: sync returns at least every 30 s (its long poll), and a failing one is retried
#: within 60 s (bot/backoff.py).
STALE_AFTER_SECONDS = 120.0


@dataclass(frozen=True)
class Status:
    live: bool
    ready: bool
    #: One word for the response body: "active", "starting", "standby", "stalled".
    word: str


class BotHealth:
    """What the bot tells its health port: when it became active and when it last
    handled a sync response (monotonic clock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.active_since: float | None = None
        self.last_sync: float | None = None

    def became_active(self) -> None:
        self.active_since = self.clock()
        self.last_sync = None

    def synced(self) -> None:
        self.last_sync = self.clock()

    def stood_down(self) -> None:
        self.active_since = None
        self.last_sync = None

    def seconds_since_sync(self) -> float | None:
        return None if self.last_sync is None else self.clock() - self.last_sync

    def status(self) -> Status:
        if self.active_since is None:
            return Status(live=True, ready=False, word="standby")
        since_sync = self.seconds_since_sync()
        if since_sync is not None:
            fresh = since_sync <= STALE_AFTER_SECONDS
            return Status(live=fresh, ready=fresh, word="active" if fresh else "stalled")
        starting = self.clock() - self.active_since <= STALE_AFTER_SECONDS
        return Status(live=starting, ready=False, word="starting" if starting else "stalled")


HEALTH: web.AppKey[BotHealth] = web.AppKey("health")
METRICS: web.AppKey[BotMetrics] = web.AppKey("metrics")
SERVICES: web.AppKey[ServiceContext] = web.AppKey("services")


def health_app(health: BotHealth, metrics: BotMetrics, ctx: ServiceContext) -> web.Application:
    app = web.Application()
    app[HEALTH] = health
    app[METRICS] = metrics
    app[SERVICES] = ctx
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", serve_metrics, name="metrics")
    return app


async def healthz(request: web.Request) -> web.Response:
    status = request.app[HEALTH].status()
    return web.Response(status=200 if status.live else 503, text=f"{status.word}\n")


async def readyz(request: web.Request) -> web.Response:
    status = request.app[HEALTH].status()
    return web.Response(status=200 if status.ready else 503, text=f"{status.word}\n")


async def serve_metrics(request: web.Request) -> web.Response:
    health, metrics = request.app[HEALTH], request.app[METRICS]
    metrics.active.set(0 if health.active_since is None else 1)
    since_sync = health.seconds_since_sync()
    metrics.since_sync.set(-1 if since_sync is None else since_sync)
    body = await exposition(metrics.registry, metrics.database, request.app[SERVICES])
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    """The health port, open for the block (from before the bot waits for its lock)."""
    # No access log: a monitor asks every few seconds, and would fill the bot's log.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise InvalidInput(
                _(
                    "Cannot listen on %(host)s port %(port)s: %(reason)s.",
                    host=host,
                    port=port,
                    reason=error.strerror or type(error).__name__,
                )
            ) from error
        yield
    finally:
        await runner.cleanup()
