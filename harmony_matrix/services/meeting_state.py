"""The meeting's state, as one message in its room that is kept up to date.

Rather than a message for every person who answers the roll call and every suggestion,
the room has one pinned message saying where the meeting is: the phase, when and where,
the quorum, the suggestions, the options, and while the ballot is open how many have
voted (never who). Each change queues a new version under the same ``pin_key``; the
sender pins the first and edits it with the later ones (services/delivery.py).

It is plain text that reads well aloud (screen readers): whole sentences, short lines,
no tables, and what members wrote shown as written, never as markup, in a bidirectional
isolate of its own (``member_words``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.process import Phase, phase_state
from harmony_matrix.constitution.scheduling import kind_name
from harmony_matrix.i18n import (
    Message,
    _,
    _n,
    format_datetime,
    isolated,
    join,
    localised,
    member_words,
    verbatim,
)
from harmony_matrix.services.announcements import announce
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_by_ref, meeting_ref
from harmony_matrix.storage.models import (
    BallotRound,
    BallotRoundStatus,
    ConsensusRecord,
    Meeting,
    OutboxMessage,
    SealedBallot,
    Suggestion,
    VotingRight,
)

if TYPE_CHECKING:
    from harmony_matrix.services.roll_call import QuorumStatus

#: A suggestion or option longer than this is shortened in the state (it is shown in
#: full where it was made): the state must stay one readable message, well under the
#: 64 KiB a Matrix event may hold.
LONGEST_ITEM = 300


def state_pin_key(meeting_id: int) -> str:
    """The ``pin_key`` of a meeting's state: every version replaces the one before."""
    return f"meeting-state:{meeting_id}"


async def queue_state(session: AsyncSession, ctx: ServiceContext, meeting: Meeting) -> bool:
    """Queue a new version of the meeting's state if it differs from the last one
    queued; False when nothing changed (a retried command queues nothing).

    Nothing is shown before the meeting opens: the notice says all there is to say.
    Casting a ballot never calls this (docs/secret-ballot.md: nothing about a cast
    ballot carries a time); the turnout shown is the one at the last other change, or
    at the last :func:`refresh_state`.
    """
    if meeting.phase is Phase.PLANNING:
        return False
    key = state_pin_key(meeting.id)
    latest = (
        await session.execute(
            select(OutboxMessage.body, OutboxMessage.dedupe_key)
            .where(OutboxMessage.pin_key == key)
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
    ).first()
    if meeting.phase is Phase.CANCELLED and latest is None:
        return False
    state = await meeting_state(session, ctx, meeting)
    if latest is not None and state.render(ctx.party.default_language) == latest.body:
        return False
    # Numbered, not keyed by content: a state that returns to an earlier wording (someone
    # withdraws the only option, then adds it again) is still a new version to show.
    # The meeting's row is locked by every use case that gets here, so two versions
    # are never given the same number.
    version = int(latest.dedupe_key.rsplit(":", 1)[1]) + 1 if latest is not None else 1
    return await announce(session, ctx, meeting, state, f"{key}:{version}", pin_key=key)


async def refresh_state(ctx: ServiceContext, ref: str) -> bool:
    """Bring the state up to date now (the turnout of an open ballot, say); for a timer
    such as the bot's scheduler. False when it was up to date."""
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref, lock=True)
        return await queue_state(session, ctx, meeting)


async def meeting_state(session: AsyncSession, ctx: ServiceContext, meeting: Meeting) -> Message:
    """The state's text, in the reader's language when rendered."""
    # Imported here: these use cases queue the state, so they import this module.
    from harmony_matrix.services.debate import options_of
    from harmony_matrix.services.roll_call import quorum_status

    ref = meeting_ref(meeting.id)
    lines: list[Message] = [
        _(
            "This message shows where %(kind)s %(ref)s is up to. Harmony keeps it up to date.",
            kind=kind_name(meeting.kind),
            ref=ref,
        ),
        _("Question: %(question)s", question=member_words(meeting.question)),
        phase_state(meeting.phase),
        *await _what_happens_now(session, meeting),
    ]
    if meeting.phase in (Phase.CONSENSUS, Phase.CANCELLED):
        return join(lines)
    if meeting.starts_at is not None:
        lines.append(_("When: %(when)s", when=_when(meeting.starts_at, ctx.party.timezone)))
    if meeting.place:
        lines.append(_("Where: %(place)s", place=member_words(meeting.place)))
    if meeting.online_url:
        lines.append(_("Online: %(url)s", url=meeting.online_url))
    lines.extend(_quorum_lines(await quorum_status(session, ctx, meeting)))
    if meeting.phase in (Phase.DISCUSSION, Phase.DEBATE):
        suggestions = await session.execute(
            select(Suggestion.number, Suggestion.text)
            .where(Suggestion.meeting_id == meeting.id)
            .order_by(Suggestion.number)
        )
        lines.extend(
            _numbered(
                [(row.number, row.text) for row in suggestions],
                _("These are the suggestions:"),
                _("No suggestions yet."),
            )
        )
    if meeting.phase in (Phase.DEBATE, Phase.VOTE):
        options = await options_of(session, meeting)
        lines.extend(
            _numbered(
                [(option.number, option.text) for option in options],
                _("These are the options:"),
                _("No options yet."),
            )
        )
    if meeting.phase is Phase.VOTE:
        lines.extend(await _turnout(session, ctx, meeting))
    return join(lines)


