"""Command replies through a real homeserver: a member's command in an encrypted room,
answered with the dispatcher's content (sent here by a plain client standing in for the
bot's sender), reaches the member as a notice that replies to the command, pings only
them, is in their language, and shows their text escaped."""

from __future__ import annotations

from nio import RoomMessageNotice, RoomMessageText

from harmony_matrix.bot.commands import (
    BotCommandSettings,
    CommandEvent,
    Dispatcher,
    default_commands,
)
from harmony_matrix.bot.replies import content
from harmony_matrix.constitution.eligibility import Status
from harmony_matrix.services import registry
from harmony_matrix.storage.models import Person, Role
from tests.matrix.member import MatrixTestError, Member
from tests.services.helpers import MEDIA


async def _put_on_register(ctx, user_id: str, language: str) -> None:
    async with ctx.transaction() as session:
        session.add(
            Person(
                matrix_id=user_id,
                display_name="Test Secretary",
                status=Status.MEMBER,
                language=language,
                created_at=ctx.now(),
            )
        )
    await registry.add_to_assembly(ctx, None, MEDIA, user_id, Role.SECRETARY)


async def _answer(bot: Member, ctx, dispatcher: Dispatcher, room_id: str, event_id: str) -> None:
    """What the bot's sync loop and sender do with one command, by hand."""
    command = await bot.wait_for(
        lambda e: isinstance(e, RoomMessageText) and e.event_id == event_id, room_id=room_id
    )
    assert isinstance(command, RoomMessageText)
    reply = await dispatcher.dispatch(
        ctx, CommandEvent(command.event_id, room_id, command.sender, command.body)
    )
    assert reply is not None
    response = await bot.client.room_send(
        room_id, "m.room.message", content(reply), ignore_unverified_devices=True
    )
    if not hasattr(response, "event_id"):
        raise MatrixTestError(f"the reply was refused: {response}")


async def _reply_to(member: Member, room_id: str, event_id: str) -> RoomMessageNotice:
    event = await member.wait_for(
        lambda e: (
            isinstance(e, RoomMessageNotice)
            and e.source["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
            == event_id
        ),
        room_id=room_id,
    )
    assert isinstance(event, RoomMessageNotice)
    return event


async def test_a_command_in_an_encrypted_room_gets_its_reply(demo, register_user, member_client):
    bot = await member_client(await register_user("harmony"))
    member = await member_client(await register_user("secretary"))
    await _put_on_register(demo, member.user_id, "fr")
    dispatcher = Dispatcher(default_commands(), BotCommandSettings())

    room_id = await member.create_room(invite=(bot.user_id,))
    await bot.wait_for_invite(room_id)
    await bot.join(room_id)

    linked = await member.send_text(room_id, f"!assembly link {MEDIA}")
    await _answer(bot, demo, dispatcher, room_id, linked)
    notice = await _reply_to(member, room_id, linked)
    assert notice.decrypted
    assert notice.sender == bot.user_id
    assert notice.body.startswith("Ce salon est désormais celui de Media Working Group")
    assert notice.source["content"]["m.mentions"] == {"user_ids": [member.user_id]}

    hostile = await member.send_text(room_id, '!consensus "<script>x</script> @room"')
    await _answer(bot, demo, dispatcher, room_id, hostile)
    notice = await _reply_to(member, room_id, hostile)
    # The member reads French: the service's refusal comes from the French catalog.
    assert notice.body.startswith("Il n'y a pas d'assemblée nommée « <script>x</script> @room »")
    assert notice.formatted_body is not None
    assert "<script>" not in notice.formatted_body
    assert "&lt;script&gt;x&lt;/script&gt; @room" in notice.formatted_body
    assert notice.source["content"]["m.mentions"] == {"user_ids": [member.user_id]}
