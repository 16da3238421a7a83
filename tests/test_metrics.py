"""The metrics module on its own: status classes, methods, and a database that is away."""

from __future__ import annotations

from prometheus_client import generate_latest

from harmony_matrix.metrics import BotMetrics, WebMetrics, exposition
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.database import make_engine


def test_requests_are_labelled_by_status_class_and_known_methods_only():
    metrics = WebMetrics()
    metrics.observe("vote_cast", "POST", 303, 0.2)
    metrics.observe("vote_cast", "POST", 200, 0.1)
    metrics.observe("unmatched", "SEARCH", 404, 0.01)
    count = metrics.registry.get_sample_value
    name = "harmony_web_request_duration_seconds_count"
    assert count(name, {"route": "vote_cast", "method": "POST", "status": "3xx"}) == 1
    assert count(name, {"route": "vote_cast", "method": "POST", "status": "2xx"}) == 1
    assert count(name, {"route": "unmatched", "method": "other", "status": "4xx"}) == 1


def test_two_apps_in_one_process_keep_their_own_figures():
    first, second = BotMetrics(), BotMetrics()
    first.command_handled("whoami", "ok")
    assert (
        first.registry.get_sample_value(
            "harmony_bot_commands_total", {"command": "whoami", "outcome": "ok"}
        )
        == 1
    )
    assert "harmony_bot_commands_total{" not in generate_latest(second.registry).decode()


async def test_a_database_that_is_away_is_a_figure_not_a_failed_scrape():
    # A server nobody listens for (port 1), rather than an SQLite file that cannot be
    # opened: aiosqlite's thread for a connection that failed outlives the test's loop.
    away = ServiceContext(engine=make_engine("postgresql://harmony@127.0.0.1:1/away"))
    metrics = WebMetrics()
    try:
        text = (await exposition(metrics.registry, metrics.database, away)).decode()
    finally:
        await away.engine.dispose()
    assert "harmony_database_up 0.0" in text
    assert "process_" in text or "harmony_web_request_duration_seconds" in text
