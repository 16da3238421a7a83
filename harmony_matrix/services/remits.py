"""Primary remit use cases: who leads on a topic, and an assembly declining the lead.

Clause: "Consensus arising from a Moot may be considered Party Consensus if it is
produced by any Working Group which is considered to have primary remit for that
decision by its purpose. For example, the Disability Activism Society leads on
disability issues in entirety, but if the DAS declines to take the lead on an issue,
the Policy Society for Disability may do so instead."
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.errors import RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import assembly_by_slug, meeting_by_ref, meeting_ref
from harmony_matrix.services.meetings import (
    acting_person,
    check_organiser,
    check_text,
    check_topic,
    secretaries_of,
)
from harmony_matrix.services.primary_remit import known_topic, lead_assembly
from harmony_matrix.services.records import audit, direct_message
from harmony_matrix.storage.models import Assembly, Meeting, Person, RemitDecline


async def lead_for_topic(
    ctx: ServiceContext, topic: str, *, meeting: str | None = None
) -> str | None:
    """The slug of the assembly leading on ``topic`` (for ``meeting``, if a decline was
    for that meeting only), or None if none does."""
    async with ctx.transaction() as session:
        meeting_id = (await meeting_by_ref(session, meeting)).id if meeting else None
        lead = await lead_assembly(session, topic, ctx.now(), meeting_id)
        return lead.slug if lead else None


async def decline_remit(
    ctx: ServiceContext,
    actor: str | None,
    assembly_slug: str,
    topic: str,
    *,
    meeting: str | None = None,
    reason: str = "",
) -> str | None:
    """The assembly leading on ``topic`` declines to take the lead (on the whole topic, or
    on one meeting's question); the lead passes to its fallback. A secretary of the
    assembly (or the General Secretary) records it. Returns the new lead's slug, or None
    if no assembly leads any more; the new lead's secretaries are told."""
    given = check_topic(topic)
    if given is None:
        raise RuleViolation(_("Name the topic the assembly declines to lead on."))
    reason = check_text(reason) if reason.strip() else ""
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        assembly = await assembly_by_slug(session, assembly_slug)
        found = await meeting_by_ref(session, meeting) if meeting else None
        new_lead = await _decline(session, ctx, person, assembly, given, found, reason)
        return new_lead.slug if new_lead else None


@dataclass(frozen=True)
class Declined:
    """A lead declined: on what, by which assembly, and who leads now (names)."""

    topic: str
    assembly: str
    new_lead: str | None


async def decline_lead(
    ctx: ServiceContext, actor: str | None, topic: str, *, reason: str = ""
) -> Declined:
    """The assembly leading on ``topic`` now declines it, as :func:`decline_remit` (for
    ``!remit decline``: the secretary names the topic, and its lead is the assembly)."""
    given = check_topic(topic)
    if given is None:
        raise RuleViolation(_("Name the topic the assembly declines to lead on."))
    reason = check_text(reason) if reason.strip() else ""
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        canonical = await known_topic(session, given) or given
        lead = await lead_assembly(session, canonical, now)
        if lead is None:
            raise RuleViolation(
                _(
                    "No assembly leads on “%(topic)s”, so there is no lead to decline.",
                    topic=canonical,
                )
            )
        new_lead = await _decline(session, ctx, person, lead, given, None, reason)
        return Declined(
            topic=canonical,
            assembly=lead.name,
            new_lead=new_lead.name if new_lead else None,
        )


async def _decline(
    session: AsyncSession,
    ctx: ServiceContext,
    person: Person | None,
    assembly: Assembly,
    given: str,
    found: Meeting | None,
    reason: str,
) -> Assembly | None:
    """Record that ``assembly`` declines the lead on the topic ``given`` (for the whole
    topic, or for the meeting ``found``); tell the new lead's secretaries. Returns the
    new lead."""
    now = ctx.now()
    await check_organiser(session, person, [assembly], now)
    meeting_id = found.id if found else None
    canonical = await known_topic(session, given) or given
    current = await lead_assembly(session, canonical, now, meeting_id)
    if current is None or current.id != assembly.id:
        raise RuleViolation(
            _(
                "%(assembly)s does not lead on “%(topic)s”, so it has no lead to decline.",
                assembly=assembly.name,
                topic=canonical,
            )
        )
    decline = RemitDecline(
        assembly_id=assembly.id,
        topic=canonical,
        meeting_id=meeting_id,
        declined_by_id=person.id if person else None,
        declined_at=now,
        reason=reason,
    )
    session.add(decline)
    await session.flush()
    new_lead = await lead_assembly(session, canonical, now, meeting_id)
    audit(
        session,
        now,
        person,
        "remit.decline",
        assembly.slug,
        topic=canonical,
        meeting=meeting_ref(meeting_id) if meeting_id else None,
        new_lead=new_lead.slug if new_lead else None,
    )
    if new_lead is not None:
        for secretary in await secretaries_of(session, new_lead, now):
            await direct_message(
                session,
                now,
                secretary,
                message=_(
                    "%(declined)s declined to take the lead on “%(topic)s”: %(assembly)s "
                    "now leads on it, and its Moots on it make Party Consensus.",
                    declined=assembly.name,
                    topic=canonical,
                    assembly=new_lead.name,
                ),
                dedupe_key=f"remit-lead:{decline.id}:{secretary.id}",
            )
    return new_lead
