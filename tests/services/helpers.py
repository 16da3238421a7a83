"""Steps many service tests share, with the demo party's people."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from harmony_matrix.constitution.eligibility import Status
from harmony_matrix.constitution.process import PreparationStep
from harmony_matrix.services import meetings, petitions, preparation
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import petition_by_ref
from harmony_matrix.services.records import audit
from harmony_matrix.storage.models import Base, Person, PetitionStatus, Signature

ANA = "@ana:harmony.uk"  # General Secretary; secretary of the OWG and the Media WG
BRYN = "@bryn:harmony.uk"  # moderator of the OWG; secretary of the Secretarial Committee
CHLOE = "@chloe:matrix.org"  # Media WG; secretary of the Disability Activism Society
DAWID = "@dawid:tchncs.de"  # secretary of Harmony Rec
ELIF = "@elif:example.org:8448"  # participant, Media WG
FARAH = "@farah:harmony.uk"
GWEN = "@gwen:harmony.uk"  # Media WG
HAMZA = "@hamza:matrix.org"  # participant, Disability Activism Society only
IRIS = "@iris:harmony.uk"  # Media WG, suspended
JON = "@jon:harmony.uk"  # participant, suspended
OUTSIDER_MEMBER = "@kai.hughes:harmony.uk"  # a Member in no listed assembly
OUTSIDER_PARTICIPANT = "@nia.jones:fosdem.org"  # a Participant in no listed assembly

MEDIA = "media-working-group"
OWG = "operational-working-group"
DAS = "disability-activism-society"


async def prepared_moot(
    ctx: ServiceContext, slug: str = MEDIA, actor: str = ANA, *, wait_for_start: bool = True
) -> str:
    """A Moot with the four preparation steps done, set 10 days ahead; unless told not
    to, the clock then moves on to its start, so that it may open."""
    called = await meetings.call_moot(ctx, actor, slug, "Should we publish a monthly newsletter?")
    await preparation.record_preparation(
        ctx, actor, called.ref, PreparationStep.FACTS, "Survey results"
    )
    await preparation.record_preparation(
        ctx, actor, called.ref, PreparationStep.MATERIALS, "Slides, large print copies"
    )
    await preparation.schedule(
        ctx,
        actor,
        called.ref,
        ctx.now() + timedelta(days=10),
        place="Community Hall, 1 High St",
        online_url="https://meet.example/harmony",
        accessibility="Step-free entrance, hearing loop, live captions online",
    )
    await preparation.notify(ctx, actor, called.ref)
    if wait_for_start:
        await to_start(ctx, called.ref)
    return called.ref


async def to_start(ctx: ServiceContext, ref: str) -> None:
    """Move the tests' clock to the meeting's announced start: nothing opens earlier."""
    starts_at = (await meetings.meeting_summary(ctx, ref)).starts_at
    assert starts_at is not None and starts_at >= ctx.now()
    ctx.clock.current = starts_at  # type: ignore[attr-defined]  # the tests' Clock


async def row_counts(ctx: ServiceContext) -> dict[str, int]:
    """How many rows each table holds: proof that a refused action wrote nothing."""
    async with ctx.transaction() as session:
        return {
            table.name: await session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


async def signing_members(ctx: ServiceContext, *, leaving_out: tuple[str, ...] = ()) -> list[str]:
    """The Members who may sign a petition now (not suspended), in register order."""
    async with ctx.transaction() as session:
        people = await session.scalars(select(Person).order_by(Person.id))
        return [
            p.matrix_id
            for p in people
            if p.status == Status.MEMBER
            and p.suspended_from is None
            and p.matrix_id not in leaving_out
        ]


async def reach_petition(
    ctx: ServiceContext,
    originator: str = CHLOE,
    title: str = "Adopt a new logo",
    *,
    room_id: str | None = None,
    leaving_out: tuple[str, ...] = (),
) -> petitions.PetitionStatusView:
    """A petition signed through the services until it reaches its threshold (and so
    calls its Party Thing)."""
    view = await petitions.start_petition(ctx, originator, title, room_id=room_id)
    for signer in await signing_members(ctx, leaving_out=(originator, *leaving_out)):
        if view.progress.reached:
            break
        view = await petitions.sign_petition(ctx, signer, view.ref)
    assert view.party_thing_ref is not None
    return view


async def reached_before_auto_call(
    ctx: ServiceContext,
    originator: str = CHLOE,
    title: str = "Adopt a new logo",
    *,
    leaving_out: tuple[str, ...] = (),
) -> petitions.PetitionStatusView:
    """A petition that reached its threshold before petitions called their Party Thing
    themselves: REACHED with no meeting, waiting for the General Secretary
    (``meetings.call_party_thing``). Signed through the services until one short, then
    the last signature written as that code wrote it."""
    view = await petitions.start_petition(ctx, originator, title)
    signers = await signing_members(ctx, leaving_out=(originator, *leaving_out))
    one_short = view.progress.missing - 1
    for signer in signers[:one_short]:
        view = await petitions.sign_petition(ctx, signer, view.ref)
    last = signers[one_short]
    now = ctx.now()
    async with ctx.transaction() as session:
        petition = await petition_by_ref(session, view.ref)
        person = await session.scalar(select(Person).where(Person.matrix_id == last))
        assert person is not None
        session.add(Signature(petition_id=petition.id, person_id=person.id, signed_at=now))
        audit(session, now, person, "petition.sign", view.ref)
        petition.status = PetitionStatus.REACHED
        petition.reached_at = now
        audit(session, now, None, "petition.reached", view.ref)
    view = await petitions.petition_status(ctx, view.ref)
    assert view.progress.reached and view.party_thing_ref is None
    return view
