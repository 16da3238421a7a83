"""The test homeservers themselves: users, encrypted rooms, federation, start-up errors."""

from __future__ import annotations

import os
import socket

import aiohttp
import pytest
from nio import RoomMessageText

from harmony_matrix.homeserver import LocalSynapse, ServerConfig, SynapseError, free_port


async def test_members_read_each_other_in_an_encrypted_room(register_user, member_client):
    alice = await member_client(await register_user("alice"))
    bob = await member_client(await register_user("bob"))

    room_id = await alice.create_room(invite=(bob.user_id,))
    await bob.wait_for_invite(room_id)
    await bob.join(room_id)
    event_id = await alice.send_text(room_id, "Welcome to the moot")

    seen = await bob.wait_for_text(room_id, "Welcome")
    assert seen.event_id == event_id
    assert seen.decrypted  # it came encrypted and bob's device had the key
    assert seen.sender == alice.user_id
    assert "m.room.encryption" in {e.source["type"] for _, e in alice.events}


async def test_a_member_on_another_homeserver_joins_and_reads(
    federated_synapses, register_user, member_client
):
    hs1, hs2 = federated_synapses
    alice = await member_client(await register_user("alice", hs1))
    carol = await member_client(await register_user("carol", hs2))
    assert carol.user_id.endswith(":" + hs2.server_name)

    room_id = await alice.create_room(invite=(carol.user_id,))
    await carol.wait_for_invite(room_id, within=20)
    await carol.join(room_id)
    await alice.wait_for(
        lambda e: (
            e.source.get("state_key") == carol.user_id
            and e.source["content"].get("membership") == "join"
        ),
        room_id=room_id,
    )
    await alice.send_text(room_id, "Hello across servers")

    seen = await carol.wait_for_text(room_id, "Hello across servers", within=20)
    assert isinstance(seen, RoomMessageText)
    assert seen.decrypted
    assert seen.sender == alice.user_id


async def test_an_admin_token_reaches_the_admin_api(synapse, register_user):
    user = await register_user("dora")
    token = await synapse.admin_token()
    assert await synapse.admin_token() == token  # registered once

    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
        session.get(f"{synapse.url}/_synapse/admin/v2/users/{user.user_id}") as response,
    ):
        assert response.status == 200
        assert (await response.json())["admin"] is False


async def test_registration_needs_the_shared_secret(synapse):
    # Registration is closed: only the admin API with the right MAC creates users.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{synapse.url}/_matrix/client/v3/register",
            json={"username": "mallory", "password": "x" * 12},
        ) as response,
    ):
        assert response.status in (401, 403)
        body = await response.json()
        assert "access_token" not in body


def test_a_server_that_cannot_start_says_why_and_leaves_no_process(synapse_python, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = LocalSynapse(ServerConfig(tmp_path, port), synapse_python)
        with pytest.raises(SynapseError, match="Address already in use") as raised:
            server.start(timeout=30)
    assert "exited with status" in str(raised.value)
    assert server.pid is None


def test_stop_reaps_the_process(synapse_python, tmp_path):
    server = LocalSynapse(ServerConfig(tmp_path, free_port()), synapse_python)
    server.start()
    pid = server.pid
    assert pid is not None
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # a zombie would still answer
