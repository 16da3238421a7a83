"""A secretary's page for paper ballots from an in-person meeting, ``/paper/<link>``."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Registered by the paper-ballot page (issue 10)."""
