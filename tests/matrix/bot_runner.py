"""Harmony's whole bot, run in the test's event loop against the test homeserver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from nio import RoomMessageNotice
from sqlalchemy import select

from harmony_matrix.bot.app import Bot
from harmony_matrix.config import Config, MatrixSettings
from harmony_matrix.demo.member import replied_to
from harmony_matrix.homeserver import RegisteredUser
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import Assembly
from tests.matrix.member import Member


def bot_config(user: RegisteredUser, store: Path, **matrix: object) -> Config:
    return Config(
        matrix=MatrixSettings(
            homeserver=user.homeserver,
            user_id=user.user_id,
            password=user.password,
            store_path=str(store),
            **matrix,  # type: ignore[arg-type]
        )
    )


@asynccontextmanager
async def running(config: Config, ctx: ServiceContext) -> AsyncIterator[Bot]:
    """The bot, started and past its first sync; stopped (cleanly) afterwards."""
    bot = Bot(config, ctx)
    task = asyncio.create_task(bot.run())
    ready = asyncio.create_task(bot.ready.wait())
    done, _pending = await asyncio.wait({task, ready}, timeout=60, return_when="FIRST_COMPLETED")
    if task in done:
        ready.cancel()
        task.result()  # raises what stopped it
    assert ready in done, "the bot did not finish its first sync in 60 s"
    try:
        yield bot
    finally:
        bot.stop.set()
        await asyncio.wait_for(task, 30)


async def room_of(ctx: ServiceContext, slug: str, within: float = 30.0) -> str:
    """The room the bot made for an assembly (it makes them just after it starts)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with ctx.transaction() as session:
            room_id = await session.scalar(
                select(Assembly.matrix_room_id).where(Assembly.slug == slug)
            )
        if room_id:
            return room_id
        assert asyncio.get_running_loop().time() < deadline, f"no room for {slug}"
        await asyncio.sleep(0.2)


async def reply_to(member: Member, room_id: str, event_id: str, within: float = 15.0):
    event = await member.wait_for(
        lambda e: isinstance(e, RoomMessageNotice) and replied_to(e) == event_id,
        room_id=room_id,
        within=within,
    )
    assert isinstance(event, RoomMessageNotice)
    return event


def replies_to(member: Member, event_id: str) -> list[RoomMessageNotice]:
    """Every reply to the event the member has seen so far."""
    return [
        event
        for _room, event in member.events
        if isinstance(event, RoomMessageNotice) and replied_to(event) == event_id
    ]
