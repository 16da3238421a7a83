"""Helpers for the command tests: send a message as someone, read the reply."""

from __future__ import annotations

import itertools

import pytest

from harmony_matrix.bot.commands import (
    BotCommandSettings,
    CommandEvent,
    Dispatcher,
    default_commands,
)
from harmony_matrix.bot.replies import Reply, content, render_html, render_plain
from harmony_matrix.services import assembly_rooms
from harmony_matrix.services.context import ServiceContext
from tests.services.helpers import MEDIA

MEDIA_ROOM = "!media-room"  # room version 12: room IDs have no server part
OTHER_ROOM = "!other-room:harmony.uk"

_events = itertools.count(1)


class Chat:
    """Sends commands to a dispatcher as members would, one event ID each."""

    def __init__(self, ctx: ServiceContext, dispatcher: Dispatcher) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher

    async def send(
        self, sender: str, body: str, room: str = MEDIA_ROOM, thread: str | None = None
    ) -> Reply | None:
        event = CommandEvent(f"$event{next(_events)}", room, sender, body, thread_root=thread)
        return await self.dispatcher.dispatch(self.ctx, event)

    async def ask(self, sender: str, body: str, room: str = MEDIA_ROOM) -> Reply:
        reply = await self.send(sender, body, room)
        assert reply is not None, f"no answer to {body!r}"
        return reply

    async def text(self, sender: str, body: str, room: str = MEDIA_ROOM) -> str:
        """The plain body of the reply, in the language the reply was rendered in."""
        return plain(await self.ask(sender, body, room))


def plain(reply: Reply) -> str:
    assert reply.language is not None
    return render_plain(reply, reply.language)


def html(reply: Reply) -> str:
    assert reply.language is not None
    return render_html(reply, reply.language)


def matrix_content(reply: Reply) -> dict:
    return content(reply)


@pytest.fixture
def chat(demo: ServiceContext) -> Chat:
    """The demo party, with the bot's commands and the default prefix."""
    return Chat(demo, Dispatcher(default_commands(), BotCommandSettings()))


@pytest.fixture
async def media_room(chat: Chat) -> Chat:
    """As ``chat``, with MEDIA_ROOM linked to the Media Working Group."""
    await assembly_rooms.link_room(chat.ctx, None, MEDIA, MEDIA_ROOM)
    return chat
