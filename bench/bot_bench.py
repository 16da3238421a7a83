"""Benchmark Harmony's bot against a bare matrix-nio echo bot on the same Synapse.

One throw-away Synapse (the test suite's, from harmony_matrix.homeserver), each bot in a
process of its own (as in production: `harmony bot`, and the echo bot), the member in the
benchmark's process, in one run:
- a member sends N commands (default 200) to each bot, alternating, each in its own
  room: `!whoami` to Harmony's bot (which reads the register, records the event as
  handled, queues its answer in the outbox and delivers it) and `!echo` to a bare nio
  bot that answers straight from its sync callback. The round trip is from the member's
  send to the member's sync showing the reply; median and p95 of each, and Harmony's
  overhead (its median minus the echo bot's). Target: overhead <= 10 ms.
- the delivery of M direct messages (default 500) to M members, queued in the database
  (as a use case in another process queues them): first contact (each DM room created,
  invited and recorded), then a second batch into the existing rooms; timed from the
  first message delivered to the last (the bot notices rows other processes queue within
  its 3-second poll; that wait is not the sender's speed).

    .venv/bin/python bench/bot_bench.py
    .venv/bin/python bench/bot_bench.py --commands 50 --dms 50     # quicker

Results go to bench/results/bot_bench.json (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import logging
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    MatrixRoom,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harmony_matrix.homeserver import (  # noqa: E402
    LocalSynapse,
    RegisteredUser,
    ServerConfig,
    ensure_synapse,
    free_port,
)
from harmony_matrix.i18n import _  # noqa: E402
from harmony_matrix.services.context import ServiceContext  # noqa: E402
from harmony_matrix.services.records import direct_message  # noqa: E402
from harmony_matrix.storage import migrations  # noqa: E402
from harmony_matrix.storage.database import make_engine  # noqa: E402
from harmony_matrix.storage.models import OutboxMessage, Person  # noqa: E402
from tests.matrix.party import local_party  # noqa: E402

TARGET_OVERHEAD_MS = 10.0


class EchoBot:
    """The peer: the smallest useful nio bot, answering `!echo` from its sync callback."""

    def __init__(self, user: RegisteredUser) -> None:
        self.client = AsyncClient(user.homeserver, user.user_id, config=AsyncClientConfig())
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.client.add_event_callback(self._on_message, RoomMessageText)
        self.client.add_event_callback(self._on_invite, InviteMemberEvent)
        self.started = False

    async def _on_invite(self, room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key == self.client.user_id and event.membership == "invite":
            await self.client.join(room.room_id)

    async def _on_message(self, room: MatrixRoom, event: RoomMessageText) -> None:
        if not self.started or not event.body.startswith("!echo"):
            return
        await self.client.room_send(
            room.room_id,
            "m.room.message",
            # The shape of Harmony's answers, so that the homeserver's work is the same
            # for both (a mention costs it push-rule work): only the bots differ.
            {
                "msgtype": "m.notice",
                "body": event.body,
                "format": "org.matrix.custom.html",
                "formatted_body": html.escape(event.body),
                "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}},
                "m.mentions": {"user_ids": [event.sender]},
            },
        )

    async def run(self) -> None:
        await self.client.sync(timeout=0)
        self.started = True
        await self.client.sync_forever(timeout=30_000)


class Member:
    def __init__(self, user: RegisteredUser) -> None:
        self.client = AsyncClient(user.homeserver, user.user_id, config=AsyncClientConfig())
        self.client.restore_login(user.user_id, user.device_id, user.access_token)

    async def room_with(self, bot_id: str) -> str:
        created = await self.client.room_create(invite=[bot_id])
        assert isinstance(created, RoomCreateResponse), created
        return str(created.room_id)

    async def round_trip(self, room_id: str, body: str) -> float:
        start = time.perf_counter()
        sent = await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": body}
        )
        assert isinstance(sent, RoomSendResponse), sent
        while True:
            response = await self.client.sync(timeout=10_000)
            assert isinstance(response, SyncResponse), response
            for event in (
                response.rooms.join.get(room_id, None).timeline.events
                if (room_id in response.rooms.join)
                else []
            ):
                relates = event.source.get("content", {}).get("m.relates_to", {})
                if relates.get("m.in_reply_to", {}).get("event_id") == sent.event_id:
                    return (time.perf_counter() - start) * 1000

    async def wait_joined(self, room_id: str, user_id: str) -> None:
        for _attempt in range(100):
            members = await self.client.joined_members(room_id)
            if user_id in [m.user_id for m in getattr(members, "members", [])]:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{user_id} never joined {room_id}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def deliver_batch(ctx: ServiceContext, people: list[str], batch: int) -> float:
    """Queue one DM per person and wait until the outbox shows them all delivered; the
    seconds from the first delivery to the last, as the bot recorded them."""
    keys = [f"bench:{batch}:{matrix_id}" for matrix_id in people]
    async with ctx.transaction() as session:
        for matrix_id, key in zip(people, keys, strict=True):
            person = await session.scalar(select(Person).where(Person.matrix_id == matrix_id))
            assert person is not None
            await direct_message(
                session, ctx.now(), person, message=_("There is a problem"), dedupe_key=key
            )
    done = OutboxMessage.dedupe_key.in_(keys)
    while True:
        async with ctx.transaction() as session:
            unsettled = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(done, OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
            )
            if not unsettled:
                first, last, failed = (
                    await session.execute(
                        select(
                            func.min(OutboxMessage.sent_at),
                            func.max(OutboxMessage.sent_at),
                            func.count(OutboxMessage.failed_at),
                        ).where(done)
                    )
                ).one()
                assert failed == 0, f"{failed} direct messages failed"
                return float((last - first).total_seconds())
        await asyncio.sleep(0.2)


def harmony_bot(work: Path, url: str, user: RegisteredUser) -> subprocess.Popen[bytes]:
    config = work / "harmony.toml"
    config.write_text(
        f"""[database]
