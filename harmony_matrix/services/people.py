"""A person's own view of the register: who they are, their roles, their language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from harmony_matrix.constitution.eligibility import Status, is_suspended
from harmony_matrix.errors import InvalidInput, NotFound
from harmony_matrix.i18n import (
    Message,
    _,
    available_languages,
    list_of,
    member_words,
    normalise_language,
    verbatim,
)
from harmony_matrix.matrix_ids import check_matrix_id, normalise_matrix_id
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import person_by_matrix_id
from harmony_matrix.services.membership import GENERAL_SECRETARY
from harmony_matrix.services.records import audit
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyMembership,
    AutomaticMembership,
    Office,
    Person,
    Role,
)


@dataclass(frozen=True)
class Sender:
    """What the bot needs to know about whoever sent a command."""

    person_id: int
    matrix_id: str
    display_name: str
    language: str
    suspended: bool
    #: None while suspended means "until further notice".
    suspended_until: datetime | None


async def sender(ctx: ServiceContext, matrix_id: str) -> Sender | None:
    """The person on the register with this Matrix ID, or None if they are not on it."""
    async with ctx.transaction() as session:
        person = await session.scalar(
            select(Person).where(Person.matrix_id == normalise_matrix_id(matrix_id))
        )
        if person is None:
            return None
        return Sender(
            person_id=person.id,
            matrix_id=person.matrix_id,
            display_name=person.display_name,
            language=person.language,
            suspended=is_suspended(person.suspended_from, person.suspended_until, ctx.now()),
            suspended_until=person.suspended_until,
        )


@dataclass(frozen=True)
class AssemblyRoles:
    slug: str
    name: str
    #: The roles listed on the register, in a fixed order; a member through the
    #: assembly's automatic rule only (every participant...) holds ``member``.
    roles: tuple[Role, ...]


@dataclass(frozen=True)
class WhoAmI:
    matrix_id: str
    display_name: str
    status: Status
    suspended: bool
    suspended_until: datetime | None
    language: str
    assemblies: tuple[AssemblyRoles, ...]
    #: Party offices held now, by their stored title ("general_secretary").
    offices: tuple[str, ...]

    @property
    def is_member(self) -> bool:
        """A full Member of the party (else a Participant)."""
        return self.status is Status.MEMBER


ROLE_NAMES = {
    Role.MEMBER: _("member"),
    Role.SECRETARY: _("secretary"),
    Role.MODERATOR: _("moderator"),
}
OFFICE_NAMES = {GENERAL_SECRETARY: _("General Secretary")}


def role_name(role: Role) -> Message:
    return ROLE_NAMES[role]


def office_name(title: str) -> Message:
    """A party office; one Harmony has no name for is shown as stored, readably."""
    return OFFICE_NAMES.get(title) or verbatim(title.replace("_", " "))


_ROLE_ORDER = (Role.SECRETARY, Role.MODERATOR, Role.MEMBER)


async def whoami(ctx: ServiceContext, matrix_id: str, *, person_id: int | None = None) -> WhoAmI:
    """The person's status, suspension, assemblies with roles, offices and language.

    NotFound when the Matrix ID is not on the register. ``person_id``: the person already
    found by :func:`sender` in the same transaction, taken from the session, unread.
    """
    now = ctx.now()
    async with ctx.transaction() as session:
        found = await session.get(Person, person_id) if person_id is not None else None
        person = found or await person_by_matrix_id(session, matrix_id)
        # Only the columns shown: an assembly's row also holds its long texts.
        listed = await session.execute(
            select(Assembly.id, Assembly.slug, Assembly.name, AssemblyMembership.role)
            .join(AssemblyMembership, AssemblyMembership.assembly_id == Assembly.id)
            .where(
                AssemblyMembership.person_id == person.id,
                AssemblyMembership.since <= now,
                or_(AssemblyMembership.until.is_(None), AssemblyMembership.until > now),
            )
        )
        roles: dict[int, set[Role]] = {}
        assemblies: dict[int, tuple[str, str]] = {}
        for assembly_id, slug, name, role in listed:
            assemblies[assembly_id] = (slug, name)
            roles.setdefault(assembly_id, set()).add(role)
        rules = [AutomaticMembership.EVERYONE]
        if person.status is Status.MEMBER:
            rules.append(AutomaticMembership.MEMBERS)
        automatic = await session.execute(
            select(Assembly.id, Assembly.slug, Assembly.name).where(
                Assembly.automatic_membership.in_(rules)
            )
        )
        for assembly_id, slug, name in automatic:
            assemblies.setdefault(assembly_id, (slug, name))
            roles.setdefault(assembly_id, {Role.MEMBER})
        offices = await session.scalars(
            select(Office.title)
            .where(
                Office.person_id == person.id,
                Office.since <= now,
                or_(Office.until.is_(None), Office.until > now),
            )
            .order_by(Office.title)
        )
        return WhoAmI(
            matrix_id=person.matrix_id,
            display_name=person.display_name,
            status=person.status,
            suspended=is_suspended(person.suspended_from, person.suspended_until, now),
            suspended_until=person.suspended_until,
            language=person.language,
            assemblies=tuple(
                AssemblyRoles(
                    slug=slug,
                    name=name,
                    roles=tuple(role for role in _ROLE_ORDER if role in roles[assembly_id]),
                )
                for assembly_id, (slug, name) in sorted(
                    assemblies.items(), key=lambda item: item[1][1]
                )
            ),
            offices=tuple(dict.fromkeys(offices)),
        )


async def set_language(ctx: ServiceContext, matrix_id: str, code: str) -> str:
    """Set the person's language to one Harmony has a catalog for; returns its code.

    A suspended person may still choose the language they are written to in.
    """
    language = normalise_language(code)
    if language is None:
        raise InvalidInput(
            _(
                "Harmony does not speak “%(code)s” yet. Choose one of: %(languages)s.",
                code=code,
                languages=", ".join(available_languages()),
            )
        )
    async with ctx.transaction() as session:
        person = await person_by_matrix_id(session, matrix_id)
        if person.language != language:
            audit(
                session,
                ctx.now(),
                person,
                "person.language",
                previous=person.language,
                language=language,
            )
            person.language = language
        return language


@dataclass(frozen=True)
class PersonRef:
    """Someone on the register, as a command names them."""

    matrix_id: str
    display_name: str


def _same_name(name: str) -> str:
    """A display name as compared: any case, any run of spaces."""
    return " ".join(name.split()).casefold()


async def find_person(ctx: ServiceContext, text: str) -> PersonRef:
    """The person someone means by ``text``: their Matrix ID (@name:server), else their
    display name in any case if only one person has it.

    InvalidInput when several people have that name (it lists their Matrix IDs, so the
    asker can give one), NotFound when nobody on the register is called that.
    """
    typed = text.strip()
    if not typed:
        raise InvalidInput(_("Say who: their Matrix ID, or their name in quotes."))
    async with ctx.transaction() as session:
        if typed.startswith("@") and ":" in typed:
            person = await person_by_matrix_id(session, check_matrix_id(typed))
            return PersonRef(person.matrix_id, person.display_name)
        # Compared here rather than in SQL: SQLite's lower() knows only ASCII letters,
        # and names are often not ASCII ("Chloé").
        wanted = _same_name(typed)
        rows = await session.execute(
            select(Person.matrix_id, Person.display_name).order_by(Person.matrix_id)
        )
        found = [PersonRef(mid, name) for mid, name in rows if _same_name(name) == wanted]
    if len(found) == 1:
        return found[0]
    if found:
        raise InvalidInput(
            _(
                "Several people are called “%(name)s”: %(matrix_ids)s. Give the Matrix ID "
                "of the one you mean.",
                name=member_words(typed),
                matrix_ids=list_of(person.matrix_id for person in found),
            )
        )
    raise NotFound(
        _(
            "Nobody on the party's register is called “%(name)s”. Give their Matrix ID "
            "(@name:server), or ask a secretary to add them.",
            name=member_words(typed),
        )
    )
