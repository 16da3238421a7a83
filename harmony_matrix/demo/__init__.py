"""The demo party: the seed's Operational Working Group, a few other assemblies, 40 people.

Used by ``harmony demo`` and by the tests. ``load_demo`` and ``prepare_demo`` build the
database; :mod:`harmony_matrix.demo.live` brings the party up with a local Synapse, the bot
and the web companion. Given a ``server_name``, the people's Matrix IDs move to that
homeserver (``@ana:harmony.uk`` becomes ``@ana:localhost``), so they can log in there.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources

from sqlalchemy import select

from harmony_matrix.constitution.process import PreparationStep
from harmony_matrix.errors import RuleViolation
from harmony_matrix.i18n import Message, _, _n
from harmony_matrix.importers.assemblies_toml import parse_assemblies
from harmony_matrix.importers.members_csv import parse_members
from harmony_matrix.services import debate, meetings, petitions, preparation, registry, roll_call
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.membership import member_ids, record_activity
from harmony_matrix.storage import migrations
from harmony_matrix.storage.models import Assembly, Person, Petition

#: Demo members were last active this long ago, so they count as active (90-day window).
DEMO_ACTIVITY_AGE = timedelta(days=7)
#: How far back the demo party's story begins.
DEMO_HISTORY = timedelta(days=20)


def demo_file(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def demo_id(matrix_id: str, server_name: str | None) -> str:
    """A demo person's Matrix ID, on ``server_name`` when one is given (the localparts
    of members.csv are unique, so no two people meet on one homeserver)."""
    if server_name is None:
        return matrix_id
    localpart = matrix_id[1:].split(":", 1)[0]
    return f"@{localpart}:{server_name}"


def demo_members(server_name: str | None = None) -> str:
    """members.csv, its Matrix IDs on ``server_name`` when given."""
    text = demo_file("members.csv")
    if server_name is None:
        return text
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows[1:]:
        row[0] = demo_id(row[0], server_name)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


async def load_demo(ctx: ServiceContext, server_name: str | None = None) -> None:
    """Import the demo assemblies and people, and make everyone recently active."""
    specs, problems = parse_assemblies(demo_file("assemblies.toml"), ctx.party.reference_prefix)
    report = await registry.import_assemblies(ctx, specs, problems, apply=True)
    assert report.ok, report.rows
    rows, row_problems = parse_members(demo_members(server_name), ctx.party.timezone)
    report = await registry.import_people(ctx, rows, row_problems, apply=True)
    assert report.ok, report.rows
    async with ctx.transaction() as session:
        at = ctx.now() - DEMO_ACTIVITY_AGE
        for assembly in await session.scalars(select(Assembly)):
            for person_id in await member_ids(session, assembly, ctx.now()):
                await record_activity(session, person_id, [assembly.id], at)


#: The demo's General Secretary: her presence marks a database as the demo's own.
DEMO_MARKER = "@ana:harmony.uk"


async def _holds_a_real_party(ctx: ServiceContext, marker: str) -> bool:
    """True when the database has people and is not a demo database: the demo must
    never add its 40 people to, or wipe, a party's real register."""
    if (await migrations.schema_state(ctx.engine)).current is None:
        return False
    async with ctx.transaction() as session:
        people = set(await session.scalars(select(Person.matrix_id).limit(1000)))
    return bool(people) and marker not in people


async def prepare_demo(ctx: ServiceContext, *, reset: bool, server_name: str | None = None) -> None:
    """The demo party in the database: made once, its register refreshed after."""
    if await _holds_a_real_party(ctx, demo_id(DEMO_MARKER, server_name)):
        raise RuleViolation(
            _(
                "This database holds people who are not the demo party's. The demo only "
                "uses an empty database or its own: give it another with --database."
            )
        )
    if reset:
        await migrations.downgrade(ctx.engine, "base")
    await migrations.upgrade(ctx.engine)
    # The demo's Moot was held ten days ago, and nothing opens before its announced
    # start: the register and the history are made on a clock of their own that starts
    # twenty days back and moves on as the story does.
    clock = _DemoClock(ctx.now() - DEMO_HISTORY)
    history = dataclasses.replace(ctx, clock=clock)
    await load_demo(history, server_name)
    await _demo_decisions(history, clock, server_name)


