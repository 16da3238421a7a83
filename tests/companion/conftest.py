"""The companion in the test's own event loop, reached through aiohttp's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from harmony_matrix.companion.app import make_app
from harmony_matrix.services.context import ServiceContext


@pytest.fixture
async def client(ctx: ServiceContext) -> AsyncIterator[TestClient]:
    """A client of the companion on an empty database (add ``demo`` for the party)."""
    async with TestClient(TestServer(make_app(ctx))) as test_client:
        yield test_client