url = "{url}"

[matrix]
homeserver = "{user.homeserver}"
user_id = "{user.user_id}"
password = "{user.password}"
store_path = "{work / "store"}"
encrypt_rooms = false
"""
    )
    harmony = Path(sys.executable).parent / "harmony"
    log = (work / "bot.log").open("wb")
    return subprocess.Popen(
        [str(harmony), "--config", str(config), "bot"], stdout=log, stderr=subprocess.STDOUT
    )


def echo_bot(work: Path, user: RegisteredUser) -> subprocess.Popen[bytes]:
    log = (work / "echo.log").open("wb")
    return subprocess.Popen(
        [sys.executable, __file__, "--echo", json.dumps(user.__dict__)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def main(commands: int, dms: int) -> dict[str, object]:
    logging.basicConfig(level=logging.WARNING)
    python = ensure_synapse(lambda line: print(line, flush=True))
    work = Path(tempfile.mkdtemp(prefix="harmony-bot-bench-"))
    server = LocalSynapse(ServerConfig(work / "synapse", free_port()), python)
    server.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        url = f"sqlite:///{work}/harmony.db"
        engine = make_engine(url)
        await migrations.upgrade(engine)
        ctx = ServiceContext(engine)
        counter = iter(range(10**6))

        async def register(name: str, admin: bool = False) -> RegisteredUser:
            return await server.register(f"{name}{next(counter)}", admin=admin)

        party = await local_party(ctx, register)
        echo_user = await register("echo")
        processes.append(harmony_bot(work, url, party.bot))
        processes.append(echo_bot(work, echo_user))
        member = Member(party.ann)
        harmony_room = await member.room_with(party.bot.user_id)
        echo_room = await member.room_with(echo_user.user_id)
        await member.wait_joined(harmony_room, party.bot.user_id)
        await member.wait_joined(echo_room, echo_user.user_id)
        await member.client.sync(timeout=0)
        for _ in range(5):  # warm up both
            await member.round_trip(harmony_room, "!whoami")
            await member.round_trip(echo_room, "!echo hello")
        harmony_times: list[float] = []
        echo_times: list[float] = []
        for index in range(commands):
            harmony_times.append(await member.round_trip(harmony_room, "!whoami"))
            echo_times.append(await member.round_trip(echo_room, f"!echo {index}"))
        print("Round trips done; registering the members for the direct messages", flush=True)
        recipients = [await register("dm") for _ in range(dms)]
        async with ctx.transaction() as session:
            for user in recipients:
                session.add(
                    Person(
                        matrix_id=user.user_id,
                        display_name=user.user_id,
                        status="member",
                        language="en",
                        created_at=ctx.now(),
                    )
                )
        people = [user.user_id for user in recipients]
        first = await deliver_batch(ctx, people, 1)
        second = await deliver_batch(ctx, people, 2)
        await member.client.close()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        server.stop()
    results: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "commands": commands,
        "harmony_median_ms": statistics.median(harmony_times),
        "harmony_p95_ms": percentile(harmony_times, 0.95),
        "echo_median_ms": statistics.median(echo_times),
        "echo_p95_ms": percentile(echo_times, 0.95),
        "dms": dms,
        "dm_first_contact_s": first,
        "dm_existing_rooms_s": second,
    }
    overhead = results["harmony_median_ms"] - results["echo_median_ms"]  # type: ignore[operator]
    results["overhead_median_ms"] = overhead
    return results


def report(results: dict[str, object]) -> None:
    commands = results["commands"]
    print()
    print(f"Round trips, {commands} commands each (member sends, member sees the reply):")
    print("| bot | median ms | p95 ms |")
    print("|---|---|---|")
    print(f"| bare nio echo bot | {results['echo_median_ms']:.1f} | {results['echo_p95_ms']:.1f} |")
    print(
        f"| Harmony (!whoami) | {results['harmony_median_ms']:.1f} | "
        f"{results['harmony_p95_ms']:.1f} |"
    )
    overhead = float(results["overhead_median_ms"])  # type: ignore[arg-type]
    verdict = "met" if overhead <= TARGET_OVERHEAD_MS else "NOT met"
    print(
        f"Harmony's median overhead: {overhead:.1f} ms "
        f"(target <= {TARGET_OVERHEAD_MS} ms: {verdict})"
    )
    dms = results["dms"]
    print()
    print(f"Direct messages, {dms} members:")
    print("| batch | seconds | messages/s |")
    print("|---|---|---|")
    for label, key in (
        ("first contact (rooms created)", "dm_first_contact_s"),
        ("existing rooms", "dm_existing_rooms_s"),
    ):
        seconds = float(results[key])  # type: ignore[arg-type]
        print(f"| {label} | {seconds:.1f} | {int(dms) / seconds:.0f} |")  # type: ignore[call-overload]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--dms", type=int, default=500)
    parser.add_argument("--echo", help=argparse.SUPPRESS)  # the echo bot's own process
    args = parser.parse_args()
    if args.echo:
        asyncio.run(EchoBot(RegisteredUser(**json.loads(args.echo))).run())
        sys.exit(0)
    results = asyncio.run(main(args.commands, args.dms))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bot_bench.json").write_text(json.dumps(results, indent=2))
    report(results)
