"""The rules of delivering the outbox: what is due, retries, giving up, direct rooms.

The bot's sender (``bot/sender.py``) talks to Matrix; every change of a queued message's
state goes through here, one transaction each, so the rules are testable without Matrix:

- a message is due when it is neither sent nor given up and its retry time has come;
- before the first attempt its time is recorded (a homeserver forgets transaction IDs
  after a day, so an older unconfirmed message is looked for before it is sent again);
- a failure is retried with exponential backoff and jitter, or when the homeserver asks
  (``retry_after``); after ``RetryPolicy.attempts`` failures, or at once when the failure
  is permanent (an unknown user), the message is given up and the recipient's
  secretaries are told by direct message;
- a member who blocks invitations is told once in their assemblies' rooms to open a
  direct message with the bot; their direct messages wait until a direct room exists;
- a message to a meeting (``meeting:12``) goes to the meeting's room as it is when sent,
  and waits while there is none (a Thing's room is made after the Thing is called);
- a message with a ``pin_key`` is one version of a message kept pinned in its room: the
  first version sent is pinned (its event recorded in MatrixState ``pinned:<key>``),
  later ones edit it, and a version overtaken by a newer one before it went out is
  skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.scheduling import MeetingKind
from harmony_matrix.i18n import _, member_words
from harmony_matrix.services.announcements import meeting_of_destination
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.membership import GENERAL_SECRETARY, member_ids, office_holders
from harmony_matrix.services.records import direct_message, enqueue
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyMembership,
    DirectRoom,
    MatrixState,
    Meeting,
    MeetingAssembly,
    OutboxMessage,
    Person,
    Role,
)

log = logging.getLogger(__name__)

#: Reports about undelivered messages: a report that cannot be delivered is not reported.
REPORT_PREFIX = "undelivered:"
#: A member who blocks invitations is asked again (their direct room is tried again) daily.
BLOCKED_RETRY = timedelta(days=1)
#: A meeting's message waiting for the meeting's room looks again this often...
ROOM_WAIT_POLL = timedelta(seconds=30)
#: ...and is given up (and reported) when the meeting has had no room this long.
ROOM_WAIT_LIMIT = timedelta(days=7)
#: Why such a message waits (its ``last_error``).
WAITING_FOR_ROOM = "waiting for the meeting's room"
#: MatrixState names of pinned messages: this prefix and the message's ``pin_key``.
PINNED_PREFIX = "pinned:"
#: The longest MatrixState name (the column's size).
STATE_NAME_LIMIT = 64


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``first`` doubled after each failure, at most
    ``longest``, each delay moved at random by up to ``jitter`` of itself; given up
    after ``attempts`` failures (about 12 hours with the defaults)."""

    first: timedelta = timedelta(seconds=10)
    longest: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    attempts: int = 20

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> timedelta:
        """The wait after the ``failures``-th failure (1 = the first)."""
        base = min(self.first * (2 ** max(failures - 1, 0)), self.longest)
        return base * (1 + self.jitter * (2 * rng() - 1))


class Outcome(Enum):
    RETRY = "retry"
    GAVE_UP = "gave_up"


@dataclass(frozen=True)
class Pending:
    """A queued message as the sender needs it."""

    id: int
    destination: str
    is_direct: bool
    language: str
    #: The text (for a ballot message, without its link; never log it anyway).
    body: str = field(repr=False)
    html: str | None = field(repr=False)
    notice: bool
    reply_to_event_id: str | None
    mention: str | None
    voting_right_id: int | None
    attempts: int
    created_at: datetime
    transaction_id: str
    #: One version of a message kept pinned in its room (see ``OutboxMessage.pin_key``).
    pin_key: str | None = None
    #: A file, sent as ``m.file`` with ``body`` as its name.
    attachment: bytes | None = field(default=None, repr=False)
    attachment_type: str | None = None
    #: Set when an attempt may have reached the homeserver (see :func:`attempt_started`).
    first_attempt_at: datetime | None = None
    #: A secretary's sign-in message: its link is minted when it is sent, like a ballot's
    #: (services/paper_sign_in.py).
    paper_sign_in_id: int | None = None

    @property
    def is_ballot(self) -> bool:
        return self.voting_right_id is not None

    @property
    def is_sign_in(self) -> bool:
        return self.paper_sign_in_id is not None

    @property
    def carries_link(self) -> bool:
        """Its text gets a secret link when it is sent: never log it or its errors."""
        return self.is_ballot or self.is_sign_in

    @property
    def meeting_id(self) -> int | None:
        """The meeting whose room the message is for (``meeting:12``), if it is one's."""
        return None if self.is_direct else meeting_of_destination(self.destination)


