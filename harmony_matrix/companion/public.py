"""The party's public pages: assemblies, meetings, results, petitions, consensus."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Registered by the public pages (issue 10)."""
