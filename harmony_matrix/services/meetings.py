"""Moots and Things: what a meeting is, who organises it, calling and cancelling it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution import process
from harmony_matrix.constitution.eligibility import Act, check_may
from harmony_matrix.constitution.interpretations import MOOT_CALLED_BY_MEMBERS
from harmony_matrix.constitution.process import Phase
from harmony_matrix.constitution.scheduling import MeetingKind, kind_name
from harmony_matrix.errors import InvalidInput, NotAllowed, RuleViolation
from harmony_matrix.i18n import _, list_of, member_words
from harmony_matrix.services import meeting_state
from harmony_matrix.services.announcements import announce
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import (
    assembly_by_slug,
    meeting_by_ref,
    meeting_ref,
    person_by_matrix_id,
    petition_by_ref,
)
from harmony_matrix.services.membership import (
    GENERAL_SECRETARY,
    holds_office,
    member_ids,
    not_suspended,
    office_holders,
    roles_in,
    standing,
)
from harmony_matrix.services.primary_remit import known_topic, lead_assembly
from harmony_matrix.services.records import audit, direct_message
from harmony_matrix.services.voting_rights import open_round
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyMembership,
    Meeting,
    Person,
    Petition,
    PetitionStatus,
    Role,
    ThingAgreement,
    Trigger,
)

#: Limits that keep chat messages and pages readable.
MAX_QUESTION = 1000
MAX_TEXT = 2000
MAX_TOPIC = 200


@dataclass(frozen=True)
class MeetingSummary:
    ref: str
    kind: MeetingKind
    question: str
    phase: Phase
    assemblies: tuple[str, ...]
    starts_at: datetime | None
    vote_round: int
    #: A Thing of Assemblies: the involved assemblies that have agreed to it, and those
    #: still to agree (it is not planned until none is left).
    agreed: tuple[str, ...] = ()
    awaiting: tuple[str, ...] = ()
    topic: str | None = None


def summary(meeting: Meeting) -> MeetingSummary:
    agreed_ids = {agreement.assembly_id for agreement in meeting.agreements}
    is_thing = meeting.kind is MeetingKind.THING_OF_ASSEMBLIES
    return MeetingSummary(
        ref=meeting_ref(meeting.id),
        kind=meeting.kind,
        question=meeting.question,
        phase=meeting.phase,
        assemblies=tuple(assembly.slug for assembly in meeting.assemblies),
        starts_at=meeting.starts_at,
        vote_round=meeting.vote_round,
        agreed=tuple(a.slug for a in meeting.assemblies if is_thing and a.id in agreed_ids),
        awaiting=tuple(a.slug for a in meeting.assemblies if is_thing and a.id not in agreed_ids),
        topic=meeting.topic,
    )


def awaiting_agreement(meeting: Meeting) -> list[Assembly]:
    """The involved assemblies of a Thing of Assemblies that have not agreed to it."""
    if meeting.kind is not MeetingKind.THING_OF_ASSEMBLIES:
        return []
    agreed = {agreement.assembly_id for agreement in meeting.agreements}
    return [assembly for assembly in meeting.assemblies if assembly.id not in agreed]


def check_agreed(meeting: Meeting) -> None:
    """A Thing of Assemblies is planned (dated, announced, held) only once a secretary
    of each involved assembly, or the General Secretary, has agreed to it."""
    missing = awaiting_agreement(meeting)
    if missing:
        raise RuleViolation(
            _(
                "%(ref)s waits for %(assemblies)s to agree to it: a secretary of each "
                "assembly involved, or the General Secretary, agrees before it is planned "
                "(!thing agree %(ref)s).",
                ref=meeting_ref(meeting.id),
                assemblies=list_of(assembly.name for assembly in missing),
            )
        )


async def secretaries_of(session: AsyncSession, assembly: Assembly, at: datetime) -> list[Person]:
    """The assembly's secretaries now, not suspended: those who are told and prepare."""
    people = await session.scalars(
        select(Person)
        .join(AssemblyMembership, AssemblyMembership.person_id == Person.id)
        .where(
            AssemblyMembership.assembly_id == assembly.id,
            AssemblyMembership.role == Role.SECRETARY,
            AssemblyMembership.since <= at,
            or_(AssemblyMembership.until.is_(None), AssemblyMembership.until > at),
            not_suspended(at),
        )
        .order_by(Person.id)
    )
    return list(people.unique())