def transaction_id(message: OutboxMessage) -> str:
    """The Matrix transaction ID of a (non-ballot) message: the same for every attempt, so
    the homeserver returns the first event instead of sending a second; unique to the row
    (not only its ID, which a restored or reset database may give to another message)."""
    digest = hashlib.sha256(
        f"{message.dedupe_key}\0{message.created_at.isoformat()}".encode()
    ).hexdigest()
    return f"harmony-outbox-{message.id}-{digest[:16]}"


def pending_of(message: OutboxMessage) -> Pending:
    """The sender's view of a queued row (also of one just committed by the caller)."""
    return Pending(
        id=message.id,
        destination=message.destination,
        is_direct=message.is_direct,
        language=message.language,
        body=message.body,
        html=message.html,
        notice=message.notice,
        reply_to_event_id=message.reply_to_event_id,
        mention=message.mention,
        voting_right_id=message.voting_right_id,
        attempts=message.attempts or 0,
        created_at=message.created_at,
        transaction_id=transaction_id(message),
        pin_key=message.pin_key,
        attachment=message.attachment,
        attachment_type=message.attachment_type,
        first_attempt_at=message.first_attempt_at,
        paper_sign_in_id=message.paper_sign_in_id,
    )


def _unsettled() -> ColumnElement[bool]:
    return and_(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))


async def due_messages(ctx: ServiceContext, limit: int = 100) -> list[Pending]:
    """Messages to send now, oldest first."""
    now = ctx.now()
    async with ctx.transaction() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(
                _unsettled(),
                or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        return [pending_of(row) for row in rows]


async def next_due_at(ctx: ServiceContext) -> datetime | None:
    """When the earliest message that waits for a retry becomes due (None: none waits)."""
    async with ctx.transaction() as session:
        return await session.scalar(
            select(OutboxMessage.next_attempt_at)
            .where(_unsettled(), OutboxMessage.next_attempt_at.is_not(None))
            .order_by(OutboxMessage.next_attempt_at)
            .limit(1)
        )


async def pending(ctx: ServiceContext, outbox_id: int) -> Pending | None:
    """One message, if it is still to be sent."""
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id)
        if message is None or message.sent_at is not None or message.failed_at is not None:
            return None
        return pending_of(message)


def needs_lookup(created_at: datetime, now: datetime) -> bool:
    """A message queued so long ago that the homeserver may have forgotten the transaction
    ID of an earlier attempt (Synapse keeps them 24 hours): look in the room before
    sending. Its age since it was queued bounds the age of any attempt, so no attempt
    needs recording before a send (which would cost a commit on every reply's way)."""
    return now - created_at > timedelta(hours=23)


async def mark_delivered(
    ctx: ServiceContext, outbox_id: int, event_id: str, *, pinned_in: str | None = None
) -> None:
    """The homeserver accepted the message as ``event_id``. (Ballot messages are confirmed
    with ``ballot_delivery.confirm_ballot_message``; then :func:`record_event_id`.)

    ``pinned_in``: the message is the first version of its ``pin_key``, pinned in that
    room; later versions edit ``event_id`` (recorded in the same transaction, so a crash
    cannot leave a delivered first version that later ones do not know)."""
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        if message is None or message.voting_right_id is not None:
            raise ValueError("ballot messages are confirmed with confirm_ballot_message")
        if message.paper_sign_in_id is not None:
            raise ValueError("sign-in messages are confirmed with confirm_sign_in_message")
        if message.sent_at is not None:
            return
        message.sent_at = ctx.now()
        message.event_id = event_id
        message.attempts = (message.attempts or 0) + 1
        if message.first_attempt_at is None:
            message.first_attempt_at = message.sent_at
        message.next_attempt_at = None
        if pinned_in is not None:
            if message.pin_key is None:
                raise ValueError("only a message with a pin_key is pinned")
            await _set_pinned(session, message.pin_key, PinnedMessage(pinned_in, event_id))


async def attempt_started(ctx: ServiceContext, outbox_id: int) -> None:
    """Record that a message is about to be sent (for the first version of a pinned
    message: if it is overtaken by a newer version after a crash, the bot then knows to
    look for it in the room, since it may be the one to edit). Other messages need no
    such record (see :func:`needs_lookup`)."""
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        if message is not None and message.first_attempt_at is None:
            message.first_attempt_at = ctx.now()


