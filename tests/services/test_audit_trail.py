"""Every use case leaves one exact audit entry: who, what, on which subject, when, with
which details (issue 7: mutants of the services' audit calls survived the suite)."""

from datetime import timedelta

from sqlalchemy import select

from harmony_matrix.constitution.process import PreparationStep
from harmony_matrix.services import debate, meetings, paper_votes, petitions, preparation, roll_call
from harmony_matrix.storage.models import AuditEvent, ConsensusRecord, Person

from .helpers import ANA, BRYN, CHLOE, DAS, ELIF, GWEN, MEDIA, OUTSIDER_MEMBER

SECRETARIAL = "secretarial-committee"

PLACE = {"online_url": "https://meet.example/harmony", "accessibility": "Captions"}


async def _trail(ctx, since: int) -> list[tuple]:
    async with ctx.transaction() as session:
        names = {p.id: p.matrix_id for p in await session.scalars(select(Person))}
        events = await session.scalars(
            select(AuditEvent).where(AuditEvent.id > since).order_by(AuditEvent.id)
        )
        start = ctx.now()
        return [
            (
                round((e.at.replace(tzinfo=start.tzinfo) - start).total_seconds() / 60),
                names.get(e.actor_id),
                e.action,
                e.subject,
                e.details,
            )
            for e in events
        ]


async def _last_id(ctx) -> int:
    async with ctx.transaction() as session:
        return max(await session.scalars(select(AuditEvent.id)), default=0)


async def test_a_moot_leaves_an_exact_audit_trail(demo, clock):
    since = await _last_id(demo)
    begin = clock()

    def tick() -> None:
        clock.advance(minutes=1)

    ref = (await meetings.call_moot(demo, ANA, MEDIA, "Newsletter?")).ref
    tick()
    await preparation.record_preparation(demo, ANA, ref, PreparationStep.FACTS, "Survey")
    tick()
    await preparation.record_preparation(demo, ANA, ref, PreparationStep.MATERIALS, "Slides")
    tick()
    starts = clock() + timedelta(days=16)
    await preparation.schedule(demo, ANA, ref, starts, reason="Hall closed", **PLACE)
    tick()
    await preparation.notify(demo, ANA, ref)
    clock.current = starts
    await roll_call.open_meeting(demo, ANA, ref)
    tick()
    await roll_call.record_attendance(demo, CHLOE, ref)
    tick()
    await roll_call.record_attendance(demo, ANA, ref, who=GWEN)
    for who in (ANA, ELIF):
        await roll_call.record_attendance(demo, who, ref)
    tick()
    await debate.add_suggestion(demo, CHLOE, ref, "Print")
    tick()
    await debate.add_suggestion(demo, ANA, ref, "Email", author=ELIF)
    tick()
    await debate.start_debate(demo, ANA, ref)
    tick()
    await debate.add_option(demo, ANA, ref, "Print", suggestions=[1])
    await debate.add_option(demo, ANA, ref, "Email", suggestions=[2])
    await debate.add_option(demo, ANA, ref, "Both")
    tick()
    await debate.merge_options(demo, ANA, ref, [1, 2], "Print and email")
    tick()
    await debate.withdraw_option(demo, ANA, ref, 3)
    await debate.add_option(demo, ANA, ref, "Neither")
    tick()
    await debate.end_debate(demo, ANA, ref)
    tick()
    # The votes are held on paper: a tie (no clear winner), then a clear winner.
    header = b"4. Print and email,5. Neither\n"
    await paper_votes.enter_paper_vote(demo, ANA, ref, header + b"5,0\n0,5\n")
    tick()
    await debate.end_debate(demo, ANA, ref)
    tick()
    await paper_votes.enter_paper_vote(demo, ANA, ref, header + b"5,0\n5,1\n0,4\n")

    clock.current = begin
    trail = await _trail(demo, since)
    days16 = 16 * 24 * 60 + 3
    assert [t[1:] for t in trail[:4]] == [
        (
            ANA,
            "meeting.call",
            ref,
            {"kind": "assembly_moot", "assemblies": [MEDIA], "trigger": "gathering"},
        ),
        (ANA, "meeting.facts", ref, {}),
        (ANA, "meeting.materials", ref, {}),
        (
            ANA,
            "meeting.schedule",
            ref,
            {"starts_at": starts.isoformat(), "days": 16, "explanation": "Hall closed"},
        ),
    ]
    assert [t[0] for t in trail[:4]] == [0, 1, 2, 3]
    notify = trail[4]
    assert notify[:4] == (4, ANA, "meeting.notify", ref) and notify[4]["queued"] > 5
    assert trail[5:] == [
        (days16, ANA, "meeting.open", ref, {}),
        (days16 + 1, CHLOE, "meeting.attend", ref, {"attendee": CHLOE}),
        (days16 + 2, ANA, "meeting.attend", ref, {"attendee": GWEN}),
        (days16 + 2, ANA, "meeting.attend", ref, {"attendee": ANA}),
        (days16 + 2, ELIF, "meeting.attend", ref, {"attendee": ELIF}),
        (days16 + 3, CHLOE, "meeting.suggest", ref, {"number": 1}),
        (days16 + 4, ANA, "meeting.suggest", ref, {"number": 2}),
        (days16 + 5, ANA, "meeting.debate", ref, {}),
        (days16 + 6, ANA, "option.add", ref, {"number": 1}),
        (days16 + 6, ANA, "option.add", ref, {"number": 2}),
        (days16 + 6, ANA, "option.add", ref, {"number": 3}),
        (days16 + 7, ANA, "option.merge", ref, {"sources": [1, 2], "number": 4}),
        (days16 + 8, ANA, "option.withdraw", ref, {"number": 3}),
        (days16 + 8, ANA, "option.add", ref, {"number": 5}),
        (days16 + 9, ANA, "meeting.end_debate", ref, {"phase": "vote", "options": 2}),
        (days16 + 10, ANA, "ballot.paper", ref, {"round": 1, "ballots": 2}),
        (days16 + 10, ANA, "meeting.conclude_vote", ref, {"round": 1, "clear_winner": False}),
        (days16 + 11, ANA, "meeting.end_debate", ref, {"phase": "vote", "options": 2}),
        (days16 + 12, ANA, "ballot.paper", ref, {"round": 2, "ballots": 3}),
        (days16 + 12, ANA, "meeting.conclude_vote", ref, {"round": 2, "clear_winner": True}),
    ]
    async with demo.transaction() as session:
        record = await session.scalar(select(ConsensusRecord))
        recorder = await session.get(Person, record.recorded_by_id)
    assert (record.outcome, recorder.matrix_id) == ("Print and email", ANA)


