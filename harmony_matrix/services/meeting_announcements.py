"""What the meeting's room is told as the meeting moves on: it opened, the debate began
(with the moderating rules), the vote began, how to vote, and the result.

Each is an ordinary room message (services/announcements.py), queued once however often
the command that causes it is retried. Plain English with short sentences (GOV.UK style,
a reading age of about 9); what members wrote is a parameter, never part of the msgid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.scheduling import kind_name
from harmony_matrix.i18n import Message, _, _n, isolated, join, member_words, verbatim
from harmony_matrix.services.announcements import announce
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.services.preparation import when
from harmony_matrix.storage.models import BallotRound, Meeting, VotingRight
from harmony_matrix.voting.star import Step


async def announce_opened(session: AsyncSession, ctx: ServiceContext, meeting: Meeting) -> bool:
    """The meeting opened: its roll call and discussion begin."""
    message = join(
        [
            _(
                "%(kind)s %(ref)s has started.",
                kind=kind_name(meeting.kind),
                ref=meeting_ref(meeting.id),
            ),
            _("Question: %(question)s", question=member_words(meeting.question)),
            _(
                "Roll call: send !here in this room to say you are taking part. Only "
                "people who answer the roll call can vote."
            ),
            _("A secretary can add someone who is here in person but not in the chat."),
            _("Now is the time for ideas. Send !suggest and your idea to make a suggestion."),
        ]
    )
    return await announce(session, ctx, meeting, message, f"opened:{meeting.id}")


def default_moderating_rules() -> Message:
    """Harmony's rules for a debate, when the party has set none of its own."""
    return join(
        [
            _("1. Be kind. Talk about ideas, not about people."),
            _("2. Wait for the moderator to give you a turn."),
            _("3. Keep to the question."),
            _("4. Keep it short, so that everyone gets a turn."),
            _("5. Anyone can ask for something to be explained again."),
            _("6. The moderator can stop anyone who breaks these rules."),
        ]
    )


def moderating_rules(ctx: ServiceContext) -> Message:
    """The party's rules ([party] moderating_rules_file) as written, or the default."""
    return verbatim(ctx.moderating_rules) if ctx.moderating_rules else default_moderating_rules()


async def announce_debate(session: AsyncSession, ctx: ServiceContext, meeting: Meeting) -> bool:
    """The discussion is over and the debate begins, with the moderating rules."""
    message = join(
        [
            _(
                "The debate on %(ref)s has begun.",
                ref=meeting_ref(meeting.id),
            ),
            _(
                "The moderator now turns the suggestions into options. At the end of the "
                "debate, if there is more than one option, we vote."
            ),
            _("The rules for the debate:"),
            moderating_rules(ctx),
        ]
    )
    return await announce(session, ctx, meeting, message, f"debate:{meeting.id}")


async def announce_vote(
    session: AsyncSession,
    ctx: ServiceContext,
    meeting: Meeting,
    options: Sequence[tuple[int, str]],
) -> bool:
    """The debate ended with two or more options: the vote begins."""
    message = join(
        [
            _(
                "The debate on %(ref)s has ended. The vote begins.",
                ref=meeting_ref(meeting.id),
            ),
            _("The options are:"),
            *(verbatim(f"{number}. {isolated(text)}") for number, text in options),
            _("The secretary will open the secret ballot soon."),
        ]
    )
    return await announce(session, ctx, meeting, message, f"vote:{meeting.id}:{meeting.vote_round}")


async def announce_ballot_open(
    session: AsyncSession, ctx: ServiceContext, meeting: Meeting, round_: BallotRound
) -> bool:
    """How to vote, in simple English, when the secret ballot opens."""
    lines: list[Message] = [
        _("The secret ballot for %(ref)s is open.", ref=meeting_ref(meeting.id)),
        _("How to vote:"),
        _(
            "1. Look for a direct message from Harmony. It has your own voting link. "
            "Everyone who answered the roll call gets one."
        ),
        _("2. Open the link. Give every option a score from 0 to 5."),
        _("3. 5 means you like the option very much. 0 means you do not want it at all."),
        _("4. You can give the same score to more than one option."),
        _("5. Send your ballot. You get a receipt code. Keep it to check your vote later."),
        _(
            "How the winner is found: the two options with the highest total scores go "
            "to a final round. The one that more people scored higher wins."
        ),
        _(
            "Your vote is secret. Nobody can see how you voted, not even the secretary. "
            "Your link works once. Do not share it."
        ),
    ]
    if round_.closes_at is not None:
        lines.append(
            _("The ballot closes on %(when)s.", when=when(round_.closes_at, ctx.party.timezone))
        )
    lines.append(
        _(
            "No message with a link? Send !here in this room to answer the roll call, and "
            "your link will come. If it still does not come, ask the secretary."
        )
    )
    return await announce(session, ctx, meeting, join(lines), f"ballot-open:{round_.id}")


