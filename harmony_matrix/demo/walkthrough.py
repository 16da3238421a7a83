"""``harmony demo --walkthrough``: scripted members hold a whole Assembly Moot.

Seven people of the Operational Working Group log in to the demo's homeserver as
Element would (their own devices, end-to-end encrypted) and type the commands of a
Moot in the assembly's room: the call, the facts and materials, the date, the notice
to every eligible member, the opening, the roll call, suggestions, options and the
vote. Each votes through the link in their direct message, on the web companion's real
pages. The bot and the companion are the demo's own, running beside the script; the
terminal shows each step and the bot's answer, and a person logged in to the same
room in a Matrix client sees it all happen.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from nio import Event, RoomMessageNotice, RoomMessageText
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from harmony_matrix.constitution.process import Phase
from harmony_matrix.demo import demo_id
from harmony_matrix.demo.member import MatrixScriptError, ScriptedMember, replied_to
from harmony_matrix.demo.web_voter import VotingError, WebVoter
from harmony_matrix.i18n import Message, _, _n, join, verbatim
from harmony_matrix.services import delivery, records
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.storage.models import Assembly, Meeting, OutboxMessage, Person

Say = Callable[[Message], None]

ASSEMBLY = "operational-working-group"
QUESTION = "Should the party's website move to a co-operative host?"
CO_OP = "Move the website to a co-operative host"
STAY = "Stay with the current host and upgrade"
#: Who plays, in the order they answer the roll call: the assembly's secretary, its
#: moderator and five members; seven present, above the assembly's quorum of six.
SECRETARY = "@ana:harmony.uk"
PLAYERS = (
    SECRETARY,
    "@bryn:harmony.uk",
    "@kai.hughes:harmony.uk",
    "@lena.patel:matrix.org",
    "@mo.okafor:harmony.uk",
    "@owen.davies:harmony.uk",
    "@quinn.reid:harmony.uk",
)
#: Each player's scores (option 1, option 2), in PLAYERS' order: a clear winner.
SCORES = ((5, 1), (4, 2), (5, 0), (1, 5), (3, 2), (4, 1), (5, 3))
#: How long one step may take: the notice goes to every eligible member of the
#: assembly (about forty direct messages, each with its calendar file).
STEP_WITHIN = 120.0
REPLY_WITHIN = 60.0
#: The lines of a bot's answer shown; the rest is in the room.
SHOWN_LINES = 3


class WalkthroughError(Exception):
    """A step did not happen as scripted; the message says which and why."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.render("en"))
        self.message = message


@dataclass(frozen=True)
class WalkthroughResult:
    meeting_ref: str
    announcement: str
    results_url: str


@dataclass
class Player:
    member: ScriptedMember
    name: str
    language: str
    #: Where this run's events begin in ``member.events``: a client's first sync brings
    #: some history, an earlier walkthrough's announcements and ballot links among it.
    since: int = 0