async def test_calls_cancels_and_petitions_leave_an_exact_audit_trail(demo, clock):
    since = await _last_id(demo)
    begin = clock()
    moot = (await meetings.call_moot(demo, BRYN, SECRETARIAL, "Shall we?")).ref
    clock.advance(minutes=1)
    await meetings.cancel_meeting(demo, BRYN, moot, " Duplicate ")
    thing = (await meetings.call_thing(demo, CHLOE, [MEDIA, DAS], "Together?")).ref
    follow = (await meetings.call_moot(demo, ANA, MEDIA, "Next?")).ref
    clock.advance(minutes=1)
    petition = await petitions.start_petition(demo, CHLOE, "A logo")
    await petitions.sign_petition(demo, OUTSIDER_MEMBER, petition.ref)
    clock.current = begin
    trail = await _trail(demo, since)
    assert trail == [
        (
            0,
            BRYN,
            "meeting.call",
            moot,
            {"kind": "assembly_moot", "assemblies": [SECRETARIAL], "trigger": "gathering"},
        ),
        (1, BRYN, "meeting.cancel", moot, {"reason": "Duplicate"}),
        (
            1,
            CHLOE,
            "meeting.call",
            thing,
            {"kind": "thing_of_assemblies", "assemblies": [MEDIA, DAS], "trigger": "gathering"},
        ),
        (
            1,
            ANA,
            "meeting.call",
            follow,
            {"kind": "assembly_moot", "assemblies": [MEDIA], "trigger": "gathering"},
        ),
        (2, CHLOE, "petition.start", petition.ref, {"threshold": petition.progress.threshold}),
        (2, CHLOE, "petition.sign", petition.ref, {}),
        (2, OUTSIDER_MEMBER, "petition.sign", petition.ref, {}),
    ]