async def acting_person(session: AsyncSession, actor: str | None, at: datetime) -> Person | None:
    """The person acting, or None for the operator at the command line.

    A suspended person may not act at all in a meeting ("not eligible to speak").
    """
    if actor is None:
        return None
    person = await person_by_matrix_id(session, actor)
    check_may(standing(person, at), Act.SPEAK)
    return person


async def _is_general_secretary(session: AsyncSession, person: Person | None, at: datetime) -> bool:
    return person is None or await holds_office(session, person.id, GENERAL_SECRETARY, at)


async def check_organiser(
    session: AsyncSession,
    person: Person | None,
    assemblies: Sequence[Assembly],
    at: datetime,
    *,
    moderators_too: bool = False,
) -> None:
    """A secretary of an assembly involved, the General Secretary, or the operator.

    Clause: "the relevant Secretary (or, if collaborating between assemblies,
    Secretaries)"; "the General Secretary for a Party Moot".
    """
    if await _is_general_secretary(session, person, at):
        return
    assert person is not None
    allowed = {Role.SECRETARY, Role.MODERATOR} if moderators_too else {Role.SECRETARY}
    for assembly in assemblies:
        if allowed & await roles_in(session, person.id, assembly.id, at):
            return
    names = list_of(assembly.name for assembly in assemblies)
    if moderators_too:
        raise NotAllowed(
            _(
                "Only a secretary or moderator of %(assemblies)s, or the General Secretary, "
                "can do this.",
                assemblies=names,
            )
        )
    if not assemblies:
        raise NotAllowed(_("Only the General Secretary can do this for a Party Thing."))
    raise NotAllowed(
        _(
            "Only a secretary of %(assemblies)s, or the General Secretary, can do this.",
            assemblies=names,
        )
    )


async def meeting_for_organiser(
    session: AsyncSession, ctx: ServiceContext, actor: str | None, ref: str, **options: bool
) -> tuple[Meeting, Person | None]:
    now = ctx.now()
    person = await acting_person(session, actor, now)
    meeting = await meeting_by_ref(session, ref, lock=True)
    await check_organiser(session, person, meeting.assemblies, now, **options)
    return meeting, person


def _check_question(question: str) -> str:
    question = question.strip()
    if not question:
        raise InvalidInput(
            _("Say what the meeting is to decide, for example: !moot call Should we meet monthly?")
        )
    if len(question) > MAX_QUESTION:
        raise InvalidInput(
            _("The question is too long (at most %(limit)s characters).", limit=MAX_QUESTION)
        )
    return question


def check_text(text: str) -> str:
    """A member's text for a record: not empty, not longer than a page can show."""
    text = text.strip()
    if not text:
        raise InvalidInput(_("Write the text after the command."))
    if len(text) > MAX_TEXT:
        raise InvalidInput(_("That is too long (at most %(limit)s characters).", limit=MAX_TEXT))
    return text


