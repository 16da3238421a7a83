"""Discussion, debate and the outcome: suggestions, options, consensus or the vote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution import process
from harmony_matrix.constitution.eligibility import Act, check_may
from harmony_matrix.constitution.process import Phase
from harmony_matrix.errors import InvalidInput, NotAllowed, NotFound, RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.services import consensus
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import (
    meeting_by_ref,
    meeting_ref,
    person_by_matrix_id,
)
from harmony_matrix.services.meeting_announcements import (
    announce_debate,
    announce_result,
    announce_vote,
)
from harmony_matrix.services.meeting_state import queue_state
from harmony_matrix.services.meetings import (
    MeetingSummary,
    acting_person,
    check_organiser,
    check_text,
    meeting_for_organiser,
    summary,
)
from harmony_matrix.services.membership import (
    record_activity,
    standing,
)
from harmony_matrix.services.preparation import changed_since_notice, is_continuation
from harmony_matrix.services.primary_remit import makes_party_consensus
from harmony_matrix.services.records import audit
from harmony_matrix.services.roll_call import may_take_part, originator_present, quorum_status
from harmony_matrix.services.voting_rights import current_round
from harmony_matrix.storage.models import (
    ConsensusMethod,
    Meeting,
    Option,
    OptionStatus,
    OptionSuggestion,
    Person,
    Suggestion,
)


async def add_suggestion(
    ctx: ServiceContext, actor: str, ref: str, text: str, *, author: str | None = None
) -> int:
    """Discussion phase: a suggestion is written down. Returns its number.

    A secretary or moderator may write down someone else's suggestion (``author``).
    """
    text = check_text(text)
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        assert person is not None
        meeting = await meeting_by_ref(session, ref, lock=True)
        process.check_can_suggest(meeting.phase)
        writer = person
        if author is not None and author != actor:
            await check_organiser(session, person, meeting.assemblies, now, moderators_too=True)
            writer = await person_by_matrix_id(session, author)
            check_may(standing(writer, now), Act.SPEAK)
        if not await may_take_part(session, meeting, writer, now):
            raise NotAllowed(_("Only people eligible for this meeting can make suggestions in it."))
        number = await _next_number(session, Suggestion, meeting.id)
        session.add(
            Suggestion(
                meeting_id=meeting.id,
                number=number,
                text=text,
                author_id=writer.id,
                recorded_by_id=person.id,
                created_at=now,
            )
        )
        await record_activity(session, writer.id, [a.id for a in meeting.assemblies], now)
        audit(session, now, person, "meeting.suggest", meeting_ref(meeting.id), number=number)
        await queue_state(session, ctx, meeting)
        return number


async def _next_number(
    session: AsyncSession, model: type[Suggestion] | type[Option], meeting_id: int
) -> int:
    highest = await session.scalar(
        select(func.max(model.number)).where(model.meeting_id == meeting_id)
    )
    return (highest or 0) + 1


async def start_debate(ctx: ServiceContext, actor: str | None, ref: str) -> MeetingSummary:
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        process.check_can_debate(meeting.phase)
        meeting.phase = Phase.DEBATE
        audit(session, ctx.now(), person, "meeting.debate", meeting_ref(meeting.id))
        await announce_debate(session, ctx, meeting)
        await queue_state(session, ctx, meeting)
        return summary(meeting)


async def add_option(
    ctx: ServiceContext, actor: str | None, ref: str, text: str, *, suggestions: Sequence[int] = ()
) -> int:
    """Debate phase: the moderator collates ideas into an option. Returns its number."""
    text = check_text(text)
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref, moderators_too=True)
        process.check_can_edit_options(meeting.phase)
        option = await _new_option(session, ctx, meeting, person, text)
        for number in dict.fromkeys(suggestions):
            suggestion = await session.scalar(
                select(Suggestion).where(
                    Suggestion.meeting_id == meeting.id, Suggestion.number == number
                )
            )
            if suggestion is None:
                raise NotFound(
                    _("There is no suggestion %(number)s in this meeting.", number=number)
                )
            session.add(OptionSuggestion(option_id=option.id, suggestion_id=suggestion.id))
        audit(
            session, ctx.now(), person, "option.add", meeting_ref(meeting.id), number=option.number
        )
        await queue_state(session, ctx, meeting)
        return option.number


async def _new_option(
    session: AsyncSession, ctx: ServiceContext, meeting: Meeting, person: Person | None, text: str
) -> Option:
    option = Option(
        meeting_id=meeting.id,
        number=await _next_number(session, Option, meeting.id),
        text=text,
        status=OptionStatus.ACTIVE,
        merged_into_id=None,
        created_by_id=person.id if person else None,
        created_at=ctx.now(),
    )
    session.add(option)
    await session.flush()
    return option


async def active_option(session: AsyncSession, meeting: Meeting, number: int) -> Option:
    option = await session.scalar(
        select(Option).where(Option.meeting_id == meeting.id, Option.number == number)
    )
    if option is None:
        raise NotFound(_("There is no option %(number)s in this meeting.", number=number))
    if option.status is not OptionStatus.ACTIVE:
        raise RuleViolation(_("Option %(number)s is no longer open.", number=number))
    return option


async def merge_options(
    ctx: ServiceContext, actor: str | None, ref: str, numbers: Sequence[int], text: str
) -> int:
    """Debate phase: positions "consolidate or compromise ... to reduce the total options".

    The merged options are kept, marked as merged into the new one.
    """
    text = check_text(text)
    unique = list(dict.fromkeys(numbers))
    if len(unique) < 2:
        raise InvalidInput(
            _("Name at least two options to merge, for example: !option merge 1 2 Text")
        )
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref, moderators_too=True)
        process.check_can_edit_options(meeting.phase)
        sources = [await active_option(session, meeting, number) for number in unique]
        merged = await _new_option(session, ctx, meeting, person, text)
        for source in sources:
            source.status = OptionStatus.MERGED
            source.merged_into_id = merged.id
        audit(
            session,
            ctx.now(),
            person,
            "option.merge",
            meeting_ref(meeting.id),
            sources=unique,
            number=merged.number,
        )
        await queue_state(session, ctx, meeting)
        return merged.number


async def withdraw_option(ctx: ServiceContext, actor: str | None, ref: str, number: int) -> None:
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref, moderators_too=True)
        process.check_can_edit_options(meeting.phase)
        option = await active_option(session, meeting, number)
        option.status = OptionStatus.WITHDRAWN
        audit(session, ctx.now(), person, "option.withdraw", meeting_ref(meeting.id), number=number)
        await queue_state(session, ctx, meeting)


@dataclass(frozen=True)
class OptionView:
    number: int
    text: str


async def active_options(ctx: ServiceContext, ref: str) -> list[OptionView]:
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        return await options_of(session, meeting)


async def options_of(session: AsyncSession, meeting: Meeting) -> list[OptionView]:
    rows = await session.scalars(
        select(Option)
        .where(Option.meeting_id == meeting.id, Option.status == OptionStatus.ACTIVE)
        .order_by(Option.number)
    )
    return [OptionView(row.number, row.text) for row in rows]


async def end_debate(ctx: ServiceContext, actor: str | None, ref: str) -> MeetingSummary:
    """Close the debate: one option is consensus at once; two or more go to the vote.

    A debate continued after a vote with no clear winner, on a later date, ends only
    once that date has come and everyone eligible was told of it."""
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        now = ctx.now()
        if is_continuation(meeting):
            process.check_notice_current(
                await changed_since_notice(session, meeting), ctx.rules, continuation=True
            )
            process.check_started(now, meeting.starts_at, ctx.rules, ctx.party.timezone)
        options = await options_of(session, meeting)
        status = await quorum_status(session, ctx, meeting)
        next_phase = process.after_debate(
            meeting.phase,
            len(options),
            status.reached,
            await originator_present(session, meeting, now),
        )
        meeting.phase = next_phase
        if next_phase is Phase.CONSENSUS:
            await consensus.append(
                session,
                meeting,
                options[0].text,
                ConsensusMethod.SINGLE_OPTION,
                person,
                now,
                party_consensus=await makes_party_consensus(session, meeting, now),
                language=ctx.party.default_language,
            )
        else:
            meeting.vote_round += 1
            await announce_vote(session, ctx, meeting, [(o.number, o.text) for o in options])
        audit(
            session,
            now,
            person,
            "meeting.end_debate",
            meeting_ref(meeting.id),
            phase=next_phase.value,
            options=len(options),
        )
        await queue_state(session, ctx, meeting)
        return summary(meeting)


async def apply_vote_outcome(
    session: AsyncSession,
    ctx: ServiceContext,
    meeting: Meeting,
    person: Person | None,
    winner: int | None,
) -> None:
    """The winner of a STAR count (an option number) is consensus; ``None`` (no clear
    winner) returns the meeting to debate, and it will vote again.

    Quorum and the petition originator's presence were checked when the debate ended
    and the vote began. They are not checked again here: "it is permissible to hold two
    events (with the vote being the second half)", and a vote already cast must be
    counted whoever has left the room since.
    """
    next_phase = process.after_vote(meeting.phase, clear_winner=winner is not None)
    now = ctx.now()
    party_consensus = winner is not None and await makes_party_consensus(session, meeting, now)
    # The round just counted, its result stored: the room hears it before the record.
    counted = await current_round(session, meeting)
    if counted is not None:
        await announce_result(session, ctx, meeting, counted, party_consensus=party_consensus)
    if winner is not None:
        option = await active_option(session, meeting, winner)
        # Only a STAR count reaches here: closing the ballot box, or paper ballots
        # entered and counted (services/paper_votes.py).
        await consensus.append(
            session,
            meeting,
            option.text,
            ConsensusMethod.STAR_BALLOT,
            person,
            now,
            party_consensus=party_consensus,
            language=ctx.party.default_language,
        )
    meeting.phase = next_phase
    audit(
        session,
        now,
        person,
        "meeting.conclude_vote",
        meeting_ref(meeting.id),
        round=meeting.vote_round,
        clear_winner=winner is not None,
    )
    await queue_state(session, ctx, meeting)
