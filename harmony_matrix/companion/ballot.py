"""The ballot flow, ``/vote/<link>``: start, scores, check your answers, cast, receipt."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Registered by the ballot flow (issue 10)."""