async def _what_happens_now(session: AsyncSession, meeting: Meeting) -> list[Message]:
    """What members can do in this phase, or how it ended."""
    if meeting.phase is Phase.DISCUSSION:
        return [
            _("Send !here to answer the roll call."),
            _("Send !suggest and your idea to make a suggestion."),
        ]
    if meeting.phase is Phase.DEBATE:
        if meeting.vote_round >= 1:
            return [
                _(
                    "The last vote had no clear winner. The meeting goes back to debate, "
                    "and then everyone votes again."
                )
            ]
        return [_("The moderator turns the suggestions into options for the vote.")]
    if meeting.phase is Phase.CONSENSUS:
        outcome = await session.scalar(
            select(ConsensusRecord.outcome)
            .where(ConsensusRecord.meeting_id == meeting.id)
            .order_by(ConsensusRecord.id.desc())
            .limit(1)
        )
        if outcome is not None:
            return [_("The decision: %(outcome)s", outcome=member_words(outcome))]
    return []


def _quorum_lines(status: QuorumStatus) -> list[Message]:
    lines: list[Message] = [
        _n(
            "%(ref)s: %(count)s person present.",
            "%(ref)s: %(count)s people present.",
            status.attendees,
            ref=status.meeting_ref,
        )
    ]
    if not status.assemblies:
        return [*lines, _("A Party Thing or a Party Conference needs no quorum.")]
    # The constitution's term, explained where the room first meets it (issue 12).
    lines.append(_("Quorum is the number of people needed to decide."))
    lines.append(_("Quorum is reached.") if status.reached else _("Quorum is not reached yet."))
    for item in status.assemblies:
        values = {"assembly": item.name, "present": item.present, "needed": item.quorum.needed}
        if item.reached:
            lines.append(
                _("%(assembly)s: %(present)s present, %(needed)s needed; reached.", **values)
            )
        else:
            lines.append(
                _(
                    "%(assembly)s: %(present)s present, %(needed)s needed; not reached yet.",
                    **values,
                )
            )
    return lines


def _numbered(items: list[tuple[int, str]], heading: Message, empty: Message) -> list[Message]:
    if not items:
        return [empty]
    return [heading, *(verbatim(f"{number}. {isolated(_shorten(text))}") for number, text in items)]


def _shorten(text: str) -> str:
    """One line, at most :data:`LONGEST_ITEM` characters."""
    line = " ".join(text.split())
    return line if len(line) <= LONGEST_ITEM else line[: LONGEST_ITEM - 1].rstrip() + "…"


async def _turnout(session: AsyncSession, ctx: ServiceContext, meeting: Meeting) -> list[Message]:
    """How many have voted, never who; with the closing time."""
    round_ = await session.scalar(
        select(BallotRound).where(
            BallotRound.meeting_id == meeting.id, BallotRound.number == meeting.vote_round
        )
    )
    if round_ is None or round_.status is not BallotRoundStatus.OPEN:
        return [_("The secretary will open the secret ballot soon.")]
    eligible = await session.scalar(
        select(func.count()).select_from(VotingRight).where(VotingRight.round_id == round_.id)
    )
    cast = await session.scalar(
        select(func.count()).select_from(SealedBallot).where(SealedBallot.round_id == round_.id)
    )
    lines = [
        _n(
            "%(cast)s of %(count)s person has voted so far.",
            "%(cast)s of %(count)s people have voted so far.",
            eligible or 0,
            cast=cast or 0,
        )
    ]
    if round_.closes_at is not None:
        lines.append(
            _(
                "The ballot closes on %(when)s.",
                when=_when(round_.closes_at, ctx.party.timezone),
            )
        )
    return lines


def _when(moment: datetime, timezone: str) -> Message:
    return localised(lambda language: format_datetime(moment, language, timezone))
