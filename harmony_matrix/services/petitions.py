"""Petitions of Members that call a Party Thing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.eligibility import Act, Status, check_may
from harmony_matrix.constitution.petitions import PetitionProgress, petition_threshold
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.i18n import _, _n
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import person_by_matrix_id, petition_by_ref, petition_ref
from harmony_matrix.services.membership import (
    GENERAL_SECRETARY,
    non_suspended_member_count,
    not_suspended,
    office_holders,
    standing,
)
from harmony_matrix.services.records import audit, direct_message
from harmony_matrix.storage.models import Person, Petition, PetitionStatus, Signature

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


async def start_petition(ctx: ServiceContext, actor: str, title: str) -> PetitionStatusView:
    """A Member opens a petition for a Party Thing and is its first signature.

    The threshold is fixed now (interpretation 4): 15% of the non-suspended Members.
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
    view = await _status(session, petition, now)
    if view.progress.reached and petition.status is PetitionStatus.OPEN:
        petition.status = PetitionStatus.REACHED
        petition.reached_at = now
        audit(session, now, None, "petition.reached", petition_ref(petition.id))
        for secretary in await office_holders(session, GENERAL_SECRETARY, now):
            await direct_message(
                session,
                now,
                secretary,
                message=_n(
                    "Petition %(ref)s (“%(title)s”) has %(count)s signature and has reached "
                    "its threshold of %(threshold)s. A Party Thing must now be called: "
                    "!thing party %(ref)s",
                    "Petition %(ref)s (“%(title)s”) has %(count)s signatures and has reached "
                    "its threshold of %(threshold)s. A Party Thing must now be called: "
                    "!thing party %(ref)s",
                    view.progress.signatures,
                    ref=petition_ref(petition.id),
                    title=petition.title,
                    threshold=petition.threshold,
                ),
                dedupe_key=f"petition-reached:{petition.id}:{secretary.id}",
            )
        view = await _status(session, petition, now)
    return view


async def petition_status(ctx: ServiceContext, ref: str) -> PetitionStatusView:
    async with ctx.transaction() as session:
        petition = await petition_by_ref(session, ref)
        return await _status(session, petition, ctx.now())


async def _status(session: AsyncSession, petition: Petition, now: datetime) -> PetitionStatusView:
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
    return PetitionStatusView(
        ref=petition_ref(petition.id),
        title=petition.title,
        status=petition.status,
        progress=PetitionProgress(signatures=len(list(valid)), threshold=petition.threshold),
        members_at_opening=petition.members_at_opening,
        opened_at=petition.opened_at,
        reached_at=petition.reached_at,
    )
