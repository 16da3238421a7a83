"""A small party whose people are real users of the test homeserver(s)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from harmony_matrix.homeserver import RegisteredUser
from harmony_matrix.importers.assemblies_toml import parse_assemblies
from harmony_matrix.importers.members_csv import parse_members
from harmony_matrix.services import registry
from harmony_matrix.services.context import ServiceContext

ASSEMBLIES = """
[[assembly]]
slug = "working-group"
name = "Test Working Group"
subtitle = "Helping the tests work"
purpose = "Keeps the tests honest."
reference = "HPUK-ASSE-2025-09-4"
kind = "working_group"
visibility = "public"
open = true
automatic_membership = "none"

[[assembly]]
slug = "committee"
name = "Test Committee"
purpose = "Meets in private."
reference = "HPUK-ASSE-2025-09-5"
kind = "committee"
visibility = "private"
open = false
automatic_membership = "none"
"""

HEADER = "matrix_id,display_name,status,language,suspended_from,suspended_until,assemblies,offices"


@dataclass
class Party:
    bot: RegisteredUser
    secretary: RegisteredUser
    ann: RegisteredUser
    ben: RegisteredUser
    suspended: RegisteredUser
    outsider: RegisteredUser  # on the homeserver, not on the register


Register = Callable[..., Awaitable[RegisteredUser]]


async def local_party(
    ctx: ServiceContext, register: Register, *, ann_language: str = "en"
) -> Party:
    party = Party(
        bot=await register("harmony", admin=True),
        secretary=await register("sec"),
        ann=await register("ann"),
        ben=await register("ben"),
        suspended=await register("sus"),
        outsider=await register("out"),
    )
    specs, problems = parse_assemblies(ASSEMBLIES, ctx.party.reference_prefix)
    report = await registry.import_assemblies(ctx, specs, problems, apply=True)
    assert report.ok, report.rows
    rows = [
        HEADER,
        f"{party.secretary.user_id},Sam Secretary,member,en,,,working-group:secretary;"
        "committee:secretary,",
        f"{party.ann.user_id},Ann <b>Member</b>,member,{ann_language},,,working-group,",
        f"{party.ben.user_id},Ben Participant,participant,en,,,working-group,",
        f"{party.suspended.user_id},Sue Spended,member,en,2026-01-01,2099-12-31,working-group,",
    ]
    await _import(ctx, rows)
    return party


async def members_of_working_group(
    ctx: ServiceContext, users: Sequence[RegisteredUser], *, with_assemblies: bool = True
) -> None:
    """Put ``users`` on the register as members of the working group (from any homeserver:
    a party spread over two servers is the same register)."""
    if with_assemblies:
        specs, problems = parse_assemblies(ASSEMBLIES, ctx.party.reference_prefix)
        report = await registry.import_assemblies(ctx, specs, problems, apply=True)
        assert report.ok, report.rows
    rows = [HEADER] + [
        f"{user.user_id},Member {index},member,en,,,working-group,"
        for index, user in enumerate(users, start=1)
    ]
    await _import(ctx, rows)


async def _import(ctx: ServiceContext, rows: list[str]) -> None:
    people, row_problems = parse_members("\n".join(rows) + "\n", ctx.party.timezone)
    report = await registry.import_people(ctx, people, row_problems, apply=True)
    assert report.ok, report.rows
