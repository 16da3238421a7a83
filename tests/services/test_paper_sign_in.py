"""One-time sign-in links to the paper-ballot page: sent by direct message with a link
minted when it is sent (never stored), used once, expiring, for an organiser only."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from harmony_matrix.errors import NotAllowed, RuleViolation
from harmony_matrix.services import paper_sign_in, paper_votes
from harmony_matrix.services.paper_sign_in import SignInLink
from harmony_matrix.storage.models import OutboxMessage, PaperSignIn, Person
from tests.ballots.helpers import meeting_at_vote, voters
from tests.services.helpers import ANA, GWEN
from tests.services.paper_helpers import deliver_sign_in_links, sign_in_link

KEY = b"k" * 32


@pytest.fixture
async def ref(demo) -> str:
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    await paper_votes.prepare_paper_vote(demo, ANA, ref)
    return ref


async def _rows(ctx):
    async with ctx.transaction() as session:
        messages = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.paper_sign_in_id.is_not(None))
            )
        )
        sign_ins = list(await session.scalars(select(PaperSignIn)))
        for row in (*messages, *sign_ins):
            session.expunge(row)
    return messages, sign_ins


async def test_the_link_is_minted_when_sent_and_only_its_hash_is_stored(demo, ref):
    assert await paper_sign_in.send_sign_in_link(demo, ANA, ref)
    [message], [sign_in] = await _rows(demo)
    assert message.destination == ANA and message.is_direct
    assert "/paper/" not in message.body and ref in message.body
    assert sign_in.token_hash is None and sign_in.used_at is None
    assert sign_in.expires_at == demo.now() + paper_sign_in.LINK_LIFETIME

    prepared = await paper_sign_in.prepare_sign_in_message(demo, message.id)
    url = prepared.body.rsplit("\n", 1)[1]
    assert url.startswith(f"{demo.public_base_url}/paper/")
    assert prepared.transaction_id.startswith(f"harmony-sign-in-{message.id}-")
    link = url.rsplit("/paper/", 1)[1]
    token = link.split(".")[1]
    assert token not in repr(prepared)
    assert await paper_sign_in.confirm_sign_in_message(demo, prepared)

    [message], [sign_in] = await _rows(demo)
    assert message.sent_at is not None
    assert token not in message.body and link not in message.body
    assert sign_in.token_hash is not None and token not in sign_in.token_hash
    with pytest.raises(RuleViolation):
        await paper_sign_in.prepare_sign_in_message(demo, message.id)


async def test_a_link_works_once(demo, ref):
    link = await sign_in_link(demo, ANA, ref)
    view = await paper_sign_in.check_sign_in(demo, link)
    assert view.meeting_ref == ref
    await paper_sign_in.check_sign_in(demo, link)  # looking spends nothing
    session = await paper_sign_in.redeem_sign_in(demo, link)
    async with demo.transaction() as db:
        ana = await db.scalar(select(Person).where(Person.matrix_id == ANA))
    assert session.person_id == ana.id and session.meeting_ref == ref
    assert session.expires == int((demo.now() + paper_sign_in.SESSION_LIFETIME).timestamp())
    assert await paper_sign_in.session_actor(demo, session) == ANA
    for use in (paper_sign_in.redeem_sign_in, paper_sign_in.check_sign_in):
        with pytest.raises(NotAllowed) as refused:
            await use(demo, link)
        assert "already been used" in str(refused.value)


async def test_of_uses_at_once_one_succeeds(demo, ref):
    link = await sign_in_link(demo, ANA, ref)
    results = await asyncio.gather(
        *(paper_sign_in.redeem_sign_in(demo, link) for _ in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, NotAllowed) for r in results if isinstance(r, BaseException))


async def test_links_and_sessions_expire(demo, ref):
    link = await sign_in_link(demo, ANA, ref)
    demo.clock.advance(hours=2)
    with pytest.raises(NotAllowed, match="expired"):
        await paper_sign_in.redeem_sign_in(demo, link)

    fresh = await sign_in_link(demo, ANA, ref)
    session = await paper_sign_in.redeem_sign_in(demo, fresh)
    demo.clock.advance(hours=1, minutes=59)
    assert await paper_sign_in.session_actor(demo, session) == ANA
    demo.clock.advance(minutes=1)
    with pytest.raises(NotAllowed, match="signed out"):
        await paper_sign_in.session_actor(demo, session)


async def test_a_message_not_sent_in_time_is_not_sent(demo, ref):
    assert await paper_sign_in.send_sign_in_link(demo, ANA, ref)
    [message], _ = await _rows(demo)
    demo.clock.advance(hours=2)
    with pytest.raises(RuleViolation):
        await paper_sign_in.prepare_sign_in_message(demo, message.id)


async def test_only_a_delivered_link_works_and_only_the_first_confirmed(demo, ref):
    assert await paper_sign_in.send_sign_in_link(demo, ANA, ref)
    [message], _ = await _rows(demo)
    lost = await paper_sign_in.prepare_sign_in_message(demo, message.id)  # the bot died
    lost_link = lost.body.rsplit("/paper/", 1)[1]
    with pytest.raises(NotAllowed, match="not valid"):
        await paper_sign_in.check_sign_in(demo, lost_link)
    [link] = (await deliver_sign_in_links(demo)).values()
    assert link != lost_link
    assert not await paper_sign_in.confirm_sign_in_message(demo, lost)
    with pytest.raises(NotAllowed, match="not valid"):
        await paper_sign_in.redeem_sign_in(demo, lost_link)
    await paper_sign_in.redeem_sign_in(demo, link)


async def test_only_an_organiser_gets_or_uses_a_link(demo, ref):
    with pytest.raises(NotAllowed):
        await paper_sign_in.send_sign_in_link(demo, GWEN, ref)
    assert not await paper_sign_in.send_sign_in_link(demo, None, ref)  # the operator
    link = await sign_in_link(demo, ANA, ref)
    spare = await sign_in_link(demo, ANA, ref)
    session = await paper_sign_in.redeem_sign_in(demo, spare)
    async with demo.transaction() as db:
        await db.execute(
            update(Person)
            .where(Person.matrix_id == ANA)
            .values(suspended_from=demo.now() - timedelta(minutes=1))
        )
    with pytest.raises(NotAllowed, match="suspended"):
        await paper_sign_in.redeem_sign_in(demo, link)
    with pytest.raises(NotAllowed, match="suspended"):
        await paper_sign_in.session_actor(demo, session)


async def test_a_tampered_or_foreign_link_is_refused(demo, ref):
    link = await sign_in_link(demo, ANA, ref)
    sign_in_id, token, expires, signature = link.split(".")
    forged = [
        f"{int(sign_in_id) + 1}.{token}.{expires}.{signature}",
        f"{sign_in_id}.{token}.{int(expires) + 3600}.{signature}",
        f"{sign_in_id}.{token[:-1]}{'B' if token.endswith('A') else 'A'}.{expires}.{signature}",
        f"{sign_in_id}.{token}.{expires}",
        "",
        "../../etc/passwd",
    ]
    # Signed correctly, but with another token: the row's hash does not match.
    forged.append(SignInLink(int(sign_in_id), "x" * 43, int(expires)).sign(demo.ballot_key()))
    for text in forged:
        with pytest.raises(NotAllowed, match="not valid"):
            await paper_sign_in.redeem_sign_in(demo, text)
    await paper_sign_in.redeem_sign_in(demo, link)


@given(
    sign_in_id=st.integers(1, 10**9),
    token=st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1),
    expires=st.integers(0, 2**40),
    position=st.integers(0, 10_000),
    replacement=st.sampled_from("0aZ_-."),
)
def test_any_change_to_a_link_breaks_its_signature(
    sign_in_id, token, expires, position, replacement
):
    signed = SignInLink(sign_in_id, token, expires).sign(KEY)
    position %= len(signed)
    changed = signed[:position] + replacement + signed[position + 1 :]
    if changed == signed:
        return
    try:
        found = SignInLink.verify(changed, KEY)
    except NotAllowed:
        return
    # A change that still verifies must mean the same link (it cannot: HMAC).
    assert found == SignInLink(sign_in_id, token, expires)  # pragma: no cover


async def test_the_sender_delivers_the_link_and_never_logs_it(demo, ref, caplog):
    from harmony_matrix.bot.sender import MARKER, OutboxSender
    from tests.bot.test_sender_unit import FakeHomeserver

    caplog.set_level(logging.DEBUG)
    homeserver = FakeHomeserver()
    sender = OutboxSender(homeserver, demo)  # type: ignore[arg-type]
    await sender.drain_once()  # the meeting's notices
    homeserver.sent.clear()
    assert await paper_sign_in.send_sign_in_link(demo, ANA, ref)
    await sender.drain_once()
    [(_room, content, txn)] = homeserver.sent
    assert content["msgtype"] == "m.text" and MARKER not in content
    assert txn.startswith("harmony-sign-in-")
    link = content["body"].rsplit("/paper/", 1)[1]
    assert link not in caplog.text and link.split(".")[1] not in caplog.text
    [message], _ = await _rows(demo)
    assert message.sent_at is not None and message.event_id
    assert "/paper/" not in message.body + message.last_error
    assert (await paper_sign_in.redeem_sign_in(demo, link)).meeting_ref == ref