async def announce_result(
    session: AsyncSession,
    ctx: ServiceContext,
    meeting: Meeting,
    round_: BallotRound,
    *,
    party_consensus: bool,
) -> bool:
    """The result of a counted round (online or on paper), explained step by step as
    ``harmony tally --format text`` explains it, with the turnout and where the ballots
    are published so that anyone can count them again."""
    ref = meeting_ref(meeting.id)
    result: Mapping[str, Any] = round_.result or {}
    if round_.on_paper:
        heading = _("The paper ballots for %(ref)s have been counted.", ref=ref)
    else:
        heading = _("The secret ballot for %(ref)s is closed and counted.", ref=ref)
    lines: list[Message] = [
        heading,
        _("Question: %(question)s", question=member_words(meeting.question)),
    ]
    winner = result.get("winner")
    if winner is not None:
        lines.append(_("The winning option is %(option)s.", option=member_words(str(winner))))
        if party_consensus:
            lines.append(_party_consensus(meeting))
    else:
        lines.append(
            _(
                "There is no clear winner. The meeting goes back to debate, and then "
                "everyone votes again."
            )
        )
    lines.append(
        _(
            "How the votes were counted, step by step. The runoff is the final round "
            "between the two options with the highest total scores:"
        )
    )
    lines.extend(_steps(result.get("steps", [])))
    lines.append(await _turnout(session, round_, int(result.get("ballots", 0))))
    base = ctx.public_base_url.rstrip("/")
    lines.append(
        _(
            "Anyone can count the ballots again. They are published without names: %(url)s",
            url=f"{base}/meetings/{ref}/ballots.csv",
        )
    )
    lines.append(_("The full result: %(url)s", url=f"{base}/meetings/{ref}/results"))
    return await announce(session, ctx, meeting, join(lines), f"result:{round_.id}")


def _steps(steps: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Each step of the STAR count in words, rendered in the room's language; a step
    this version cannot explain is shown in the words stored with it.

    The options' names are put in isolates of their own, as members wrote them (see
    ``i18n.isolated``); only the names: other texts among the parameters (``decided_by``)
    are compared by the step's wording."""
    messages: list[Message] = []
    for step in steps:
        try:
            params = {
                key: _isolated_names(value) if key in STEP_NAME_PARAMS else value
                for key, value in step.get("params", {}).items()
            }
            messages.append(Step(str(step["kind"]), params).message())
        except KeyError:
            messages.append(verbatim(str(step.get("text", ""))))
    return messages


#: The parameters of a STAR count's steps that hold options' names (voting/star.py,
#: STEP_KINDS).
STEP_NAME_PARAMS = frozenset({"option", "options", "first", "second", "winner", "loser"})


def _isolated_names(value: object) -> object:
    if isinstance(value, str):
        return isolated(value)
    if isinstance(value, list | tuple):
        return [_isolated_names(item) for item in value]
    return value


async def _turnout(session: AsyncSession, round_: BallotRound, ballots: int) -> Message:
    if round_.on_paper:
        return _n(
            "%(count)s paper ballot was counted.",
            "%(count)s paper ballots were counted.",
            ballots,
        )
    eligible = await session.scalar(
        select(func.count()).select_from(VotingRight).where(VotingRight.round_id == round_.id)
    )
    return _n(
        "%(cast)s of %(count)s person voted.",
        "%(cast)s of %(count)s people voted.",
        eligible or 0,
        cast=ballots,
    )


def _party_consensus(meeting: Meeting) -> Message:
    names = ", ".join(assembly.name for assembly in meeting.assemblies)
    return _(
        "This is Party Consensus. %(assembly)s leads on “%(topic)s” for the whole party, "
        "so this decision counts for everyone.",
        assembly=names,
        topic=meeting.topic or "",
    )
