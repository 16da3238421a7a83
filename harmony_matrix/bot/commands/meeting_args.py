"""The arguments the meeting commands share: the meeting meant (its ID typed first, else
the one held in the room), and the answers to an argument missing or left over.

In the room where a meeting is held its ID may be left out (DESIGN.md section 7). A
word in first position is taken as the ID only when it looks like one ("M-12", any
case), so that "!option withdraw 2" is option 2 and "!suggest Meet monthly" is a
suggestion.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harmony_matrix.bot.commands.base import Request, UsageError
from harmony_matrix.errors import NotFound
from harmony_matrix.i18n import _
from harmony_matrix.services import assembly_rooms
from harmony_matrix.services.assembly_rooms import RUNNING, UNFINISHED

MEETING_ID = re.compile(r"M-[0-9]+", re.IGNORECASE)
#: More digits than any meeting or option number has: the database's integers would
#: overflow, so such a number is answered as unknown before it is looked up.
MAX_DIGITS = 9


def is_meeting_id(word: str) -> bool:
    return MEETING_ID.fullmatch(word) is not None


def split_id(text: str) -> tuple[str | None, str]:
    """("M-3", "the rest") for "M-3 the rest"; (None, text) when it starts otherwise."""
    words = text.split(maxsplit=1)
    if words and is_meeting_id(words[0]):
        return words[0].upper(), words[1].strip() if len(words) > 1 else ""
    return None, text.strip()


def shift_id(values: Sequence[str]) -> tuple[str | None, list[str]]:
    """The ID, if the first positional argument is one, and the arguments after it."""
    if values and is_meeting_id(values[0]):
        return values[0].upper(), list(values[1:])
    return None, list(values)


def positional(request: Request, *names: str) -> list[str]:
    """The optional positional arguments given, in order (the parser fills them so)."""
    return [request.args[name] for name in names if name in request.args]


def missing(request: Request, name: str) -> UsageError:
    """The error for an argument left out, with the command's usage line."""
    return UsageError(_("%(name)s is missing.", name=name), [request.command])


def no_more(request: Request, extra: Sequence[str]) -> None:
    """Refuse arguments left over once the ID was taken out."""
    if extra:
        raise UsageError(
            _("“%(extra)s” was not expected here.", extra=" ".join(extra)), [request.command]
        )


async def meeting_meant(request: Request, ref: str | None, *, under_way: bool = False) -> str:
    """The ID of the meeting the command means: ``ref`` if typed (checked to exist),
    else the one meeting held in this room; otherwise the member is asked which
    (several) or for the ID (none).

    ``under_way``: only meetings with a roll call (discussion, debate, vote) count, for
    the commands of the meeting itself; else any unfinished one, planning included.
    """
    if ref is not None and sum(character.isdigit() for character in ref) > MAX_DIGITS:
        raise NotFound(_("There is no meeting %(ref)s.", ref=ref.upper()))
    phases = RUNNING if under_way else UNFINISHED
    return await assembly_rooms.meeting_here(request.ctx, request.event.room_id, ref, phases)
