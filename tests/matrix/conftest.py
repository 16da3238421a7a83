"""Real Synapse homeservers for the tests under tests/matrix/.

- ``synapse``: one homeserver for the whole session (starting one costs 1.5-2.5 s on two
  cores), started by a synchronous fixture: no event loop is involved.
- ``federated_synapses``: two homeservers, ``localhost:P1`` and ``localhost:P2``, that
  federate with each other over TLS.
- ``register_user``: registers a user with a fresh localpart (the servers outlive tests).
- ``member_client``: logs a registered user in with matrix-nio and end-to-end encryption
  (tests/matrix/member.py).

Every test in this folder is marked ``synapse``: the PostgreSQL pass of ``./dev test``
leaves them out unless they are also marked ``database_matters``.
Synapse is installed on first use (into ~/.cache/harmony, once per machine). If that
fails, the tests are skipped, except in CI (CI or HARMONY_REQUIRE_SYNAPSE set), where
the failure is an error. A server that is installed but does not start is always an error.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harmony_matrix.homeserver import LocalSynapse, RegisteredUser, ServerConfig, free_port
from harmony_matrix.homeserver.install import SynapseInstallError, ensure_synapse
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.database import make_engine
from tests.matrix.bot_process import SECRET_KEY, run_harmony, write_config
from tests.matrix.member import Member

HERE = Path(__file__).resolve().parent
REQUIRED = bool(os.environ.get("CI") or os.environ.get("HARMONY_REQUIRE_SYNAPSE"))
_localparts = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items: mark only the ones in this folder.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.synapse)


@pytest.fixture(scope="session")
def synapse_python() -> Path:
    """The python of Synapse's venv (installing it on first use)."""
    try:
        return ensure_synapse(progress=lambda line: print(line, file=sys.__stderr__, flush=True))
    except SynapseInstallError as error:
        if REQUIRED:
            raise
        pytest.skip(f"Synapse could not be installed: {error}")


@pytest.fixture(scope="session")
def synapse(synapse_python, tmp_path_factory) -> Iterator[LocalSynapse]:
    server = LocalSynapse(
        ServerConfig(tmp_path_factory.mktemp("synapse"), free_port()), synapse_python
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def federated_synapses(
    synapse_python, tmp_path_factory
) -> Iterator[tuple[LocalSynapse, LocalSynapse]]:
    federation_ports = (free_port(), free_port())
    names = [f"localhost:{port}" for port in federation_ports]
    servers = tuple(
        LocalSynapse(
            ServerConfig(
                tmp_path_factory.mktemp(f"synapse-hs{index + 1}"),
                free_port(),
                federation_port=port,
                federation_peers=tuple(name for name in names if name != names[index]),
            ),
            synapse_python,
        )
        for index, port in enumerate(federation_ports)
    )
    try:
        for server in servers:
            server.start()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def register_user(request):
    """``await register_user("alice")`` on the ``synapse`` server, or
    ``await register_user("alice", server=hs2)``; the localpart gets a unique suffix."""

    async def register(
        name: str, server: LocalSynapse | None = None, *, admin: bool = False
    ) -> RegisteredUser:
        server = server or request.getfixturevalue("synapse")
        return await server.register(f"{name}-{next(_localparts)}", admin=admin)

    return register


@pytest.fixture
async def member_client(tmp_path):
    """``await member_client(user)``: a logged-in Member (closed after the test)."""
    members: list[Member] = []

    async def log_in(user: RegisteredUser) -> Member:
        member = await Member.login(user, tmp_path / "nio" / user.localpart)
        members.append(member)
        return member

    yield log_in
    for member in members:
        await member.close()


@pytest.fixture
async def process_ctx(empty_url, tmp_path):
    """The database of the bot process, migrated as an operator would, and a context on
    it for the test (the same database: SQLite file, or PostgreSQL in that pass)."""
    config = write_config(
        tmp_path / "harmony.toml",
        database_url=empty_url,
        matrix={"user_id": "@unused:localhost", "password": "unused"},
    )
    upgraded = run_harmony("--config", str(config), "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    ctx = ServiceContext(engine=make_engine(empty_url), secret_key=SECRET_KEY.encode())
    yield ctx, empty_url
    await ctx.engine.dispose()
