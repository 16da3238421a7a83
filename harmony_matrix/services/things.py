"""Things of Assemblies: each involved assembly agrees before the Thing is planned.

Clause: "the relevant Secretary (or, if collaborating between assemblies, Secretaries)".
One secretary calls the Thing and agrees for their own assembly; a secretary of each
other involved assembly (or the General Secretary, for all of them) agrees with
``agree_to_thing``. Until then it cannot be dated, announced or opened
(``meetings.check_agreed``).
"""

from __future__ import annotations

from harmony_matrix.constitution.process import Phase
from harmony_matrix.constitution.scheduling import MeetingKind
from harmony_matrix.errors import NotAllowed, RuleViolation
from harmony_matrix.i18n import _, list_of
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_by_ref, meeting_ref
from harmony_matrix.services.meetings import (
    MeetingSummary,
    acting_person,
    agree_for,
    awaiting_agreement,
    summary,
)
from harmony_matrix.services.records import audit


async def agree_to_thing(ctx: ServiceContext, actor: str | None, ref: str) -> MeetingSummary:
    """A secretary agrees, for the involved assemblies they are secretary of, to a Thing
    of Assemblies another assembly's secretary called; the General Secretary (or the
    operator) agrees for every assembly still to agree."""
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        meeting = await meeting_by_ref(session, ref, lock=True)
        if meeting.kind is not MeetingKind.THING_OF_ASSEMBLIES:
            raise RuleViolation(
                _("Only a Thing of Assemblies needs its assemblies to agree to it.")
            )
        if meeting.phase is not Phase.PLANNING:
            raise RuleViolation(
                _("%(ref)s is no longer being planned.", ref=meeting_ref(meeting.id))
            )
        missing = awaiting_agreement(meeting)
        if not missing:
            raise RuleViolation(
                _(
                    "Every assembly involved has already agreed to %(ref)s.",
                    ref=meeting_ref(meeting.id),
                )
            )
        agreed = await agree_for(session, meeting, person, now)
        if not agreed:
            raise NotAllowed(
                _(
                    "Only a secretary of %(assemblies)s, or the General Secretary, can agree "
                    "to this Thing for them.",
                    assemblies=list_of(assembly.name for assembly in missing),
                )
            )
        audit(
            session,
            now,
            person,
            "thing.agree",
            meeting_ref(meeting.id),
            assemblies=[assembly.slug for assembly in agreed],
        )
        return summary(meeting)