async def _create_meeting(
    session: AsyncSession,
    ctx: ServiceContext,
    *,
    kind: MeetingKind,
    question: str,
    assemblies: Sequence[Assembly],
    caller: Person | None,
    trigger: Trigger,
    originator: Person | None = None,
    petition_id: int | None = None,
    earlier_meeting_id: int | None = None,
    triggered_at: datetime | None = None,
    topic: str | None = None,
) -> Meeting:
    now = ctx.now()
    # The person who asked for the meeting: a petition's originator, else its caller.
    asked_by = originator or caller
    meeting = Meeting(
        kind=kind,
        question=_check_question(question),
        trigger=trigger,
        originator_id=asked_by.id if asked_by else None,
        petition_id=petition_id,
        earlier_meeting_id=earlier_meeting_id,
        called_by_id=caller.id if caller else None,
        planning_triggered_at=triggered_at or now,
        starts_at=None,
        mode=None,
        phase=Phase.PLANNING,
        vote_round=0,
        created_at=now,
        topic=topic,
        remit_flagged=False,
        agreements=[],
    )
    meeting.assemblies = list(assemblies)
    session.add(meeting)
    await session.flush()
    audit(
        session,
        now,
        caller,
        "meeting.call",
        meeting_ref(meeting.id),
        kind=kind.value,
        assemblies=[assembly.slug for assembly in assemblies],
        trigger=trigger.value,
    )
    return meeting


def check_topic(topic: str | None) -> str | None:
    if topic is None:
        return None
    topic = " ".join(topic.split())
    if not topic:
        return None
    if len(topic) > MAX_TOPIC:
        raise InvalidInput(
            _("The topic is too long (at most %(limit)s characters).", limit=MAX_TOPIC)
        )
    return topic


async def _check_moot_caller(
    session: AsyncSession, ctx: ServiceContext, person: Person | None, assembly: Assembly
) -> bool:
    """May this person call a Moot of the assembly? True if they organise it themselves
    (a secretary, the General Secretary, the operator); False if they may call it as a
    member and its secretaries must be told to prepare it.

    Clause: "Members may call for either kind of decision-making process";
    ``[rules] moot_called_by`` (default "members") or "secretaries".
    """
    now = ctx.now()
    try:
        await check_organiser(session, person, [assembly], now)
        return True
    except NotAllowed:
        if ctx.rules.moot_called_by != MOOT_CALLED_BY_MEMBERS or person is None:
            raise
    if person.id not in await member_ids(session, assembly, now):
        raise NotAllowed(
            _(
                "Only a member of %(assembly)s, or the General Secretary, can call its Moot.",
                assembly=assembly.name,
            )
        )
    return False


async def _tell_secretaries_to_prepare(
    session: AsyncSession, ctx: ServiceContext, meeting: Meeting, caller: Person, assembly: Assembly
) -> None:
    now = ctx.now()
    for secretary in await secretaries_of(session, assembly, now):
        await direct_message(
            session,
            now,
            secretary,
            message=_(
                "%(person)s called %(kind)s %(ref)s of %(assembly)s: %(question)s\n"
                "You are its secretary, so please get it ready. Collect the facts. Prepare "
                "the materials people need. Set a date. Then tell everyone who may take part.",
                person=member_words(caller.display_name),
                kind=kind_name(meeting.kind),
                ref=meeting_ref(meeting.id),
                assembly=assembly.name,
                question=member_words(meeting.question),
            ),
            dedupe_key=f"moot-called:{meeting.id}:{secretary.id}",
        )


async def call_moot(
    ctx: ServiceContext,
    actor: str | None,
    assembly_slug: str,
    question: str,
    *,
    earlier_meeting: str | None = None,
    topic: str | None = None,
) -> MeetingSummary:
    """An Assembly Moot of one assembly, called by one of its members (or, if the party
    says so, only by its secretaries) or the General Secretary. ``topic`` names what it
    decides about, for primary remit (services/remits.py)."""
    topic = check_topic(topic)
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        assembly = await assembly_by_slug(session, assembly_slug)
        organiser = await _check_moot_caller(session, ctx, person, assembly)
        if topic is not None:
            topic = await known_topic(session, topic) or topic
        earlier = await meeting_by_ref(session, earlier_meeting) if earlier_meeting else None
        if earlier is not None:
            process.check_can_follow_on(earlier.phase, meeting_ref(earlier.id))
        meeting = await _create_meeting(
            session,
            ctx,
            kind=MeetingKind.ASSEMBLY_MOOT,
            question=question,
            assemblies=[assembly],
            caller=person,
            trigger=Trigger.EARLIER_DECISION if earlier else Trigger.GATHERING,
            earlier_meeting_id=earlier.id if earlier else None,
            topic=topic,
        )
        if not organiser:
            assert person is not None
            await _tell_secretaries_to_prepare(session, ctx, meeting, person, assembly)
        return summary(meeting)