async def run_demo(ctx: ServiceContext, say: Callable[[Message], None], *, reset: bool) -> int:
    await prepare_demo(ctx, reset=reset)
    say(_("The demo party is loaded into %(url)s.", url=_demo_url(ctx)))
    async with ctx.transaction() as session:
        slugs = list(await session.scalars(select(Assembly.slug).order_by(Assembly.id)))
    for slug in slugs:
        found = await registry.assembly_quorum(ctx, slug)
        say(_demo_line(found))
    # .venv/bin is not on the PATH of someone who just ran ./dev demo: say ./dev harmony.
    url = _demo_url(ctx)
    for example in (
        "assemblies list",
        "quorum operational-working-group",
        "petition status P-1",
        "consensus --verify",
    ):
        say(_("Try: %(command)s", command=f"./dev harmony --database {url} {example}"))
    return 0


#: The demo's own decisions, so the README's examples have something to show.
DEMO_PETITION = "Hold a Party Thing on the party's climate policy"
DEMO_QUESTION = "Should the Media Working Group publish a monthly newsletter?"
DEMO_OUTCOME = "Publish a monthly newsletter, in large print and online"


async def _demo_decisions(ctx: ServiceContext, clock: _DemoClock, server_name: str | None) -> None:
    """A petition with a few signatures and one consensus record, made through the use
    cases as people would; once only (a second ``harmony demo`` adds nothing)."""
    async with ctx.transaction() as session:
        if await session.scalar(select(Petition.id).limit(1)) is not None:
            return

    def who(matrix_id: str) -> str:
        return demo_id(matrix_id, server_name)

    await petitions.start_petition(ctx, who(DEMO_MARKER), DEMO_PETITION)
    for signer in ("@bryn:harmony.uk", "@chloe:matrix.org", "@gwen:harmony.uk"):
        await petitions.sign_petition(ctx, who(signer), "P-1")
    media, secretary = "media-working-group", who(DEMO_MARKER)
    called = await meetings.call_moot(ctx, secretary, media, DEMO_QUESTION)
    for step, text in (
        (PreparationStep.FACTS, "Survey of members: 31 of 40 read the party's news online"),
        (PreparationStep.MATERIALS, "A sample issue, large print and screen-reader copies"),
    ):
        await preparation.record_preparation(ctx, secretary, called.ref, step, text)
    await preparation.schedule(
        ctx,
        secretary,
        called.ref,
        ctx.now() + timedelta(days=10),
        place="Community Hall, 1 High St",
        online_url="https://meet.example/harmony",
        accessibility="Step-free entrance, hearing loop, live captions online",
    )
    await preparation.notify(ctx, secretary, called.ref)
    clock.current += timedelta(days=10)
    await roll_call.open_meeting(ctx, secretary, called.ref)
    for present in (DEMO_MARKER, "@chloe:matrix.org", "@gwen:harmony.uk", "@elif:example.org:8448"):
        await roll_call.record_attendance(ctx, who(present), called.ref)
    await debate.start_debate(ctx, secretary, called.ref)
    await debate.add_option(ctx, secretary, called.ref, DEMO_OUTCOME)
    await debate.end_debate(ctx, secretary, called.ref)


class _DemoClock:
    """A clock the demo moves by hand through its own history."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current


def _demo_line(found: registry.AssemblyQuorum) -> Message:
    quorum = found.quorum
    params = {"name": found.name, "reference": found.reference, "needed": quorum.needed}
    if quorum.reachable:
        return _n(
            "%(name)s (%(reference)s): %(count)s active member, quorum %(needed)s",
            "%(name)s (%(reference)s): %(count)s active members, quorum %(needed)s",
            quorum.active_population,
            **params,
        )
    return _n(
        "%(name)s (%(reference)s): %(count)s active member, quorum %(needed)s (cannot be "
        "reached yet)",
        "%(name)s (%(reference)s): %(count)s active members, quorum %(needed)s (cannot be "
        "reached yet)",
        quorum.active_population,
        **params,
    )


def _demo_url(ctx: ServiceContext) -> str:
    return ctx.engine.url.render_as_string(hide_password=True).replace("+aiosqlite", "")
