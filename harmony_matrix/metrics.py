"""Prometheus metrics of the web companion and of the bot (``/metrics``).

Each app has a registry of its own, never prometheus_client's global one: two apps in
one process (``harmony run``, the tests) then never mix or double their figures.

Secret ballots: no label ever holds a person, a Matrix ID, a room, a link or a token.
Labels come from closed sets (the declared commands, the named routes, a few outcomes)
or from the public record (a meeting's reference and a round's number), so a request
or a message can neither reveal anything through a metric nor add series at will.
"""

from __future__ import annotations

import logging

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy.exc import SQLAlchemyError

from harmony_matrix.services import figures
from harmony_matrix.services.context import ServiceContext

log = logging.getLogger(__name__)

#: The Content-Type of the text format every Prometheus reads (our names need nothing
#: newer; prometheus-client's "latest", 1.0.0, is not understood by Prometheus 2).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: Methods reported by name; any other (a client can send any word) is "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request no route matched (a 404, a 405): its path is never used,
#: since /vote/<link> paths hold secret tokens and any path would add a series.
UNMATCHED = "unmatched"


class DatabaseGauges:
    """Figures read from the database when scraped: the outbox and the ballot rounds.
    The same in every process (they share the database), so aggregate them with max()."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "harmony_database_up",
            "1 if the database answered the last scrape's queries, else 0.",
            registry=registry,
        )
        self.unsent = Gauge(
            "harmony_outbox_unsent_messages",
            "Messages in the outbox neither sent nor given up.",
            registry=registry,
        )
        self.oldest = Gauge(
            "harmony_outbox_oldest_unsent_seconds",
            "Age of the oldest outbox message due to be sent and not yet sent (0 if none).",
            registry=registry,
        )
        self.failed = Gauge(
            "harmony_outbox_failed_messages",
            "Messages the bot gave up on (kind: direct or room).",
            ["kind"],
            registry=registry,
        )
        self.ballots = Gauge(
            "harmony_ballots_cast",
            "Ballots cast in each open round and each round closed in the last 7 days.",
            ["meeting", "round", "state"],
            registry=registry,
        )

    async def refresh(self, ctx: ServiceContext) -> None:
        try:
            outbox = await figures.outbox_figures(ctx)
            rounds = await figures.round_figures(ctx)
        except (SQLAlchemyError, OSError) as error:
            # The scrape still answers (with the process's own figures): a database that
            # is away is what the operator needs to see, not a failed scrape.
            log.warning("Metrics: the database did not answer: %s", type(error).__name__)
            self.up.set(0)
            return
        self.up.set(1)
        self.unsent.set(outbox.unsent)
        self.oldest.set(outbox.oldest_unsent_seconds)
        self.failed.labels(kind="direct").set(outbox.failed_direct)
        self.failed.labels(kind="room").set(outbox.failed_room)
        # Rounds that closed long ago drop out: start from no series at all.
        self.ballots.clear()
        for round_ in rounds:
            self.ballots.labels(
                meeting=round_.meeting, round=str(round_.number), state=round_.status.value
            ).set(round_.ballots)


class WebMetrics:
    """The web companion's metrics: request latencies, and the database's figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Histogram(
            "harmony_web_request_duration_seconds",
            "Time to answer a request, by route name, method and status class.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.database = DatabaseGauges(self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(
            route=route,
            method=method if method in KNOWN_METHODS else "other",
            status=f"{status // 100}xx",
        ).observe(seconds)


class BotMetrics:
    """The bot's metrics: commands handled, whether it is the active bot, its sync, and
    the database's figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.commands = Counter(
            "harmony_bot_commands",
            "Commands handled, by command (as declared, or 'unknown') and outcome.",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.active = Gauge(
            "harmony_bot_active",
            "1 while this bot holds the lock and acts, 0 while it stands by.",
            registry=self.registry,
        )
        self.since_sync = Gauge(
            "harmony_bot_seconds_since_sync",
            "Seconds since the bot last handled a sync response (-1: none yet).",
            registry=self.registry,
        )
        self.database = DatabaseGauges(self.registry)

    def command_handled(self, command: str, outcome: str) -> None:
        self.commands.labels(command=command, outcome=outcome).inc()


async def exposition(
    registry: CollectorRegistry, database: DatabaseGauges, ctx: ServiceContext
) -> bytes:
    """The registry in the text format, the database's figures read just now."""
    await database.refresh(ctx)
    return generate_latest(registry)
