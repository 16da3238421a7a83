"""Petitions of Members that call a Party Thing.

A petition that reaches its threshold calls its Party Thing at once, in the transaction
of the signature that reached it: the petition closes, and the General Secretary (who
organises the Party Thing) and the room the petition was started in are told its ID and
the last day it may be held without a published reason (21 days from reaching:
constitution/scheduling.py ``last_day``). A petition that reached its threshold before
this was so waits for the General Secretary (services/meetings.py ``call_party_thing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.eligibility import Act, Status, check_may
from harmony_matrix.constitution.petitions import PetitionProgress, petition_threshold
from harmony_matrix.constitution.scheduling import MeetingKind, date_limit_days, last_day
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.i18n import _, _n, calendar_day, join, list_of, member_words
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import (
    meeting_ref,
    person_by_matrix_id,
    petition_by_ref,
    petition_ref,
)
from harmony_matrix.services.meetings import party_thing_for_petition
from harmony_matrix.services.membership import (
    GENERAL_SECRETARY,
    non_suspended_member_count,
    not_suspended,
    office_holders,
    standing,
)
from harmony_matrix.services.records import audit, direct_message, enqueue
from harmony_matrix.storage.models import Meeting, Person, Petition, PetitionStatus, Signature

MAX_TITLE = 300


@dataclass(frozen=True)
class PetitionStatusView:
    ref: str
    title: str
    status: PetitionStatus
    progress: PetitionProgress
    members_at_opening: int
    opened_at: datetime
    reached_at: datetime | None
    #: The Party Thing it called, once it reached its threshold (None until then).
    party_thing_ref: str | None = None
    #: The last day that Party Thing may be held without a published reason.
    party_thing_by: date | None = None
    #: When that Party Thing is held, once its date is set.
    party_thing_starts_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Still gathering signatures."""
        return self.status is PetitionStatus.OPEN


async def start_petition(
    ctx: ServiceContext, actor: str, title: str, *, room_id: str | None = None
) -> PetitionStatusView:
    """A Member opens a petition for a Party Thing and is its first signature.

    The threshold is fixed now (interpretation 4): 15% of the non-suspended Members.
    ``room_id``: the Matrix room it was started in, told when it reaches its threshold.
    """
    title = title.strip()
    if not title:
        raise InvalidInput(
            _(
                "Say what the Party Thing should decide, for example: "
                "!petition start Adopt a new logo"
            )
        )
    if len(title) > MAX_TITLE:
        raise InvalidInput(
            _("The title is too long (at most %(limit)s characters).", limit=MAX_TITLE)
        )
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await person_by_matrix_id(session, actor)
        check_may(standing(person, now), Act.SIGN)
        members = await non_suspended_member_count(session, now)
        petition = Petition(
            title=title,
            originator_id=person.id,
            opened_at=now,
            members_at_opening=members,
            threshold=petition_threshold(members, ctx.rules),
            status=PetitionStatus.OPEN,
            reached_at=None,
            matrix_room_id=room_id,
        )
        session.add(petition)
        await session.flush()
        audit(
            session,
            now,
            person,
            "petition.start",
            petition_ref(petition.id),
            threshold=petition.threshold,
        )
        return await _sign(session, ctx, petition, person, now)


async def sign_petition(ctx: ServiceContext, actor: str, ref: str) -> PetitionStatusView:
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await person_by_matrix_id(session, actor)
        check_may(standing(person, now), Act.SIGN)
        petition = await petition_by_ref(session, ref, lock=True)
        if petition.status is PetitionStatus.CLOSED:
            thing = await _party_thing_of(session, petition)
            if thing is not None:
                # Also what the second of two signatures that raced for the last place
                # sees: the first one called the Party Thing.
                raise RuleViolation(
                    _(
                        "Petition %(ref)s has reached its threshold and called Party Thing "
                        "%(thing)s, so it is closed.",
                        ref=petition_ref(petition.id),
                        thing=meeting_ref(thing.id),
                    )
                )
            raise RuleViolation(_("Petition %(ref)s is closed.", ref=petition_ref(petition.id)))
        already = await session.scalar(
            select(Signature.id).where(
                Signature.petition_id == petition.id, Signature.person_id == person.id
            )
        )
        if already is not None:
            raise RuleViolation(
                _("You have already signed petition %(ref)s.", ref=petition_ref(petition.id))
            )
        return await _sign(session, ctx, petition, person, now)


async def _sign(
    session: AsyncSession, ctx: ServiceContext, petition: Petition, person: Person, now: datetime
) -> PetitionStatusView:
    ref = petition_ref(petition.id)
    session.add(Signature(petition_id=petition.id, person_id=person.id, signed_at=now))
    try:
        await session.flush()
    except IntegrityError as error:
        # The same person signing twice at the same moment: the database keeps one.
        raise RuleViolation(_("You have already signed petition %(ref)s.", ref=ref)) from error
    audit(session, now, person, "petition.sign", petition_ref(petition.id))
    view = await _status(session, ctx, petition, now)
    if view.progress.reached and petition.status is PetitionStatus.OPEN:
        petition.status = PetitionStatus.REACHED
        petition.reached_at = now
        audit(session, now, None, "petition.reached", petition_ref(petition.id))
        # Called by the petition itself (no caller): nobody has to remember to do it.
        thing = await party_thing_for_petition(session, ctx, petition, None)
        await _tell_reached(session, ctx, petition, thing, view.progress)
        view = await _status(session, ctx, petition, now)
    return view


