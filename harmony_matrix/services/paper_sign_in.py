"""One-time links that sign a meeting's organiser in to the paper-ballot page.

``!ballot paper`` queues a direct message to the secretary (:func:`send_sign_in_link`);
the link in it is handled like a ballot link (services/ballot_delivery.py): the bot
mints it in memory when it sends the message (:func:`prepare_sign_in_message`), and
once the homeserver has accepted it, stores only a hash of its token
(:func:`confirm_sign_in_message`). The link itself is never written anywhere.

The link is ``[web] public_base_url`` + ``/paper/`` + ``ID.TOKEN.EXPIRES.SIGNATURE``,
signed under the ballot key, and works once (:func:`redeem_sign_in` marks it used in
the transaction that accepts it) until it expires, for a person who is still an
organiser of the meeting. Redeeming it gives a :class:`PaperSession`, which the web
companion keeps in a signed cookie; every use of the session checks the organiser again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.errors import NotAllowed, NotFound, RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.services.meetings import meeting_for_organiser
from harmony_matrix.services.records import audit
from harmony_matrix.storage.models import Meeting, OutboxMessage, PaperSignIn, Person
from harmony_matrix.voting.links import DIGITS, new_token

#: How long a sign-in link works after it is issued.
LINK_LIFETIME = timedelta(hours=2)
#: How long a secretary stays signed in after using the link.
SESSION_LIFETIME = timedelta(hours=2)
#: The link's path, after the site's address.
PATH = "/paper/"
#: Signed payloads start with this, so that no other signed link (a ballot link) is one.
_DOMAIN = b"paper-sign-in:"


def _token_hash(token: str) -> str:
    return hashlib.sha256(_DOMAIN + token.encode()).hexdigest()


def _sign(key: bytes, payload: str) -> str:
    mac = hmac.new(key, _DOMAIN + payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _refused() -> NotAllowed:
    return NotAllowed(
        _(
            "This sign-in link is not valid. Use the link in your latest direct message "
            "from Harmony, or ask for a new one with !ballot paper."
        )
    )


@dataclass(frozen=True)
class SignInLink:
    sign_in_id: int
    token: str = field(repr=False)
    expires: int  # Unix time, seconds

    def _payload(self) -> str:
        return f"{self.sign_in_id}.{self.token}.{self.expires}"

    def sign(self, key: bytes) -> str:
        """The link's path segment: ``ID.TOKEN.EXPIRES.SIGNATURE`` (URL-safe)."""
        return f"{self._payload()}.{_sign(key, self._payload())}"

    @classmethod
    def verify(cls, text: str, key: bytes) -> SignInLink:
        """Parse a link and check its signature (its expiry is checked against the row)."""
        parts = text.strip().split(".")
        if len(parts) != 4 or not DIGITS.fullmatch(parts[0]) or not DIGITS.fullmatch(parts[2]):
            raise _refused()
        link = cls(int(parts[0]), parts[1], int(parts[2]))
        if not hmac.compare_digest(_sign(key, link._payload()), parts[3]):
            raise _refused()
        return link


@dataclass(frozen=True)
class PaperSession:
    """Who is signed in to enter which meeting's paper ballots, until when (Unix time)."""

    person_id: int
    meeting_id: int
    expires: int

    @property
    def meeting_ref(self) -> str:
        return meeting_ref(self.meeting_id)

    def expired(self, now: datetime) -> bool:
        return now.astimezone(UTC).timestamp() >= self.expires


@dataclass(frozen=True)
class SignInView:
    """What the sign-in page shows before the link is used."""

    meeting_ref: str
    question: str


