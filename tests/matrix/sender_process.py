"""The outbox sender as a process of its own, for the crash tests: it restores the bot's
device from a stored session, drains the outbox and exits when nothing is left (status 0),
or stops cleanly on SIGTERM (status 0, the message in hand finished).

    python -m tests.matrix.sender_process SESSION.json DATABASE_URL
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from nio import AsyncClient

from harmony_matrix.bot.sender import OutboxSender
from harmony_matrix.bot.session import client_config
from harmony_matrix.services import delivery
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.database import make_engine


async def bot_client(session: dict[str, str]) -> AsyncClient:
    """The bot's device as the session file describes it (keys in its crypto store)."""
    await asyncio.to_thread(Path(session["store_path"]).mkdir, parents=True, exist_ok=True)
    client = AsyncClient(
        session["homeserver"],
        session["user_id"],
        device_id=session["device_id"],
        store_path=session["store_path"],
        config=client_config(),
    )
    client.restore_login(session["user_id"], session["device_id"], session["access_token"])
    if client.should_upload_keys:
        await client.keys_upload()
    return client


async def main(session_file: str, database_url: str) -> int:
    session = json.loads(await asyncio.to_thread(Path(session_file).read_text, encoding="utf-8"))
    client = await bot_client(session)
    # Ballot messages need the secret key that signs their links (the tests' key).
    secret_key = os.environ.get("HARMONY_TEST_SECRET_KEY", "").encode()
    ctx = ServiceContext(engine=make_engine(database_url), secret_key=secret_key)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    sender = OutboxSender(client, ctx, poll_seconds=0.2)
    task = asyncio.create_task(sender.run(stop))
    try:
        while not stop.is_set() and not task.done():
            await asyncio.sleep(0.2)
            if not await delivery.due_messages(ctx, 1) and await delivery.next_due_at(ctx) is None:
                stop.set()
        await task
    finally:
        await client.close()
        await ctx.engine.dispose()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