class Walkthrough:
    def __init__(
        self, ctx: ServiceContext, web_url: str, say: Say, server_name: str, bot_id: str
    ) -> None:
        self.ctx = ctx
        self.web_url = web_url
        self.say = say
        self.server_name = server_name
        self.bot_id = bot_id
        self.players: list[Player] = []
        self.room_id = ""
        self.step = 0
        self.steps = 14
        self.meeting_id = 0
        self.outbox_before = 0

    # The script ------------------------------------------------------------------

    async def run(self, homeserver: str, logins: dict[str, str], store: Path) -> WalkthroughResult:
        self._step(_("The members sign in and join the Operational Working Group's room."))
        self.outbox_before = await self._newest(OutboxMessage.id)
        await self._sign_in(homeserver, logins, store)
        ana, bryn, kai, lena, mo, *_others = self.players
        self._step(_("%(name)s, the secretary, calls a Moot.", name=ana.name))
        earlier = await self._newest(Meeting.id)
        await self._command(ana, f"!moot call {QUESTION}")
        # An ID in every command: an earlier walkthrough, stopped half-way, may have left
        # a meeting under way in this room too.
        ref = await self._meeting_ref(after=earlier)
        self._step(_("She collects the facts and prepares the materials."))
        await self._command(ana, f"!prepare {ref} facts Quotes from three hosts and our costs")
        await self._command(ana, f"!prepare {ref} materials A table comparing the hosts")
        self._step(_("She sets the date, the place and how to take part."))
        day, hour = self._start_time()
        await self._command(
            ana,
            f'!schedule {ref} {day} {hour} --place "Community Hall, 1 High St" '
            '--online https://meet.example/owg --access "Step-free, captions, hearing loop"',
            then=lambda meeting: meeting.starts_at is not None,
        )
        self._step(_("She tells every eligible member, by direct message."))
        await self._command(ana, f"!notify {ref}")
        await self._delivered()
        self._step(_("The meeting opens."))
        await self._command(ana, f"!start {ref}", then=_in(Phase.DISCUSSION))
        self._step(_("Roll call: each member says they are here."))
        for player in self.players:
            await self._command(player, f"!here {ref}", show=player is self.players[-1])
        await self._command(kai, f"!quorum {ref}")
        self._step(_("Discussion: members make suggestions, which are written down."))
        await self._command(lena, f"!suggest {ref} {CO_OP}")
        await self._command(mo, f"!suggest {ref} {STAY}")
        self._step(_("Debate: the secretary collates the suggestions into options."))
        await self._command(ana, f"!debate {ref}", then=_in(Phase.DEBATE))
        await self._command(ana, f"!option add {ref} {CO_OP}")
        await self._command(ana, f"!option add {ref} {STAY}")
        self._step(_("The secret STAR ballot opens."))
        await self._command(ana, f"!vote {ref}", then=_in(Phase.VOTE))
        await self._command(ana, f"!ballot open {ref} --closes 1h")
        self._step(_("Each member votes on the web page linked from their direct message."))
        await self._everyone_votes()
        await self._command(bryn, f"!ballot status {ref}")
        self._step(_("The secretary closes the ballot; the bot counts it."))
        since = len(ana.member.events)
        await self._command(ana, f"!ballot close {ref}", then=_in(Phase.CONSENSUS))
        # The result and the record of consensus are announced in the room; both name
        # the winning option, in the words it was given.
        announcement, seen = await self._announced(ana, since, naming=(ref, CO_OP))
        self._step(_("The room is told the consensus."))
        await self._announced(ana, seen + 1, naming=(CO_OP,))
        self._step(_("Done: the result is on the web."))
        return WalkthroughResult(ref, announcement, f"{self.web_url}/meetings/{ref}/results")

    # Steps -------------------------------------------------------------------------

    def _step(self, what: Message) -> None:
        self.step += 1
        self.say(_("[%(step)s/%(steps)s] %(what)s", step=self.step, steps=self.steps, what=what))

    async def _sign_in(self, homeserver: str, logins: dict[str, str], store: Path) -> None:
        async with self.ctx.transaction() as session:
            people = {
                person.matrix_id: person
                for person in await session.scalars(
                    select(Person).where(Person.matrix_id.in_([self._id(p) for p in PLAYERS]))
                )
            }
        self.room_id = room_id = await self._assembly_room()
        for played in PLAYERS:
            user_id = self._id(played)
            person = people[user_id]
            member = await ScriptedMember.log_in(
                homeserver,
                user_id,
                logins[user_id],
                store / user_id[1:].split(":", 1)[0],
                device_name="Harmony walkthrough",
            )
            member.accept_invites_from.add(self.bot_id)
            self.players.append(Player(member, person.display_name, person.language))
            if room_id not in member.client.rooms:
                await member.wait_for_invite(room_id, within=STEP_WITHIN)
                await member.join(room_id, within=STEP_WITHIN)
            said = _("%(name)s (%(user)s) is in the room.", name=person.display_name, user=user_id)
            self.say(_indented(said))
        # The bot's direct room with each player, opened before anything is sent there
        # that they must read: an encrypted message is readable only by the devices in
        # the room when it was sent.
        async with self.ctx.transaction() as session:
            for user_id, person in people.items():
                await records.direct_message(
                    session,
                    self.ctx.now(),
                    person,
                    message=_(
                        "Hello from Harmony. Your meeting notices and ballot links come here."
                    ),
                    dedupe_key=f"walkthrough-hello:{user_id}",
                )
        await self._delivered()
        for player in self.players:
            await self._in_direct_room(player)
            player.since = len(player.member.events)

    async def _assembly_room(self) -> str:
        """The assembly's room; on a first run the bot makes it just after it starts."""
        deadline = time.monotonic() + STEP_WITHIN
        while True:
            async with self.ctx.transaction() as session:
                room_id = await session.scalar(
                    select(Assembly.matrix_room_id).where(Assembly.slug == ASSEMBLY)
                )
            if room_id:
                return room_id
            if time.monotonic() > deadline:
                raise WalkthroughError(_("The bot did not make the assembly's room in time."))
            await asyncio.sleep(0.5)

    async def _in_direct_room(self, player: Player) -> None:
        """Wait until the player has joined the direct room the bot opened with them."""
        deadline = time.monotonic() + STEP_WITHIN
        while True:
            room_id = await delivery.direct_room(self.ctx, player.member.user_id)
            if room_id and room_id in player.member.client.rooms:
                return
            if time.monotonic() > deadline:
                raise WalkthroughError(
                    _("%(name)s has no direct room with the bot.", name=player.name)
                )
            await player.member.sync(timeout_ms=500)

    async def _command(
        self,
        player: Player,
        text: str,
        *,
        show: bool = True,
        then: Callable[[Meeting], bool] | None = None,
    ) -> str:
        """Type ``text`` in the room as ``player`` and show the bot's answer; with
        ``then``, check in the record that the command did what it is for (the answer
        is in the player's language, the record is not)."""
        self.say(_indented(_("%(name)s: %(text)s", name=player.name, text=text)))
        event_id = await player.member.send_text(self.room_id, text)
        try:
            reply = await player.member.wait_for(
                lambda e: isinstance(e, RoomMessageNotice) and replied_to(e) == event_id,
                room_id=self.room_id,
                within=REPLY_WITHIN,
            )
        except MatrixScriptError as error:
            raise WalkthroughError(
                _("The bot did not answer %(command)s.", command=text.split()[0])
            ) from error
        body = str(getattr(reply, "body", ""))
        if show:
            self._show_bot(body)
        if then is not None and not then(await self._meeting()):
            answer = body.splitlines()[0] if body else ""
            raise WalkthroughError(
                _(
                    "%(command)s did not work. The bot answered: %(answer)s",
                    command=text.split()[0],
                    answer=answer,
                )
            )
        return body

    def _show_bot(self, body: str) -> None:
        lines = [line for line in body.splitlines() if line.strip()]
        for index, line in enumerate(lines[:SHOWN_LINES]):
            if index == 0:
                self.say(_indented(_("Harmony: %(line)s", line=line), 2))
            else:
                self.say(_indented(verbatim(line), 4))
        if len(lines) > SHOWN_LINES:
            more = len(lines) - SHOWN_LINES
            self.say(
                _indented(_n("(and %(count)s more line)", "(and %(count)s more lines)", more), 4)
            )

    async def _announced(
        self, player: Player, since: int, *, naming: tuple[str, ...]
    ) -> tuple[str, int]:
        """The bot's first announcement in the room from ``since`` on whose text has
        every one of ``naming`` (``m.text``, where its answers are notices; not an edit
        of the meeting's pinned state, which lists the options too), and where it is in
        the player's events."""
        member = player.member

        def matches(event: Event) -> bool:
            relation = event.source.get("content", {}).get("m.relates_to", {})
            return (
                isinstance(event, RoomMessageText)
                and event.sender == self.bot_id
                and relation.get("rel_type") != "m.replace"
                and all(text in event.body for text in naming)
            )

        try:
            event = await member.wait_for(
                matches, room_id=self.room_id, within=STEP_WITHIN, since=since
            )
        except MatrixScriptError as error:
            raise WalkthroughError(_("The room was not told the result.")) from error
        body = str(getattr(event, "body", ""))
        self._show_bot(body)
        index = next(i for i, (_room, seen) in enumerate(member.events) if seen is event)
        return body, index

    async def _meeting(self) -> Meeting:
        async with self.ctx.transaction() as session:
            meeting = await session.get(Meeting, self.meeting_id)
            if meeting is None:
                raise WalkthroughError(_("The Moot was not called."))
            session.expunge(meeting)
            return meeting

    async def _newest(self, column: InstrumentedAttribute[int]) -> int:
        async with self.ctx.transaction() as session:
            return int(await session.scalar(select(func.max(column))) or 0)

    async def _meeting_ref(self, *, after: int) -> str:
        """The meeting the call made: newer than ``after``, with the walkthrough's own
        question (an earlier run's, left half-way, must not be taken for it)."""
        async with self.ctx.transaction() as session:
            found = await session.scalar(
                select(Meeting.id)
                .where(Meeting.question == QUESTION, Meeting.id > after)
                .order_by(Meeting.id.desc())
                .limit(1)
            )
        if found is None:
            raise WalkthroughError(_("The Moot was not called."))
        self.meeting_id = found
        return meeting_ref(found)

    def _start_time(self) -> tuple[str, str]:
        """The next whole minute at least half the opening margin away: announced in
        the future, yet open at once (a meeting may begin that margin early)."""
        margin = self.ctx.rules.opening_margin_minutes
        starts = self.ctx.now() + timedelta(minutes=max(1, margin // 2))
        starts = _next_minute(starts).astimezone(ZoneInfo(self.ctx.party.timezone))
        return starts.strftime("%Y-%m-%d"), starts.strftime("%H:%M")

    async def _delivered(self) -> None:
        """Wait, with progress, until the bot has sent everything queued so far."""
        deadline = time.monotonic() + STEP_WITHIN
        last_said = 0
        while (waiting := await self._waiting()) > 0:
            if time.monotonic() > deadline:
                raise WalkthroughError(_("The bot's messages were not delivered in time."))
            if waiting != last_said:
                sending = _n(
                    "The bot is sending %(count)s message...",
                    "The bot is sending %(count)s messages...",
                    waiting,
                )
                self.say(_indented(sending))
                last_said = waiting
            await asyncio.sleep(1)

    async def _waiting(self) -> int:
        """Messages queued since the walkthrough began and not yet sent (one parked
        earlier, for a member who refuses invitations, is not this run's to wait for)."""
        async with self.ctx.transaction() as session:
            found = await session.scalar(
                select(func.count(OutboxMessage.id)).where(
                    OutboxMessage.id > self.outbox_before,
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.failed_at.is_(None),
                )
            )
        return int(found or 0)

    async def _everyone_votes(self) -> None:
        await self._delivered()
        for player, (first, second) in zip(self.players, SCORES, strict=True):
            link = await self._ballot_link(player)
            voter = WebVoter(self.web_url, player.language)
            try:
                await voter.vote(link, {1: first, 2: second})
            except VotingError as error:
                raise WalkthroughError(
                    _("Voting on the web did not work: %(reason)s", reason=str(error))
                ) from error
            # The scores stay off the screen: the ballot is secret, even in a demo.
            self.say(_indented(_("%(name)s has voted and has a receipt code.", name=player.name)))

    async def _ballot_link(self, player: Player) -> str:
        """The link in the player's latest ballot message, read in their direct room."""

        def is_ballot(event: Event) -> bool:
            return isinstance(event, RoomMessageText) and "/vote/" in event.body

        try:
            await player.member.wait_for(is_ballot, within=STEP_WITHIN, since=player.since)
        except MatrixScriptError as error:
            raise WalkthroughError(
                _("No ballot link came to %(name)s.", name=player.name)
            ) from error
        new = player.member.events[player.since :]
        latest = [event for _room, event in new if is_ballot(event)]
        body = str(getattr(latest[-1], "body", ""))
        word = next(w for w in body.split() if "/vote/" in w)
        return word.rsplit("/vote/", 1)[1]

    def _id(self, matrix_id: str) -> str:
        return demo_id(matrix_id, self.server_name)

    async def close(self) -> None:
        for player in self.players:
            await player.member.close()


def _in(phase: Phase) -> Callable[[Meeting], bool]:
    return lambda meeting: meeting.phase == phase


def _next_minute(moment: datetime) -> datetime:
    seconds = math.ceil(moment.timestamp() / 60) * 60
    return datetime.fromtimestamp(seconds, tz=moment.tzinfo)


def _indented(message: Message, level: int = 1) -> Message:
    return join([verbatim("  " * level), message], separator="")
