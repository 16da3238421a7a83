"""A meeting's live quorum, as a reply shows it (!quorum, !here)."""

from __future__ import annotations

from harmony_matrix.bot.replies import Reply, Strong
from harmony_matrix.i18n import _, _n
from harmony_matrix.services.roll_call import QuorumStatus


def say_meeting_quorum(reply: Reply, status: QuorumStatus) -> Reply:
    """Add the live quorum of a meeting to ``reply``: how many are present, whether
    quorum is reached, and each assembly's count (a Thing needs every assembly's)."""
    reply.say(
        _n(
            "%(ref)s: %(count)s person present.",
            "%(ref)s: %(count)s people present.",
            status.attendees,
            ref=status.meeting_ref,
        )
    )
    if not status.assemblies:
        return reply.say(_("A Party Thing or a Party Conference needs no quorum."))
    reply.say(
        Strong(_("Quorum is reached.") if status.reached else _("Quorum is not reached yet."))
    )
    return reply.items(
        _(
            "%(assembly)s: %(present)s present, %(needed)s needed; reached.",
            assembly=item.name,
            present=item.present,
            needed=item.quorum.needed,
        )
        if item.reached
        else _(
            "%(assembly)s: %(present)s present, %(needed)s needed; not reached yet.",
            assembly=item.name,
            present=item.present,
            needed=item.quorum.needed,
        )
        for item in status.assemblies
    )