async def record_event_id(ctx: ServiceContext, outbox_id: int, event_id: str) -> None:
    """The event ID of a confirmed ballot message (for the record; it holds no link)."""
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        if message is not None and message.sent_at is not None and message.event_id is None:
            message.event_id = event_id


async def attempt_failed(
    ctx: ServiceContext,
    outbox_id: int,
    error: str,
    *,
    retry_after: timedelta | None = None,
    permanent: bool = False,
    counts: bool = True,
    policy: RetryPolicy = RetryPolicy(),  # frozen: one shared value is fine
    rng: Callable[[], float] = random.random,
) -> Outcome:
    """An attempt failed with ``error`` (an operator's text: a Matrix error code and
    message, never a message's body). Retried later, or given up and reported.

    ``retry_after``: the homeserver's own wish (429), which wins over the backoff.
    ``counts=False``: a failure that says nothing about the recipient (rate limited).
    """
    now = ctx.now()
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        assert message is not None
        if message.sent_at is not None or message.failed_at is not None:
            return Outcome.GAVE_UP if message.failed_at is not None else Outcome.RETRY
        if counts:
            message.attempts = (message.attempts or 0) + 1
        message.last_error = error[:2000]
        if message.first_attempt_at is None:
            message.first_attempt_at = now
        if permanent or message.attempts >= policy.attempts:
            await _give_up(session, ctx, message, error)
            return Outcome.GAVE_UP
        wait = policy.delay(max(message.attempts, 1), rng)
        if retry_after is not None:
            wait = max(retry_after, timedelta(0))
        message.next_attempt_at = now + wait
        return Outcome.RETRY


async def give_up(ctx: ServiceContext, outbox_id: int, error: str, *, report: bool = True) -> None:
    """Stop trying to send a message (e.g. its ballot closed meanwhile)."""
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        if message is None or message.sent_at is not None or message.failed_at is not None:
            return
        message.last_error = error[:2000]
        if report:
            await _give_up(session, ctx, message, error)
        else:
            message.failed_at = ctx.now()
            message.next_attempt_at = None


async def _give_up(
    session: AsyncSession, ctx: ServiceContext, message: OutboxMessage, error: str
) -> None:
    now = ctx.now()
    message.failed_at = now
    message.next_attempt_at = None
    log.warning(
        "Gave up outbox message %s to %s after %s attempts: %s",
        message.id,
        message.destination,
        message.attempts,
        error,
    )
    if not message.is_direct or message.dedupe_key.startswith(REPORT_PREFIX):
        return
    person = await session.scalar(select(Person).where(Person.matrix_id == message.destination))
    if person is None:
        return
    for secretary in await secretaries_of(session, person, now):
        await direct_message(
            session,
            now,
            secretary,
            message=_(
                "I could not deliver a direct message to %(name)s (%(matrix_id)s), so I have "
                "stopped trying. Please reach them another way and ask them to open a direct "
                "message with me. The error was: %(error)s",
                name=member_words(person.display_name),
                matrix_id=person.matrix_id,
                error=error,
            ),
            dedupe_key=f"{REPORT_PREFIX}{message.id}:{secretary.id}",
        )


async def assemblies_of(session: AsyncSession, person: Person, at: datetime) -> list[Assembly]:
    """The assemblies the person belongs to now (listed or by an automatic rule)."""
    found = []
    for assembly in await session.scalars(select(Assembly).order_by(Assembly.id)):
        if person.id in await member_ids(session, assembly, at):
            found.append(assembly)
    return found


async def secretaries_of(session: AsyncSession, person: Person, at: datetime) -> list[Person]:
    """Who hears about a member the bot cannot reach: the secretaries of their
    assemblies, else the General Secretary; never the member themselves."""
    assembly_ids = [a.id for a in await assemblies_of(session, person, at)]
    secretaries: list[Person] = []
    if assembly_ids:
        secretaries = list(
            await session.scalars(
                select(Person)
                .join(AssemblyMembership, AssemblyMembership.person_id == Person.id)
                .where(
                    AssemblyMembership.assembly_id.in_(assembly_ids),
                    AssemblyMembership.role == Role.SECRETARY,
                    AssemblyMembership.since <= at,
                    or_(AssemblyMembership.until.is_(None), AssemblyMembership.until > at),
                )
                .distinct()
                .order_by(Person.id)
            )
        )
    if not [s for s in secretaries if s.id != person.id]:
        secretaries = await office_holders(session, GENERAL_SECRETARY, at)
    return [s for s in secretaries if s.id != person.id]


