"""What every use case needs: the database, the rules, the party and the clock."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from harmony_matrix.config import Config, PartySettings
from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.errors import RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.storage.database import make_engine, make_sessions
from harmony_matrix.storage.key_store import RoundKeyStore

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class UnitOfWork:
    """Several use cases in one transaction (see :meth:`ServiceContext.unit_of_work`)."""

    session: AsyncSession
    #: Work that must wait until the transaction is committed (destroying a counted
    #: round's key, scrubbing): run in order once it is, dropped if it rolls back.
    after_commit: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    #: A use case inside failed (refused, say): what it wrote is still in the
    #: transaction, so the caller must not commit it (it rolls back and records only
    #: what is left to record).
    failed: bool = False


#: The unit of work in progress in this task, if any.
_unit_of_work: ContextVar[UnitOfWork | None] = ContextVar("unit_of_work", default=None)


def current_unit_of_work() -> UnitOfWork | None:
    """The unit of work in progress in this task, if any (to see whether it failed)."""
    return _unit_of_work.get()


@dataclass
class ServiceContext:
    engine: AsyncEngine
    rules: Rules = field(default_factory=Rules)
    party: PartySettings = field(default_factory=PartySettings)
    #: Injected so tests and the demo can move time (a 14-day limit, a 90-day window).
    clock: Callable[[], datetime] = utc_now
    #: Signs ballot links ([security] secret_key); ballots refuse to open without it.
    secret_key: bytes = b""
    #: Where the web companion is reached ([web] public_base_url), for ballot links.
    public_base_url: str = "http://127.0.0.1:8080"
    ballot_open_hours: int = 72
    #: The private keys of open rounds ([security] ballot_keys_path).
    ballot_keys_path: Path = Path("var/ballot-keys")
    #: The party's moderating rules ([party] moderating_rules_file), read at start-up;
    #: empty: Harmony's default rules (services/meeting_announcements.py).
    moderating_rules: str = ""

    def __post_init__(self) -> None:
        self.sessions: async_sessionmaker[AsyncSession] = make_sessions(self.engine)

    @classmethod
    def from_config(cls, config: Config) -> ServiceContext:
        # Files first: a setting that cannot be used stops the start before any engine.
        moderating_rules = config.party.moderating_rules()
        return cls(
            engine=make_engine(config.database.url),
            rules=config.rules,
            party=config.party,
            secret_key=config.security.key(),
            public_base_url=config.web.public_base_url,
            ballot_open_hours=config.security.ballot_open_hours,
            ballot_keys_path=Path(config.security.ballot_keys_path),
            moderating_rules=moderating_rules,
        )

    def ballot_key(self) -> bytes:
        """The secret key, which signs ballot links and seals ballots; refused if short."""
        if len(self.secret_key) < 16:
            raise RuleViolation(
                _(
                    "Ballots need a secret key of at least 16 characters: set [security] "
                    "secret_key or secret_key_file in the configuration."
                )
            )
        return self.secret_key

    @property
    def round_keys(self) -> RoundKeyStore:
        return RoundKeyStore(self.ballot_keys_path, self.secret_key)

    def now(self) -> datetime:
        return self.clock()

    def defer_until_committed(self, work: Callable[[], Awaitable[object]]) -> bool:
        """Inside a unit of work, keep ``work`` for after its commit and return True;
        outside one (each use case commits itself), return False: do it now."""
        unit = _unit_of_work.get()
        if unit is None:
            return False
        unit.after_commit.append(work)
        return True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One use case, one transaction: committed on success, rolled back on error.

        Inside a :meth:`unit_of_work` the use case joins that transaction instead; an
        error marks the unit of work failed (it is then rolled back whole, which costs
        nothing on the way that succeeds, where a savepoint per use case would).
        """
        work = _unit_of_work.get()
        if work is not None:
            try:
                yield work.session
            except BaseException:
                work.failed = True
                raise
            return
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One transaction around several use cases and the caller's own writes,
        committed when the block ends normally, rolled back when it raises.

        The bot handles a command in one: the record that the event was handled, the
        command's effects and the queued reply are committed together or not at all, so
        a command is never acted on twice nor answered without being acted on. If a use
        case inside fails (``failed``), the caller raises to roll everything back.
        """
        if _unit_of_work.get() is not None:
            raise RuntimeError("units of work do not nest")
        async with self.sessions() as session, session.begin():
            work = UnitOfWork(session)
            token = _unit_of_work.set(work)
            try:
                yield work
            finally:
                _unit_of_work.reset(token)
        # Committed.
        for later in work.after_commit:
            try:
                await later()
            except Exception:
                # What was deferred is retried by its own means (the ballot clean-up
                # at the next open or close); the command itself has succeeded.
                log.exception("Work after a committed unit of work failed")