async def _tell_reached(
    session: AsyncSession,
    ctx: ServiceContext,
    petition: Petition,
    thing: Meeting,
    progress: PetitionProgress,
) -> None:
    """Tell the General Secretary, who organises the Party Thing, and the petition's room."""
    now = ctx.now()
    ref = petition_ref(petition.id)
    by = last_day(thing.kind, thing.planning_triggered_at, ctx.rules, ctx.party.timezone)
    limit = date_limit_days(MeetingKind.PARTY_THING, ctx.rules)
    # A Party Thing always has a limit, counted from its trigger.
    assert by is not None
    assert limit is not None
    for secretary in await office_holders(session, GENERAL_SECRETARY, now):
        await direct_message(
            session,
            now,
            secretary,
            message=join(
                [
                    _n(
                        "Petition %(ref)s (“%(title)s”) has %(count)s signature and has "
                        "reached its threshold of %(threshold)s, so it has called Party "
                        "Thing %(thing)s. As General Secretary, you organise it.",
                        "Petition %(ref)s (“%(title)s”) has %(count)s signatures and has "
                        "reached its threshold of %(threshold)s, so it has called Party "
                        "Thing %(thing)s. As General Secretary, you organise it.",
                        progress.signatures,
                        ref=ref,
                        title=member_words(petition.title),
                        threshold=petition.threshold,
                        thing=meeting_ref(thing.id),
                    ),
                    _n(
                        "It must be held by %(day)s, %(count)s day after the petition "
                        "reached its threshold, unless you publish a reason.",
                        "It must be held by %(day)s, %(count)s days after the petition "
                        "reached its threshold, unless you publish a reason.",
                        limit,
                        day=calendar_day(by),
                    ),
                    _(
                        "Set its date with: !schedule %(thing)s YYYY-MM-DD HH:MM",
                        thing=meeting_ref(thing.id),
                    ),
                ],
                separator=" ",
            ),
            dedupe_key=f"petition-reached:{petition.id}:{secretary.id}",
        )
    if petition.matrix_room_id is not None:
        await enqueue(
            session,
            now,
            destination=petition.matrix_room_id,
            is_direct=False,
            # A room is read by many: the party's language, as for announcements.
            language=ctx.party.default_language,
            message=_n(
                "Petition %(ref)s (“%(title)s”) has reached its threshold with %(count)s "
                "signature. It has called Party Thing %(thing)s, which must be held by "
                "%(day)s. The General Secretary organises it, and every Member will be "
                "told its date.",
                "Petition %(ref)s (“%(title)s”) has reached its threshold with %(count)s "
                "signatures. It has called Party Thing %(thing)s, which must be held by "
                "%(day)s. The General Secretary organises it, and every Member will be "
                "told its date.",
                progress.signatures,
                ref=ref,
                title=member_words(petition.title),
                thing=meeting_ref(thing.id),
                day=calendar_day(by),
            ),
            dedupe_key=f"petition-reached-room:{petition.id}",
        )


async def petition_status(ctx: ServiceContext, ref: str) -> PetitionStatusView:
    async with ctx.transaction() as session:
        petition = await petition_by_ref(session, ref)
        return await _status(session, ctx, petition, ctx.now())


async def petition_meant(ctx: ServiceContext, ref: str | None) -> str:
    """The ID of the petition a command means: ``ref`` when given (checked to exist),
    else the one petition still gathering signatures; if there are none or several,
    the member is asked for the ID."""
    async with ctx.transaction() as session:
        if ref is not None:
            return petition_ref((await petition_by_ref(session, ref)).id)
        found = list(
            await session.scalars(
                select(Petition.id)
                .where(Petition.status == PetitionStatus.OPEN)
                .order_by(Petition.id)
            )
        )
    if len(found) == 1:
        return petition_ref(found[0])
    if found:
        raise InvalidInput(
            _(
                "Several petitions are open (%(refs)s): give the ID of the one you mean.",
                refs=list_of(petition_ref(number) for number in found),
            )
        )
    raise InvalidInput(_("No petition is open now: give the petition's ID, like P-3."))


async def _party_thing_of(session: AsyncSession, petition: Petition) -> Meeting | None:
    return await session.scalar(select(Meeting).where(Meeting.petition_id == petition.id))


async def _status(
    session: AsyncSession, ctx: ServiceContext, petition: Petition, now: datetime
) -> PetitionStatusView:
    """Signatures count while their signer is a non-suspended Member (not a Participant):
    a signature by someone suspended or no longer a Member does not count meanwhile."""
    valid = await session.scalars(
        select(Signature.id)
        .join(Person, Person.id == Signature.person_id)
        .where(
            Signature.petition_id == petition.id,
            Person.status == Status.MEMBER,
            not_suspended(now),
        )
    )
    thing = await _party_thing_of(session, petition)
    return PetitionStatusView(
        ref=petition_ref(petition.id),
        title=petition.title,
        status=petition.status,
        progress=PetitionProgress(signatures=len(list(valid)), threshold=petition.threshold),
        members_at_opening=petition.members_at_opening,
        opened_at=petition.opened_at,
        reached_at=petition.reached_at,
        party_thing_ref=meeting_ref(thing.id) if thing else None,
        party_thing_by=(
            last_day(thing.kind, thing.planning_triggered_at, ctx.rules, ctx.party.timezone)
            if thing
            else None
        ),
        party_thing_starts_at=thing.starts_at if thing else None,
    )
