"""The bot as a real process (`harmony bot --config FILE`) through a real Synapse: killed
with SIGKILL and stopped with SIGTERM while it delivers 50 direct messages, every member
ends with exactly one copy of each; a command sent while it is down is answered once when
it returns. Runs on PostgreSQL too: the bot's database is what keeps that promise."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from harmony_matrix.homeserver import free_port
from harmony_matrix.i18n import _
from harmony_matrix.services import delivery, records
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import person_by_matrix_id
from harmony_matrix.storage.models import OutboxMessage
from tests.matrix.bot_process import bot_settings, run_harmony, start_bot, write_config
from tests.matrix.bot_runner import replies_to, reply_to, room_of
from tests.matrix.member import bodies_in
from tests.matrix.outbox import sent_count, wait_until_sent
from tests.matrix.party import members_of_working_group

MEMBERS = 5
PER_MEMBER = 10


async def unsettled(ctx: ServiceContext) -> int:
    async with ctx.transaction() as session:
        return (
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None))
            )
            or 0
        )


async def text_of(log: Path) -> str:
    return await asyncio.to_thread(log.read_text, encoding="utf-8")


async def wait_until_drained(ctx: ServiceContext, process, log: Path, within: float = 120.0):
    deadline = asyncio.get_running_loop().time() + within
    while await unsettled(ctx):
        assert process.poll() is None, f"the bot exited early:\n{await text_of(log)}"
        assert asyncio.get_running_loop().time() < deadline, f"not drained:\n{await text_of(log)}"
        await asyncio.sleep(0.05)


async def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM: the bot must stop cleanly (status 0), promptly, and say so."""
    process.send_signal(signal.SIGTERM)
    began = asyncio.get_running_loop().time()
    status = await asyncio.to_thread(process.wait, 60)
    took = asyncio.get_running_loop().time() - began
    output = await text_of(log)
    assert status == 0, output
    # Not after the 30-second long poll in progress: that request is abandoned.
    assert took < 10, output
    assert "The bot has stopped." in output
    assert "Traceback" not in output


@pytest.mark.database_matters
async def test_the_bot_process_delivers_exactly_once_across_sigkill_and_sigterm(
    process_ctx, tmp_path, register_user, member_client
):
    ctx, database_url = process_ctx
    bot_user = await register_user("harmony", admin=True)
    users = [await register_user(f"p{index}") for index in range(MEMBERS)]
    # Their devices exist (keys uploaded) before the bot encrypts anything for them.
    members = [await member_client(user) for user in users]
    ann = members[0]
    await members_of_working_group(ctx, users)
    expected: dict[str, list[str]] = {}
    async with ctx.transaction() as session:
        for number in range(PER_MEMBER):
            for user in users:
                person = await person_by_matrix_id(session, user.user_id)
                text = f"Proof message {number}"
                await records.direct_message(
                    session,
                    ctx.now(),
                    person,
                    message=_(text),
                    dedupe_key=f"proof:{number}:{user.user_id}",
                )
                expected.setdefault(user.user_id, []).append(f"{user.user_id}: {text}")
    config = write_config(
        tmp_path / "bot.toml",
        database_url=database_url,
        matrix=bot_settings(bot_user, tmp_path / "store"),
    )
    logs = [tmp_path / f"bot-{run}.log" for run in range(1, 5)]

    killed = start_bot(config, logs[0])
    try:
        await wait_until_sent(ctx, 5, killed)
    finally:
        killed.send_signal(signal.SIGKILL)
        await asyncio.to_thread(killed.wait)
    after_kill = await sent_count(ctx)

    stopped = start_bot(config, logs[1])
    try:
        await wait_until_sent(ctx, after_kill + 5, stopped)
    finally:
        await stop(stopped, logs[1])
    assert 0 < after_kill < await sent_count(ctx) < MEMBERS * PER_MEMBER

    # A third run: the member joins the assembly's room; the rest of the messages go out.
    third = start_bot(config, logs[2])
    try:
        room_id = await room_of(ctx, "working-group", within=60)
        await ann.wait_for_invite(room_id, within=60)
        await ann.join(room_id)
        await wait_until_drained(ctx, third, logs[2])
    finally:
        await stop(third, logs[2])

    # The bot is down: a command waits on the homeserver.
    asked = await ann.send_text(room_id, "!whoami")
    await ann.sync()
    assert replies_to(ann, asked) == []

    back = start_bot(config, logs[3])
    try:
        answer = await reply_to(ann, room_id, asked, within=60)
        assert users[0].user_id in answer.body
        await wait_until_drained(ctx, back, logs[3])
    finally:
        await stop(back, logs[3])
    await ann.sync()
    assert len(replies_to(ann, asked)) == 1

    # From the members' side: each message once, every one decrypted.
    for user, member in zip(users, members, strict=True):
        dm_id = await delivery.direct_room(ctx, user.user_id)
        assert dm_id is not None
        await member.wait_for_invite(dm_id)
        await member.join(dm_id)
        bodies = [body for body in await bodies_in(member, dm_id) if "Proof message" in body]
        assert sorted(bodies) == sorted(expected[user.user_id])