async def invites_blocked(ctx: ServiceContext, matrix_id: str, bot_id: str) -> int:
    """The member refuses the bot's invitation (``M_INVITE_BLOCKED``): their direct
    messages wait (a direct room is tried again daily, or at once when they open one),
    and they are told once in each of their assemblies' rooms to open a direct message
    with the bot. Returns how many such notices were newly queued."""
    now = ctx.now()
    async with ctx.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(
                _unsettled(),
                OutboxMessage.is_direct.is_(True),
                OutboxMessage.destination == matrix_id,
            )
            .values(next_attempt_at=now + BLOCKED_RETRY, last_error="M_INVITE_BLOCKED")
        )
        person = await session.scalar(select(Person).where(Person.matrix_id == matrix_id))
        if person is None:
            return 0
        queued = 0
        for assembly in await assemblies_of(session, person, now):
            if assembly.matrix_room_id is None:
                continue
            queued += await enqueue(
                session,
                now,
                destination=assembly.matrix_room_id,
                is_direct=False,
                language=person.language,
                message=_(
                    "%(name)s, I have messages for you, but your account does not accept my "
                    "invitations. Please start a direct message with me (%(bot)s) so that "
                    "they can reach you.",
                    name=member_words(person.display_name),
                    bot=bot_id,
                ),
                dedupe_key=f"open-dm:{assembly.id}:{person.id}",
                mention=person.matrix_id,
            )
        return queued


async def room_of_meeting(ctx: ServiceContext, meeting_id: int) -> str | None:
    """The room a meeting's messages go to now: its own (a Thing's, made by the bot after
    the Thing is called), else, for an Assembly Moot, its assembly's room. None while
    there is none (and for a meeting that does not exist)."""
    async with ctx.transaction() as session:
        meeting = await session.get(Meeting, meeting_id)
        if meeting is None:
            return None
        if meeting.matrix_room_id is not None or meeting.kind is not MeetingKind.ASSEMBLY_MOOT:
            return meeting.matrix_room_id
        return await session.scalar(
            select(Assembly.matrix_room_id)
            .join(MeetingAssembly, MeetingAssembly.assembly_id == Assembly.id)
            .where(MeetingAssembly.meeting_id == meeting_id)
            .order_by(Assembly.id)
            .limit(1)
        )


async def wait_for_room(
    ctx: ServiceContext,
    outbox_id: int,
    *,
    poll: timedelta = ROOM_WAIT_POLL,
    limit: timedelta = ROOM_WAIT_LIMIT,
) -> Outcome:
    """The message's meeting has no room yet: look again after ``poll``, without counting
    a failed attempt (nothing failed). Given up, and reported, once it has waited
    ``limit`` since it was queued."""
    now = ctx.now()
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        if message is None or message.failed_at is not None:
            return Outcome.GAVE_UP
        if message.sent_at is not None:
            return Outcome.RETRY
        message.last_error = WAITING_FOR_ROOM
        if now - message.created_at >= limit:
            await _give_up(session, ctx, message, f"{WAITING_FOR_ROOM} since {message.created_at}")
            return Outcome.GAVE_UP
        message.next_attempt_at = now + poll
        return Outcome.RETRY


async def let_earlier_go_first(ctx: ServiceContext, outbox_id: int) -> bool:
    """Keep a meeting's messages in the order they were queued when its room appears.

    If earlier messages to the same meeting still wait for the room, they are made due
    now, and this one is put back (due now too, not a failed attempt): True, do not send
    it yet; the next pass sends them all in order. (An earlier message that fails once
    the room exists no longer waits for the room, and holds nothing back.)"""
    now = ctx.now()
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        if message is None or message.sent_at is not None or message.failed_at is not None:
            return False
        waiting = list(
            await session.scalars(
                select(OutboxMessage).where(
                    _unsettled(),
                    OutboxMessage.destination == message.destination,
                    OutboxMessage.id < message.id,
                    OutboxMessage.last_error == WAITING_FOR_ROOM,
                )
            )
        )
        if not waiting:
            return False
        for earlier in waiting:
            if earlier.next_attempt_at is not None and earlier.next_attempt_at > now:
                earlier.next_attempt_at = now
        message.next_attempt_at = now
        return True


@dataclass(frozen=True)
class PinnedMessage:
    """The event that holds the pinned message of a ``pin_key``, and its room."""

    room_id: str
    event_id: str


def pin_state_name(pin_key: str) -> str:
    """The MatrixState name under which a pinned message is recorded: ``pinned:<key>``
    (a key too long for the column is replaced by its hash)."""
    name = f"{PINNED_PREFIX}{pin_key}"
    if len(name) <= STATE_NAME_LIMIT:
        return name
    return f"{PINNED_PREFIX}{hashlib.sha256(pin_key.encode()).hexdigest()}"[:STATE_NAME_LIMIT]


