"""Running Harmony: the bot, the web companion, or both in one process.

``harmony run`` (the production entry point), ``harmony bot`` and ``harmony web`` all
come here. Each part is a coroutine that runs until its own stop event is set; one
Ctrl-C or SIGTERM sets them all, and a part that ends on its own (an error, or a return
nobody asked for) stops the others and is named in the exit status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO

from harmony_matrix.config import Config
from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import Message, _
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage import migrations

log = logging.getLogger(__name__)

Say = Callable[[Message], None]
#: A part of Harmony: runs until the event is set, then returns with nothing half done.
Part = Callable[[asyncio.Event], Awaitable[None]]


class PartName(StrEnum):
    BOT = "bot"
    WEB = "web"


#: The exit status when a part fails unexpectedly, so a supervisor knows which one
#: (2 stays "bad input", as for every command).
EXIT_STATUS = {PartName.BOT: 3, PartName.WEB: 4}


class PartFailed(Exception):
    """A part ended while it should have been running; the others were stopped."""

    def __init__(self, part: PartName, cause: BaseException | None) -> None:
        super().__init__(f"{part} failed: {type(cause).__name__ if cause else 'ended'}")
        self.part = part
        self.cause = cause


def check_config(config: Config, parts: frozenset[PartName]) -> None:
    """What a start checks before anything starts; raises InvalidInput naming the option.
    ([web] and the secret files are checked by load_config already.)"""
    if PartName.BOT in parts:
        config.matrix.check_for_bot()
    if PartName.WEB in parts and 0 < len(config.security.key()) < 16:
        # A short key would only be refused when the first ballot opens.
        raise InvalidInput(
            _(
                "Error in configuration at '%(path)s': %(reason)s",
                path="security.secret_key_file"
                if config.security.secret_key_file
                else "security.secret_key",
                reason=_("at least 16 characters"),
            )
        )


async def run_parts(parts: Mapping[PartName, Part], stop: asyncio.Event) -> None:
    """Run every part until ``stop`` is set or one of them ends; then stop them all and
    wait for each. Raises :class:`PartFailed` for the first part that ended on its own
    or failed while stopping."""
    own = {name: asyncio.Event() for name in parts}
    tasks = {
        asyncio.create_task(_as_coroutine(part(own[name])), name=str(name)): name
        for name, part in parts.items()
    }
    stopping = asyncio.create_task(stop.wait())
    failed: PartName | None = None
    try:
        done, _pending = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
        failed = next((tasks[task] for task in tasks if task in done), None)
    finally:
        for event in own.values():
            event.set()
        stopping.cancel()
        # If we are cancelled ourselves, the parts still get to finish cleanly.
        results = await asyncio.gather(*tasks, return_exceptions=True)
    outcome = dict(zip(tasks.values(), results, strict=True))
    if failed is not None:
        error = outcome[failed]
        raise PartFailed(failed, error if isinstance(error, BaseException) else None)
    for name, result in outcome.items():
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise PartFailed(name, result)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


def stop_on_signals(stop: asyncio.Event) -> None:
    """Ctrl-C and SIGTERM set ``stop`` (once for every part)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def run(config: Config, parts: frozenset[PartName], say: Say) -> None:
    """Check, then run the chosen parts until Ctrl-C or SIGTERM."""
    check_config(config, parts)
    configure_logging()
    chosen: dict[PartName, Part] = {}
    ctx: ServiceContext | None = None
    if PartName.BOT in parts:
        ctx = ServiceContext.from_config(config)
        await migrations.require_current_schema(ctx.engine)
        bot_ctx = ctx

        async def bot(stop: asyncio.Event) -> None:
            await run_bot(config, bot_ctx, stop, say)

        chosen[PartName.BOT] = bot
    if PartName.WEB in parts:

        async def web(stop: asyncio.Event) -> None:
            await run_web(config, stop, say)

        chosen[PartName.WEB] = web
    stop = asyncio.Event()
    stop_on_signals(stop)
    try:
        await run_parts(chosen, stop)
    finally:
        if ctx is not None:
            await ctx.engine.dispose()


class JsonLines(logging.Formatter):
    """One JSON object a line (time, level, logger, message, and the traceback if any),
    for a log collector; the redaction filter has already run on the record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(stream: TextIO | None = None) -> None:
    """Log records on stderr, ballot links and client addresses removed: plain text for
    a person at a terminal, JSON lines for anything else (a container's log collector)."""
    from harmony_matrix.companion.security import install_log_redaction

    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if stream.isatty():
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonLines())
    # force: a handler set up earlier (by a library, at import) would otherwise win.
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # The homeserver's replies are logged by nio at INFO and above; its DEBUG would show
    # message bodies, ballot links among them.
    logging.getLogger("nio").setLevel(logging.WARNING)
    # After basicConfig, so the root handler gets it too: aiohttp's own error records
    # ("Error handling request from <address>", a request line in a parser error, a
    # traceback) and any other record lose ballot links and client addresses.
    install_log_redaction()


async def run_bot(config: Config, ctx: ServiceContext, stop: asyncio.Event, say: Say) -> None:
    # Imported here: the other commands need neither matrix-nio nor its start-up time.
    from harmony_matrix.bot.app import Bot

    bot = Bot(config, ctx)
    bot.stop = stop  # before run(): every loop of the bot waits on this event
    say(_("The bot %(user)s is starting; stop it with Ctrl-C.", user=config.matrix.user_id))
    await bot.run()
    say(_("The bot has stopped."))


async def run_web(config: Config, stop: asyncio.Event, say: Say) -> None:
    # Imported here, like the bot: the other commands need no web server.
    from aiohttp import web

    from harmony_matrix.companion.app import app_for_config
    from harmony_matrix.companion.security import AccessLogger

    if config.web.public_base_url.startswith("https://") and not config.web.trust_forwarded_for:
        # Behind a TLS proxy every member seems to come from the proxy's address, and
        # the rate limit would then be shared by the whole party.
        log.warning(
            "[web] public_base_url is https but trust_forwarded_for is false: if a proxy "
            "of yours terminates TLS, ballot rate limits count all members as one client"
        )
    runner = web.AppRunner(app_for_config(config), access_log_class=AccessLogger)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.web.host, config.web.port)
        try:
            await site.start()
        except OSError as error:
            raise InvalidInput(
                _(
                    "Cannot listen on %(host)s port %(port)s: %(reason)s.",
                    host=config.web.host,
                    port=config.web.port,
                    reason=error.strerror or type(error).__name__,
                )
            ) from error
        say(
            _(
                "The web companion is at %(url)s (listening on %(host)s port %(port)s); "
                "stop it with Ctrl-C.",
                url=config.web.public_base_url,
                host=config.web.host,
                port=config.web.port,
            )
        )
        await stop.wait()
    finally:
        await runner.cleanup()
    say(_("The web companion has stopped."))