async def call_thing(
    ctx: ServiceContext, actor: str | None, assembly_slugs: Sequence[str], question: str
) -> MeetingSummary:
    """A Thing of Assemblies: two or more assemblies decide together."""
    slugs = list(dict.fromkeys(slug.strip() for slug in assembly_slugs if slug.strip()))
    if len(slugs) < 2:
        raise InvalidInput(
            _("A Thing of Assemblies needs at least two assemblies, for example --assemblies a,b.")
        )
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        assemblies = [await assembly_by_slug(session, slug) for slug in slugs]
        await check_organiser(session, person, assemblies, now)
        meeting = await _create_meeting(
            session,
            ctx,
            kind=MeetingKind.THING_OF_ASSEMBLIES,
            question=question,
            assemblies=assemblies,
            caller=person,
            trigger=Trigger.GATHERING,
        )
        # The caller agrees for the assemblies they may speak for; the others' secretaries
        # are asked.
        await agree_for(session, meeting, person, now)
        for assembly in awaiting_agreement(meeting):
            await _ask_to_agree(session, ctx, meeting, assembly, person)
        return summary(meeting)


async def agree_for(
    session: AsyncSession, meeting: Meeting, person: Person | None, at: datetime
) -> list[Assembly]:
    """Record agreement for every involved assembly still to agree that ``person`` speaks
    for: the ones they are secretary of; all of them for the General Secretary and the
    operator. Returns those assemblies."""
    everyone = await _is_general_secretary(session, person, at)
    agreed = []
    for assembly in awaiting_agreement(meeting):
        if everyone or (
            person is not None
            and Role.SECRETARY in await roles_in(session, person.id, assembly.id, at)
        ):
            meeting.agreements.append(
                ThingAgreement(
                    assembly_id=assembly.id,
                    agreed_by_id=person.id if person else None,
                    agreed_at=at,
                )
            )
            agreed.append(assembly)
    await session.flush()
    return agreed


async def _ask_to_agree(
    session: AsyncSession,
    ctx: ServiceContext,
    meeting: Meeting,
    assembly: Assembly,
    caller: Person | None,
) -> None:
    now = ctx.now()
    for secretary in await secretaries_of(session, assembly, now):
        await direct_message(
            session,
            now,
            secretary,
            message=_(
                "%(person)s called Thing of Assemblies %(ref)s with %(assembly)s: "
                "%(question)s\nIt is not planned until a secretary of each assembly "
                "involved agrees. If %(assembly)s agrees, reply !thing agree %(ref)s.",
                person=member_words(caller.display_name) if caller else _("The operator"),
                ref=meeting_ref(meeting.id),
                assembly=assembly.name,
                question=member_words(meeting.question),
            ),
            dedupe_key=f"thing-agree:{meeting.id}:{assembly.id}:{secretary.id}",
        )


async def call_party_thing(
    ctx: ServiceContext,
    actor: str | None,
    petition: str,
    question: str | None = None,
    *,
    topic: str | None = None,
) -> MeetingSummary:
    """The General Secretary calls the Party Thing a successful petition asked for.

    A petition calls its Party Thing itself when it reaches its threshold
    (services/petitions.py); this call is for a petition that reached it before that was
    so, and for the operator. See :func:`party_thing_for_petition`.
    """
    topic = check_topic(topic)
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        await check_organiser(session, person, [], now)
        found = await petition_by_ref(session, petition, lock=True)
        meeting = await party_thing_for_petition(
            session, ctx, found, person, question=question, topic=topic
        )
        return summary(meeting)


