"""Each organiser's action is refused to a member who is not an organiser, and every
action to a suspended person, with nothing written (issue 7: mutants that passed the
operator, or no moment, in place of the person acting survived the suite)."""

from datetime import timedelta

import pytest

from harmony_matrix.constitution.process import PreparationStep
from harmony_matrix.errors import NotAllowed
from harmony_matrix.services import debate, meetings, paper_votes, petitions, preparation, roll_call

from .helpers import ANA, CHLOE, DAS, ELIF, GWEN, IRIS, MEDIA, prepared_moot, row_counts

PLACE = {"online_url": "https://meet.example/harmony", "accessibility": "Captions"}


async def _meetings(ctx, clock) -> tuple[str, str]:
    """A Moot still planning, and one in debate with options 1 and 2."""
    planning = (await meetings.call_moot(ctx, ANA, MEDIA, "Later?")).ref
    ref = await prepared_moot(ctx)
    clock.current = (await meetings.meeting_summary(ctx, ref)).starts_at
    await roll_call.open_meeting(ctx, ANA, ref)
    for who in (ANA, CHLOE, GWEN, ELIF):
        await roll_call.record_attendance(ctx, who, ref)
    await debate.add_suggestion(ctx, CHLOE, ref, "Print")
    await debate.start_debate(ctx, ANA, ref)
    await debate.add_option(ctx, ANA, ref, "Yes")
    await debate.add_option(ctx, ANA, ref, "No")
    return planning, ref


def _actions(ctx, planning: str, ref: str, who: str):
    later = ctx.now() + timedelta(days=3)
    return {
        "call_moot": lambda: meetings.call_moot(ctx, who, MEDIA, "Q?"),
        "call_thing": lambda: meetings.call_thing(ctx, who, [MEDIA, DAS], "Q?"),
        "call_party_thing": lambda: meetings.call_party_thing(ctx, who, "P-1"),
        "cancel": lambda: meetings.cancel_meeting(ctx, who, planning, "Why not"),
        "facts": lambda: preparation.record_preparation(
            ctx, who, planning, PreparationStep.FACTS, "Facts"
        ),
        "schedule": lambda: preparation.schedule(ctx, who, planning, later, **PLACE),
        "notify": lambda: preparation.notify(ctx, who, planning),
        "open": lambda: roll_call.open_meeting(ctx, who, planning),
        "record someone present": lambda: roll_call.record_attendance(ctx, who, ref, who=ANA),
        "suggest for someone": lambda: debate.add_suggestion(ctx, who, ref, "X", author=ELIF),
        "add option": lambda: debate.add_option(ctx, who, ref, "Maybe"),
        "merge options": lambda: debate.merge_options(ctx, who, ref, [1, 2], "Both"),
        "withdraw option": lambda: debate.withdraw_option(ctx, who, ref, 1),
        "end debate": lambda: debate.end_debate(ctx, who, ref),
        "enter paper ballots": lambda: paper_votes.enter_paper_vote(ctx, who, ref, b"A,B\n5,0\n"),
        "start debate": lambda: debate.start_debate(ctx, who, ref),
    }


async def test_a_member_who_is_no_organiser_is_refused(demo, clock):
    planning, ref = await _meetings(demo, clock)
    # Gwen is an ordinary member of the Media Working Group.
    await petitions.start_petition(demo, CHLOE, "A logo")
    before = await row_counts(demo)
    actions = _actions(demo, planning, ref, GWEN)
    # A member calls their assembly's Moot ([rules] moot_called_by, test_moot_callers.py).
    del actions["call_moot"]
    refused = await _refusals(actions)
    assert set(refused) == set(actions)
    assert all("General Secretary" in message for message in refused.values()), refused
    assert await row_counts(demo) == before


@pytest.mark.parametrize("who", [IRIS])
async def test_a_suspended_person_is_refused_everything(demo, clock, who):
    planning, ref = await _meetings(demo, clock)
    before = await row_counts(demo)
    actions = _actions(demo, planning, ref, who)
    actions["attend"] = lambda: roll_call.record_attendance(demo, who, ref)
    actions["suggest"] = lambda: debate.add_suggestion(demo, who, ref, "Mine")
    actions["sign"] = lambda: petitions.start_petition(demo, who, "Mine")
    refused = await _refusals(actions)
    assert set(refused) == set(actions)
    assert all("suspended" in message for message in refused.values()), refused
    assert await row_counts(demo) == before


async def _refusals(actions) -> dict[str, str]:
    """The actions refused as not allowed, with their messages."""
    refused = {}
    for name, action in actions.items():
        try:
            await action()
        except NotAllowed as error:
            refused[name] = str(error)
    return refused