async def send_sign_in_link(ctx: ServiceContext, actor: str | None, ref: str) -> bool:
    """Queue a direct message to ``actor``, an organiser of the meeting, that the bot
    sends with a one-time sign-in link. False for the operator (nobody to send it to)."""
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        if person is None:
            return False
        now = ctx.now()
        sign_in = PaperSignIn(
            person_id=person.id,
            meeting_id=meeting.id,
            created_at=now,
            expires_at=now + LINK_LIFETIME,
            token_hash=None,
            used_at=None,
        )
        session.add(sign_in)
        await session.flush()
        message = _(
            "Your link to enter the paper ballots of %(ref)s follows. It works once, for "
            "%(hours)s hours, and only for you: do not share it. Open it on the computer "
            "where you will type the ballots.",
            ref=meeting_ref(meeting.id),
            hours=int(LINK_LIFETIME.total_seconds() // 3600),
        )
        session.add(
            OutboxMessage(
                created_at=now,
                destination=person.matrix_id,
                is_direct=True,
                language=person.language,
                body=message.render(person.language),
                dedupe_key=f"paper-sign-in:{sign_in.id}",
                sent_at=None,
                paper_sign_in_id=sign_in.id,
            )
        )
        audit(session, now, person, "paper.sign_in_sent", meeting_ref(meeting.id))
        return True


@dataclass(frozen=True)
class PreparedSignInMessage:
    outbox_id: int
    destination: str
    #: The text to send, with the link: never log it, never store it.
    body: str = field(repr=False)
    transaction_id: str
    _token_hash: str = field(repr=False)


async def prepare_sign_in_message(ctx: ServiceContext, outbox_id: int) -> PreparedSignInMessage:
    """The text of a queued sign-in message with a freshly minted link; writes nothing."""
    key = ctx.ballot_key()
    async with ctx.transaction() as session:
        message, sign_in = await _message_and_sign_in(session, outbox_id)
        if message.sent_at is not None or sign_in.token_hash is not None:
            raise RuleViolation(_("This sign-in message has already been sent."))
        if ctx.now() >= sign_in.expires_at:
            raise RuleViolation(_("This sign-in link has expired before it could be sent."))
        token = new_token()
        link = SignInLink(sign_in.id, token, int(sign_in.expires_at.timestamp()))
        url = f"{ctx.public_base_url.rstrip('/')}{PATH}{link.sign(key)}"
        return PreparedSignInMessage(
            outbox_id=message.id,
            destination=message.destination,
            body=f"{message.body}\n{url}",
            # A new link is a new message: a reused ID would return the old event.
            transaction_id=f"harmony-sign-in-{message.id}-{secrets.token_hex(8)}",
            _token_hash=_token_hash(token),
        )


async def confirm_sign_in_message(ctx: ServiceContext, prepared: PreparedSignInMessage) -> bool:
    """The homeserver accepted the message: its link becomes the one that works. False
    if another delivery was confirmed first (then this message's link does not work)."""
    async with ctx.transaction() as session:
        message, sign_in = await _message_and_sign_in(session, prepared.outbox_id)
        claimed = await session.execute(
            update(PaperSignIn)
            .where(PaperSignIn.id == sign_in.id, PaperSignIn.token_hash.is_(None))
            .values(token_hash=prepared._token_hash)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False
        message.sent_at = ctx.now()
        message.attempts = (message.attempts or 0) + 1
        return True


async def _message_and_sign_in(
    session: AsyncSession, outbox_id: int
) -> tuple[OutboxMessage, PaperSignIn]:
    message = await session.get(OutboxMessage, outbox_id)
    if message is None or message.paper_sign_in_id is None:
        raise NotFound(_("There is no such sign-in message."))
    sign_in = await session.get(PaperSignIn, message.paper_sign_in_id)
    assert sign_in is not None
    return message, sign_in


async def _usable_sign_in(
    session: AsyncSession, ctx: ServiceContext, text: str, *, lock: bool
) -> tuple[PaperSignIn, Meeting, Person]:
    link = SignInLink.verify(text, ctx.ballot_key())
    query = select(PaperSignIn).where(PaperSignIn.id == link.sign_in_id)
    if lock:
        query = query.with_for_update()
    sign_in = await session.scalar(query)
    if (
        sign_in is None
        or sign_in.token_hash is None
        or not hmac.compare_digest(sign_in.token_hash, _token_hash(link.token))
        or int(sign_in.expires_at.timestamp()) != link.expires
    ):
        raise _refused()
    if sign_in.used_at is not None:
        raise NotAllowed(
            _(
                "This sign-in link has already been used: each link works once. If that was "
                "not you, tell the General Secretary. Ask for a new link with !ballot paper."
            )
        )
    if ctx.now() >= sign_in.expires_at:
        raise NotAllowed(_("This sign-in link has expired. Ask for a new one with !ballot paper."))
    person = await session.get(Person, sign_in.person_id)
    assert person is not None
    meeting, _person = await meeting_for_organiser(
        session, ctx, person.matrix_id, meeting_ref(sign_in.meeting_id)
    )
    return sign_in, meeting, person


async def check_sign_in(ctx: ServiceContext, text: str) -> SignInView:
    """What a sign-in link is for, if it still works; uses nothing up (a link previewer
    that fetches the page must not spend the link)."""
    async with ctx.transaction() as session:
        _sign_in, meeting, _person = await _usable_sign_in(session, ctx, text, lock=False)
        return SignInView(meeting_ref(meeting.id), meeting.question)


async def redeem_sign_in(ctx: ServiceContext, text: str) -> PaperSession:
    """Use a sign-in link: it never works again. Refused if it was used, has expired, or
    its person is no longer an organiser of the meeting."""
    async with ctx.transaction() as session:
        sign_in, meeting, person = await _usable_sign_in(session, ctx, text, lock=True)
        now = ctx.now()
        # Conditional, so that of two uses at once only one succeeds.
        spent = await session.execute(
            update(PaperSignIn)
            .where(PaperSignIn.id == sign_in.id, PaperSignIn.used_at.is_(None))
            .values(used_at=now)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            raise NotAllowed(_("This sign-in link has already been used: each link works once."))
        audit(session, now, person, "paper.signed_in", meeting_ref(meeting.id))
        return PaperSession(
            person_id=person.id,
            meeting_id=meeting.id,
            expires=int((now + SESSION_LIFETIME).timestamp()),
        )


async def session_actor(ctx: ServiceContext, paper_session: PaperSession) -> str:
    """The Matrix ID of the signed-in person, still an organiser of the session's
    meeting, for the paper-vote services; refused otherwise."""
    if paper_session.expired(ctx.now()):
        raise NotAllowed(
            _(
                "You were signed out because it has been a while. Ask for a new link with "
                "!ballot paper."
            )
        )
    async with ctx.transaction() as session:
        person = await session.get(Person, paper_session.person_id)
        if person is None:
            raise NotAllowed(_("You are not signed in."))
        await meeting_for_organiser(session, ctx, person.matrix_id, paper_session.meeting_ref)
        return person.matrix_id
