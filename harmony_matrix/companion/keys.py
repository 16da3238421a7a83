"""The typed keys under which the app keeps what its handlers share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from harmony_matrix.companion.rendering import Renderer
    from harmony_matrix.companion.security import RateLimiter, WebSecurity
    from harmony_matrix.config import WebSettings
    from harmony_matrix.metrics import WebMetrics
    from harmony_matrix.services.context import ServiceContext

SERVICES: web.AppKey[ServiceContext] = web.AppKey("services")
RENDERER: web.AppKey[Renderer] = web.AppKey("renderer")
SETTINGS: web.AppKey[WebSettings] = web.AppKey("settings")
SECURITY: web.AppKey[WebSecurity] = web.AppKey("security")
BALLOT_LIMITER: web.AppKey[RateLimiter] = web.AppKey("ballot_limiter")
METRICS: web.AppKey[WebMetrics] = web.AppKey("metrics")
