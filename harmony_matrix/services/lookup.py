"""Find people, assemblies, meetings and petitions by the names users type."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.errors import InvalidInput, NotFound
from harmony_matrix.i18n import _
from harmony_matrix.matrix_ids import check_matrix_id, normalise_matrix_id  # noqa: F401
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import Assembly, Meeting, Person, Petition


def meeting_ref(meeting_id: int) -> str:
    return f"M-{meeting_id}"


def petition_ref(petition_id: int) -> str:
    return f"P-{petition_id}"


def parse_ref(prefix: str, text: str) -> int:
    """Accept "M-12", "m12" or "12" for a meeting (prefix "M"), likewise "P-3"."""
    # At most nine digits: a longer number is no ID of ours, and would overflow the
    # database's integer column rather than be "not found".
    match = re.fullmatch(rf"(?:{prefix}-?)?([0-9]{{1,9}})", text.strip(), flags=re.IGNORECASE)
    if not match:
        raise InvalidInput(
            _(
                "“%(value)s” is not an ID. IDs look like %(example)s.",
                value=text,
                example=f"{prefix}-12",
            )
        )
    return int(match.group(1))


async def person_by_matrix_id(session: AsyncSession, matrix_id: str) -> Person:
    """The person with this ID; its server name is compared in lower case (DNS names are
    case-insensitive, and the register stores them so)."""
    person = await session.scalar(
        select(Person).where(Person.matrix_id == normalise_matrix_id(matrix_id))
    )
    if person is None:
        raise NotFound(
            _(
                "%(who)s is not on the party's register. Ask a secretary to add them.",
                who=matrix_id,
            )
        )
    return person


async def assembly_by_slug(session: AsyncSession, slug: str) -> Assembly:
    """The assembly a user means: its slug, else its reference code, else its name (any
    case), as ``harmony assemblies list`` shows them."""
    typed = slug.strip()
    for column in (Assembly.slug, Assembly.reference, Assembly.name):
        found = list(
            await session.scalars(select(Assembly).where(func.lower(column) == typed.lower()))
        )
        if len(found) == 1:
            return found[0]
    raise NotFound(_("There is no assembly called “%(slug)s”.", slug=slug))


@dataclass(frozen=True)
class AssemblyListing:
    slug: str
    reference: str
    name: str


async def list_assemblies(ctx: ServiceContext) -> list[AssemblyListing]:
    """Every assembly with the slug and reference code commands accept, by name."""
    async with ctx.transaction() as session:
        rows = await session.scalars(select(Assembly).order_by(Assembly.name))
        return [AssemblyListing(row.slug, row.reference, row.name) for row in rows]


async def meeting_by_ref(session: AsyncSession, ref: str, *, lock: bool = False) -> Meeting:
    query = select(Meeting).where(Meeting.id == parse_ref("M", ref))
    if lock:
        query = query.with_for_update()
    meeting = await session.scalar(query)
    if meeting is None:
        raise NotFound(_("There is no meeting %(ref)s.", ref=ref.upper()))
    return meeting


async def petition_by_ref(session: AsyncSession, ref: str, *, lock: bool = False) -> Petition:
    query = select(Petition).where(Petition.id == parse_ref("P", ref))
    if lock:
        query = query.with_for_update()
    petition = await session.scalar(query)
    if petition is None:
        raise NotFound(_("There is no petition %(ref)s.", ref=ref.upper()))
    return petition


async def language_of(session: AsyncSession, matrix_id: str, default: str) -> str:
    """The language a person chose (``!language``), or ``default`` for someone who is not
    on the register."""
    language = await session.scalar(
        select(Person.language).where(Person.matrix_id == normalise_matrix_id(matrix_id))
    )
    return language or default