async def party_thing_for_petition(
    session: AsyncSession,
    ctx: ServiceContext,
    petition: Petition,
    caller: Person | None,
    *,
    question: str | None = None,
    topic: str | None = None,
) -> Meeting:
    """Call the Party Thing ``petition`` asked for, in the caller's transaction (the
    petition row locked), and close the petition. ``caller`` None: the petition called
    it by reaching its threshold, or the operator did.

    Planning is triggered when the petition reached its threshold; the originator of
    the petition is the meeting's originator and must be present. A Party Thing is for
    what is "not within the remit of an existing Assembly": if some assembly leads on
    its ``topic``, the meeting is flagged and the General Secretary told.
    """
    ref = f"P-{petition.id}"
    already = await session.scalar(select(Meeting.id).where(Meeting.petition_id == petition.id))
    if already is not None:
        raise RuleViolation(
            _(
                "Petition %(ref)s already called meeting %(meeting)s.",
                ref=ref,
                meeting=meeting_ref(already),
            )
        )
    if petition.status is not PetitionStatus.REACHED or petition.reached_at is None:
        raise RuleViolation(
            _(
                "Petition %(ref)s has not reached its threshold, so it cannot call a "
                "Party Thing yet.",
                ref=ref,
            )
        )
    originator = await session.get(Person, petition.originator_id)
    meeting = await _create_meeting(
        session,
        ctx,
        kind=MeetingKind.PARTY_THING,
        question=question or petition.title,
        assemblies=[],
        caller=caller,
        trigger=Trigger.PETITION,
        originator=originator,
        petition_id=petition.id,
        triggered_at=petition.reached_at,
        topic=(await known_topic(session, topic) or topic) if topic else None,
    )
    petition.status = PetitionStatus.CLOSED
    await _flag_if_led(session, ctx, meeting)
    return meeting


async def _flag_if_led(session: AsyncSession, ctx: ServiceContext, meeting: Meeting) -> None:
    """A Party Thing on a topic some assembly leads on: flag it, tell the General
    Secretary (who may cancel it or ask the assembly to take it up)."""
    if meeting.topic is None:
        return
    now = ctx.now()
    lead = await lead_assembly(session, meeting.topic, now, meeting.id)
    if lead is None:
        return
    meeting.remit_flagged = True
    for secretary in await office_holders(session, GENERAL_SECRETARY, now):
        await direct_message(
            session,
            now,
            secretary,
            message=_(
                "Party Thing %(ref)s is about “%(topic)s”, on which %(assembly)s leads. "
                "A Party Thing is for what is not within the remit of an existing "
                "Assembly: check whether %(assembly)s should decide it in a Moot.",
                ref=meeting_ref(meeting.id),
                topic=member_words(meeting.topic or ""),
                assembly=lead.name,
            ),
            dedupe_key=f"remit-flag:{meeting.id}:{secretary.id}",
        )
    audit(session, now, None, "meeting.remit_flag", meeting_ref(meeting.id), lead=lead.slug)


async def meeting_summary(ctx: ServiceContext, ref: str) -> MeetingSummary:
    async with ctx.transaction() as session:
        return summary(await meeting_by_ref(session, ref))


async def cancel_meeting(
    ctx: ServiceContext, actor: str | None, ref: str, reason: str
) -> MeetingSummary:
    reason = check_text(reason)
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        process.check_can_cancel(meeting.phase)
        if await open_round(session, meeting) is not None:
            raise RuleViolation(
                _("Close the ballot first: a ballot that people may have used must be counted.")
            )
        meeting.phase = Phase.CANCELLED
        audit(session, ctx.now(), person, "meeting.cancel", meeting_ref(meeting.id), reason=reason)
        await announce(
            session,
            ctx,
            meeting,
            _(
                "%(ref)s is cancelled. The reason given: %(reason)s",
                ref=meeting_ref(meeting.id),
                reason=member_words(reason),
            ),
            f"cancelled:{meeting.id}",
        )
        await meeting_state.queue_state(session, ctx, meeting)
        return summary(meeting)