async def pinned_message(ctx: ServiceContext, pin_key: str) -> PinnedMessage | None:
    """The event the versions of ``pin_key`` edit, if one was sent and recorded."""
    async with ctx.transaction() as session:
        row = await session.get(MatrixState, pin_state_name(pin_key))
        if row is None:
            return None
        value = json.loads(row.value)
        return PinnedMessage(room_id=value["room_id"], event_id=value["event_id"])


async def _set_pinned(session: AsyncSession, pin_key: str, pinned: PinnedMessage) -> None:
    # The room is kept with the event: a message in another room (the meeting moved to a
    # new room) cannot be edited, so a version there starts a new pinned message.
    value = json.dumps({"room_id": pinned.room_id, "event_id": pinned.event_id})
    name = pin_state_name(pin_key)
    row = await session.get(MatrixState, name, with_for_update=True)
    if row is None:
        session.add(MatrixState(name=name, value=value))
    else:
        row.value = value


async def newer_version(ctx: ServiceContext, message: Pending) -> int | None:
    """The newest version queued after this one of the same pinned message (not given
    up), if there is one: this version then need not be sent."""
    if message.pin_key is None:
        return None
    async with ctx.transaction() as session:
        return await session.scalar(
            select(func.max(OutboxMessage.id)).where(
                OutboxMessage.pin_key == message.pin_key,
                OutboxMessage.id > message.id,
                OutboxMessage.failed_at.is_(None),
            )
        )


async def mark_superseded(ctx: ServiceContext, outbox_id: int, newer_id: int) -> None:
    """A version of a pinned message overtaken by a newer one before it was sent: settled
    as delivered without being sent (and without an event)."""
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id, with_for_update=True)
        if message is None or message.sent_at is not None or message.failed_at is not None:
            return
        message.sent_at = ctx.now()
        message.next_attempt_at = None
        message.last_error = f"not sent: superseded by outbox message {newer_id}"


async def direct_room(ctx: ServiceContext, matrix_id: str) -> str | None:
    async with ctx.transaction() as session:
        found = await session.get(DirectRoom, matrix_id)
        return found.room_id if found else None


async def record_direct_room(ctx: ServiceContext, matrix_id: str, room_id: str) -> int:
    """``room_id`` is now the person's direct room (replacing one that no longer works);
    their waiting direct messages become due. Returns how many were waiting."""
    now = ctx.now()
    async with ctx.transaction() as session:
        found = await session.get(DirectRoom, matrix_id, with_for_update=True)
        if found is None:
            session.add(DirectRoom(matrix_id=matrix_id, room_id=room_id, created_at=now))
        elif found.room_id != room_id:
            found.room_id = room_id
            found.created_at = now
        released = await session.execute(
            update(OutboxMessage)
            .where(
                _unsettled(),
                OutboxMessage.is_direct.is_(True),
                OutboxMessage.destination == matrix_id,
                OutboxMessage.next_attempt_at.is_not(None),
            )
            .values(next_attempt_at=now)
        )
        return int(released.rowcount or 0)  # type: ignore[attr-defined]


async def forget_direct_room(ctx: ServiceContext, matrix_id: str, room_id: str) -> None:
    """The room no longer reaches the person (they left and refused to come back)."""
    async with ctx.transaction() as session:
        found = await session.get(DirectRoom, matrix_id, with_for_update=True)
        if found is not None and found.room_id == room_id:
            await session.delete(found)


async def queue_reply(
    session: AsyncSession,
    at: datetime,
    *,
    room_id: str,
    to_event_id: str,
    sender: str,
    language: str,
    body: str,
    html: str | None,
) -> Pending:
    """Queue the bot's answer to a command: a notice replying to it that pings its sender.

    The text is already rendered (the reply was built in the sender's language, with any
    text they wrote escaped in the HTML). Queued in the caller's transaction, with the
    record that the command was handled (which makes it the command's only answer), so it
    goes out exactly once. Returns the queued message, for the sender to send at once
    when the transaction has committed.
    """
    message = OutboxMessage(
        created_at=at,
        destination=room_id,
        is_direct=False,
        language=language,
        body=body,
        html=html,
        dedupe_key=f"reply:{to_event_id}",
        sent_at=None,
        notice=True,
        reply_to_event_id=to_event_id,
        mention=sender,
        attempts=0,
    )
    session.add(message)
    await session.flush()
    return pending_of(message)