async def test_a_wrong_password_is_named_and_exits_2(synapse, register_user, tmp_path):
    bot_user = await register_user("harmony")
    database = tmp_path / "harmony.db"
    config = write_config(
        tmp_path / "harmony.toml",
        database_url=f"sqlite:///{database}",
        matrix={**bot_settings(bot_user, tmp_path / "store"), "password": "not-the-password"},
    )
    assert run_harmony("--config", str(config), "db", "upgrade").returncode == 0

    result = await asyncio.to_thread(run_harmony, "bot", "--config", str(config))

    assert result.returncode == 2, result.stderr
    assert "'matrix.password'" in result.stderr
    assert bot_user.user_id in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "not-the-password" not in result.stderr + result.stdout


async def run_once(config: Path, store: Path, log: Path) -> dict[str, str]:
    """Start the bot, let it finish its first sync, stop it; its saved login."""
    process = start_bot(config, log)
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not (store / "sync-token").exists():
            assert process.poll() is None, await text_of(log)
            assert asyncio.get_running_loop().time() < deadline, await text_of(log)
            await asyncio.sleep(0.05)
    finally:
        await stop(process, log)
    return json.loads(await asyncio.to_thread((store / "credentials.json").read_text))


async def test_a_restart_while_the_homeserver_is_down_names_it(register_user, tmp_path):
    bot_user = await register_user("harmony")
    database = f"sqlite:///{tmp_path / 'harmony.db'}"
    store = tmp_path / "store"
    settings = bot_settings(bot_user, store)
    config = write_config(tmp_path / "harmony.toml", database_url=database, matrix=settings)
    assert run_harmony("--config", str(config), "db", "upgrade").returncode == 0
    saved = await run_once(config, store, tmp_path / "first.log")

    # The same device, its keys long uploaded, and a homeserver that does not answer.
    down = f"http://127.0.0.1:{free_port()}"
    (store / "credentials.json").write_text(json.dumps({**saved, "homeserver": down}))
    write_config(config, database_url=database, matrix={**settings, "homeserver": down})
    result = await asyncio.to_thread(run_harmony, "bot", "--config", str(config))

    assert result.returncode == 2, result.stderr
    assert "'matrix.homeserver'" in result.stderr and down in result.stderr
    assert "database" not in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


async def test_a_saved_login_the_homeserver_revoked_is_named(register_user, tmp_path):
    bot_user = await register_user("harmony")
    database = f"sqlite:///{tmp_path / 'harmony.db'}"
    store = tmp_path / "store"
    config = write_config(
        tmp_path / "harmony.toml", database_url=database, matrix=bot_settings(bot_user, store)
    )
    assert run_harmony("--config", str(config), "db", "upgrade").returncode == 0
    saved = await run_once(config, store, tmp_path / "first.log")
    # The device is signed out elsewhere (an admin, or the account's owner in Element).
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{saved['homeserver']}/_matrix/client/v3/logout",
            headers={"Authorization": f"Bearer {saved['access_token']}"},
        ) as response,
    ):
        assert response.status == 200

    result = await asyncio.to_thread(run_harmony, "bot", "--config", str(config), timeout=60)

    assert result.returncode == 2, result.stderr
    assert "credentials.json" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert saved["access_token"] not in result.stderr + result.stdout
