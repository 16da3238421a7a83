"""Matrix kept in step with the member register: the party's Space, a room per assembly
and a room per Thing (closed to new messages once the Thing has finished).

:class:`RoomKeeper` reads what the register wants (services/rooms.py) and each room's
state over the REST API (never nio's sync-fed ``client.rooms``, which lags behind rooms
just created), and sends only what would change something: a repeat is a few GETs.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from nio import (
    Api,
    AsyncClient,
    JoinResponse,
    RoomCreateError,
    RoomGetStateError,
    RoomInviteError,
    RoomPreset,
    RoomPutStateError,
)

from harmony_matrix.bot.power import LevelChange, SetByBot, close_levels, plan_levels
from harmony_matrix.bot.room_state import (
    ENCRYPTION,
    JOIN_RULES,
    MEGOLM,
    POWER_LEVELS,
    SPACE_CHILD,
    SPACE_PARENT,
    RoomState,
    parse_state,
)
from harmony_matrix.services import rooms
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.rooms import PlannedRoom, RoomKind, RoomsPlan

log = logging.getLogger(__name__)

#: An invite that failed for another reason than the member's choice (their server was
#: down, say) is tried again after this long; a blocked one only when the register changes.
RETRY_FAILED_INVITE = timedelta(hours=1)
INVITE_BLOCKED = "M_INVITE_BLOCKED"
#: The name of the Space in reports, where an assembly's slug would be.
SPACE = rooms.SPACE
#: Only moderators (and secretaries) invite into rooms the bot creates: the Space's
#: membership is the register, and public assemblies' rooms trust it. A member from
#: outside a Thing's assemblies who may take part asks a moderator for an invite.
CREATED_ROOM_LEVELS = {"invite": 50}
#: Nobody posts in the Space itself; it only lists rooms.
CREATED_SPACE_LEVELS = {"invite": 50, "events_default": 100}


class Problem(enum.StrEnum):
    """What the bot could not do in a room, for the lead to tell the room."""

    #: Not in the room (or it is gone): its state cannot be read.
    NO_ACCESS = "no_access"
    CREATE_FAILED = "create_failed"
    #: Its power level is too low for ...
    CANNOT_INVITE = "cannot_invite"
    CANNOT_SET_POWER_LEVELS = "cannot_set_power_levels"
    CANNOT_SET_JOIN_RULES = "cannot_set_join_rules"
    CANNOT_LINK_SPACE = "cannot_link_space"
    #: Someone the register wants changed outranks the bot (or is a room creator).
    OUTRANKED = "outranked"
    #: An upgraded room could not be joined.
    CANNOT_JOIN = "cannot_join"


@dataclass(frozen=True)
class RoomProblem:
    #: The assembly's slug, the meeting's ID ("M-12"), or "space".
    owner: str
    room_id: str
    problem: Problem
    detail: str = ""


@dataclass(frozen=True)
class InviteFailure:
    owner: str
    room_id: str
    user_id: str
    errcode: str
    message: str

    @property
    def blocked(self) -> bool:
        """The member refuses invites: the lead asks them to open a DM with the bot."""
        return self.errcode == INVITE_BLOCKED


@dataclass(frozen=True)
class PowerChange:
    owner: str
    room_id: str
    change: LevelChange


@dataclass
class ReconcileReport:
    #: (owner, room ID) of each room made: the Space, an assembly's or a meeting's.
    created: list[tuple[str, str]] = field(default_factory=list)
    #: (owner, room ID, user ID) of each invite sent.
    invited: list[tuple[str, str, str]] = field(default_factory=list)
    invite_failures: list[InviteFailure] = field(default_factory=list)
    power_changes: list[PowerChange] = field(default_factory=list)
    #: (owner, room ID, event type) of other state sent: join rules, Space links.
    state_changes: list[tuple[str, str, str]] = field(default_factory=list)
    #: New problems only: one already reported is not repeated while it lasts.
    problems: list[RoomProblem] = field(default_factory=list)
    #: (owner, old room ID, new room ID) of upgraded rooms followed.
    followed: list[tuple[str, str, str]] = field(default_factory=list)
    #: (owner, room ID) of meeting rooms closed to new messages.
    closed: list[tuple[str, str]] = field(default_factory=list)
    #: Reconcile again then: a suspension or a role starts or ends.
    next_change_at: datetime | None = None

    @property
    def changed(self) -> bool:
        return any(
            (
                self.created,
                self.invited,
                self.invite_failures,
                self.power_changes,
                self.state_changes,
                self.problems,
                self.followed,
                self.closed,
            )
        )

    def merge(self, other: ReconcileReport) -> None:
        self.created += other.created
        self.invited += other.invited
        self.invite_failures += other.invite_failures
        self.power_changes += other.power_changes
        self.state_changes += other.state_changes
        self.problems += other.problems
        self.followed += other.followed
        self.closed += other.closed
        self.next_change_at = other.next_change_at

    def summary(self) -> str:
        """One line for the operator's log (user IDs and room IDs only)."""
        return (
            f"rooms: {len(self.created)} created, {len(self.invited)} invites sent, "
            f"{len(self.invite_failures)} invites failed, {len(self.power_changes)} power "
            f"changes, {len(self.state_changes)} other state events, {len(self.problems)} "
            f"new problems, {len(self.followed)} upgrades followed, {len(self.closed)} "
            f"rooms closed; next change at "
            f"{self.next_change_at.isoformat() if self.next_change_at else 'none'}"
        )


class RoomKeeper:
    """Builds and keeps the Space, the assembly rooms and the meeting rooms; safe to call
    from several tasks (one reconcile at a time)."""

    def __init__(
        self,
        client: AsyncClient,
        ctx: ServiceContext,
        *,
        server_name: str,
        encrypt: bool = True,
    ) -> None:
        self.client = client
        self.ctx = ctx
        self.server_name = server_name
        self.encrypt = encrypt
        self._lock = asyncio.Lock()
        #: Each room's wanted members at the last reconcile: who is newly added.
        self._members_seen: dict[str, frozenset[str]] = {}
        #: Failed invites, (room, user) -> (when, errcode): not retried on every pass.
        self._failed: dict[tuple[str, str], tuple[datetime, str]] = {}
        #: Problems reported and still there: not repeated.
        self._reported: set[tuple[str, str, Problem]] = set()
        #: Upgraded rooms the bot could not join (reported once).
        self._join_failed: set[str] = set()
        #: Finished meetings' rooms seen closed: not read again (there are ever more of
        #: them); an upgrade of one still arrives as a tombstone in the sync.
        self._seen_closed: set[str] = set()

    @property
    def bot(self) -> str:
        return self.client.user_id

    async def reconcile(self) -> ReconcileReport:
        """Bring Matrix in line with the register; a second call right after does nothing."""
        async with self._lock:
            report, tombstones = await self._pass()
            for owner, old, new, via in tombstones:
                await self._follow(owner, old, new, via, report)
            if tombstones:
                again, _ = await self._pass()
                report.merge(again)
        if report.changed:
            log.info("%s", report.summary())
        return report

    async def follow_tombstone(
        self, room_id: str, replacement_room: str, via: list[str]
    ) -> ReconcileReport:
        """The Space, an assembly's or a meeting's room was upgraded (an
        ``m.room.tombstone``): join the new room, keep its ID, link it into the Space and
        bring it in line. A room that is not the party's is ignored (an empty report)."""
        owner = await rooms.owner_of(self.ctx, room_id)
        if owner is None:
            return ReconcileReport()
        report = ReconcileReport()
        async with self._lock:
            await self._follow(owner, room_id, replacement_room, via, report)
        report.merge(await self.reconcile())
        return report

    # -- one pass --------------------------------------------------------------------

    async def _pass(self) -> tuple[ReconcileReport, list[tuple[str, str, str, list[str]]]]:
        report = ReconcileReport()
        plan = await rooms.rooms_plan(self.ctx)
        report.next_change_at = plan.next_change_at
        problems: set[tuple[str, str, Problem]] = set()
        tombstones: list[tuple[str, str, str, list[str]]] = []
        set_by_bot = await rooms.levels_set_by_bot(self.ctx)
        levels = {room: dict(users) for room, users in set_by_bot.items()}

        space_id = plan.space_id or await self._create_space(plan, report, problems)
        space = await self._state(SPACE, space_id, report, problems) if space_id else None
        if space is not None and space.replacement:
            tombstones.append(
                (SPACE, space.room_id, space.replacement, [_server(space.replaced_by)])
            )
        for planned in plan.rooms:
            if planned.room_id in self._seen_closed:
                continue
            room_id = planned.room_id
            if room_id is None and not planned.closed:
                room_id = await self._create_room(planned, space_id, report, problems)
            if room_id is None:
                continue
            state = await self._state(planned.owner, room_id, report, problems)
            if state is None:
                continue
            if state.replacement:
                via = [_server(state.replaced_by)]
                tombstones.append((planned.owner, room_id, state.replacement, via))
                continue
            if space is not None:
                await self._link(planned.owner, space, state, report, problems)
            await self._join_rules(planned, space_id, state, report, problems)
            if planned.closed:
                # Levels are left as they are: the bot's marks wait, and nobody new comes.
                await self._close(planned, state, report, problems)
                continue
            levels[room_id] = await self._power(
                planned.owner, state, plan, planned, levels.get(room_id, {}), report, problems
            )
            await self._invite(planned.owner, state, planned.members, report, problems)
        if space is not None:
            await self._invite(SPACE, space, plan.people, report, problems)

        levels = {room: users for room, users in levels.items() if users}
        if levels != set_by_bot:
            await rooms.record_levels_set_by_bot(self.ctx, levels)
        report.problems = [
            p for p in report.problems if (p.owner, p.room_id, p.problem) not in self._reported
        ]
        self._reported = problems
        return report, tombstones

    def _problem(
        self,
        report: ReconcileReport,
        problems: set[tuple[str, str, Problem]],
        owner: str,
        room_id: str,
        problem: Problem,
        detail: str = "",
    ) -> None:
        key = (owner, room_id, problem)
        problems.add(key)
        if key not in {(p.owner, p.room_id, p.problem) for p in report.problems}:
            report.problems.append(RoomProblem(owner, room_id, problem, detail))
            log.warning("room %s (%s): %s %s", room_id, owner, problem, detail)

    async def _state(
        self,
        owner: str,
        room_id: str,
        report: ReconcileReport,
        problems: set[tuple[str, str, Problem]],
    ) -> RoomState | None:
        response = await self.client.room_get_state(room_id)
        if isinstance(response, RoomGetStateError):
            self._problem(report, problems, owner, room_id, Problem.NO_ACCESS, str(response))
            return None
        return parse_state(room_id, response.events)

    async def _put(
        self,
        report: ReconcileReport | None,
        owner: str,
        room_id: str,
        kind: str,
        content: dict[str, Any],
        key: str = "",
    ) -> bool:
        """Send a state event; counted in the report's state changes if one is given."""
        response = await self.client.room_put_state(room_id, kind, content, state_key=key)
        if isinstance(response, RoomPutStateError):
            log.warning("room %s: %s refused: %s", room_id, kind, response)
            return False
        if report is not None:
            report.state_changes.append((owner, room_id, kind))
        return True

    # -- creating ----------------------------------------------------------------------

    async def _create_space(
        self, plan: RoomsPlan, report: ReconcileReport, problems: set[tuple[str, str, Problem]]
    ) -> str | None:
        response = await self.client.room_create(
            name=plan.party_name,
            room_type="m.space",
            preset=RoomPreset.private_chat,
            power_level_override=CREATED_SPACE_LEVELS,
        )
        if isinstance(response, RoomCreateError):
            self._problem(report, problems, SPACE, "", Problem.CREATE_FAILED, str(response))
            return None
        await rooms.record_space(self.ctx, response.room_id)
        report.created.append((SPACE, response.room_id))
        log.info("created the party's Space %s", response.room_id)
        return response.room_id

    async def _create_room(
        self,
        planned: PlannedRoom,
        space_id: str | None,
        report: ReconcileReport,
        problems: set[tuple[str, str, Problem]],
    ) -> str | None:
        initial: list[dict[str, Any]] = [
            {"type": JOIN_RULES, "state_key": "", "content": _join_rules(planned, space_id, True)}
        ]
        if self.encrypt:
            initial.append({"type": ENCRYPTION, "state_key": "", "content": {"algorithm": MEGOLM}})
        if space_id:
            initial.append({"type": SPACE_PARENT, "state_key": space_id, "content": self._parent()})
        response = await self.client.room_create(
            name=planned.name,
            topic=planned.topic or None,
            preset=RoomPreset.private_chat,
            initial_state=initial,
            power_level_override=CREATED_ROOM_LEVELS,
        )
        if isinstance(response, RoomCreateError):
            self._problem(report, problems, planned.owner, "", Problem.CREATE_FAILED, str(response))
            return None
        if planned.kind is RoomKind.MEETING:
            stored = await rooms.record_meeting_room(self.ctx, planned.owner_id, response.room_id)
        else:
            stored = await rooms.record_assembly_room(self.ctx, planned.owner_id, response.room_id)
        if not stored:
            # A secretary linked a room meanwhile: theirs wins, ours is dropped.
            await self.client.room_leave(response.room_id)
            return None
        report.created.append((planned.owner, response.room_id))
        log.info("created room %s for %s %s", response.room_id, planned.kind, planned.owner)
        return response.room_id

    def _parent(self) -> dict[str, Any]:
        return {"via": [self.server_name], "canonical": True}

    # -- keeping ------------------------------------------------------------------------

    async def _link(
        self,
        owner: str,
        space: RoomState,
        room: RoomState,
        report: ReconcileReport,
        problems: set[tuple[str, str, Problem]],
    ) -> None:
        if room.room_id not in space.children:
            if not space.power.may_send_state(self.bot, SPACE_CHILD):
                self._problem(report, problems, SPACE, space.room_id, Problem.CANNOT_LINK_SPACE)
            elif await self._put(
                report,
                SPACE,
                space.room_id,
                SPACE_CHILD,
                {"via": [self.server_name]},
                room.room_id,
            ):
                space.children[room.room_id] = {"via": [self.server_name]}
        if space.room_id not in room.parents:
            if not room.power.may_send_state(self.bot, SPACE_PARENT):
                self._problem(report, problems, owner, room.room_id, Problem.CANNOT_LINK_SPACE)
            else:
                await self._put(
                    report, owner, room.room_id, SPACE_PARENT, self._parent(), space.room_id
                )

    async def _join_rules(
        self,
        planned: PlannedRoom,
        space_id: str | None,
        room: RoomState,
        report: ReconcileReport,
        problems: set[tuple[str, str, Problem]],
    ) -> None:
        if _join_rules_fit(planned, space_id, room):
            return
        if not room.power.may_send_state(self.bot, JOIN_RULES):
            self._problem(
                report, problems, planned.owner, room.room_id, Problem.CANNOT_SET_JOIN_RULES
            )
            return
        content = _join_rules(planned, space_id, room.allows_restricted_joins)
        await self._put(report, planned.owner, room.room_id, JOIN_RULES, content)

    async def _close(
        self,
        planned: PlannedRoom,
        room: RoomState,
        report: ReconcileReport,
        problems: set[tuple[str, str, Problem]],
    ) -> None:
        """A finished meeting's room: the record stays readable, only the bot posts."""
        closing = close_levels(room.power, self.bot)
        if closing.still_speaking:
            detail = " ".join(closing.still_speaking)
            self._problem(report, problems, planned.owner, room.room_id, Problem.OUTRANKED, detail)
        if closing.content is None:
            if not closing.still_speaking:
                self._seen_closed.add(room.room_id)
            return
        if not room.power.may_send_state(self.bot, POWER_LEVELS) or not await self._put(
            None, planned.owner, room.room_id, POWER_LEVELS, closing.content
        ):
            self._problem(
                report, problems, planned.owner, room.room_id, Problem.CANNOT_SET_POWER_LEVELS
            )
            return
        report.closed.append((planned.owner, room.room_id))
        log.info("closed room %s of %s to new messages", room.room_id, planned.owner)

    async def _power(
        self,
        owner: str,
        room: RoomState,
        plan: RoomsPlan,
        planned: PlannedRoom,
        set_by_bot: SetByBot,
        report: ReconcileReport,
        problems: set[tuple[str, str, Problem]],
    ) -> SetByBot:
        wanted = plan_levels(
            room.power,
            self.bot,
            moderators=planned.moderators,
            muted=plan.muted,
            set_by_bot=set_by_bot,
        )
        if wanted.refused:
            detail = " ".join(wanted.refused)
            self._problem(report, problems, owner, room.room_id, Problem.OUTRANKED, detail)
        if not wanted.changes:
            return wanted.set_by_bot
        if not room.power.may_send_state(self.bot, POWER_LEVELS):
            self._problem(report, problems, owner, room.room_id, Problem.CANNOT_SET_POWER_LEVELS)
            return set_by_bot
        content = wanted.content(room.power.content)
        if not await self._put(None, owner, room.room_id, POWER_LEVELS, content):
            self._problem(report, problems, owner, room.room_id, Problem.CANNOT_SET_POWER_LEVELS)
            return set_by_bot
        report.power_changes += [PowerChange(owner, room.room_id, c) for c in wanted.changes]
        return wanted.set_by_bot

    async def _invite(
        self,
        owner: str,
        room: RoomState,
        wanted: frozenset[str],
        report: ReconcileReport,
        problems: set[tuple[str, str, Problem]],
    ) -> None:
        now = self.ctx.now()
        seen = self._members_seen.get(room.room_id)
        if seen is not None and seen != wanted:  # the register changed: try everyone again
            self._failed = {k: v for k, v in self._failed.items() if k[0] != room.room_id}
        self._members_seen[room.room_id] = wanted
        missing = [user for user in sorted(wanted) if self._should_invite(room, user, seen, now)]
        if not missing:
            return
        if not room.power.may_invite(self.bot):
            self._problem(report, problems, owner, room.room_id, Problem.CANNOT_INVITE)
            return
        for user in missing:
            response = await self.client.room_invite(room.room_id, user)
            if isinstance(response, RoomInviteError):
                errcode = response.status_code or ""
                self._failed[(room.room_id, user)] = (now, errcode)
                report.invite_failures.append(
                    InviteFailure(owner, room.room_id, user, errcode, response.message)
                )
                log.info("invite of %s to %s failed: %s", user, room.room_id, response)
            else:
                report.invited.append((owner, room.room_id, user))

    def _should_invite(
        self, room: RoomState, user: str, seen: frozenset[str] | None, now: datetime
    ) -> bool:
        membership = room.members.get(user)
        if membership is not None:
            if membership.membership in {"join", "invite", "ban"}:
                return False
            # Left, declined or was removed: invited again only when newly added.
            if membership.membership == "leave" and (seen is None or user in seen):
                return False
        failed = self._failed.get((room.room_id, user))
        if failed is None:
            return True
        when, errcode = failed
        return errcode != INVITE_BLOCKED and now - when >= RETRY_FAILED_INVITE

    # -- upgrades -----------------------------------------------------------------------

    async def _follow(
        self, owner: str, old: str, new: str, via: list[str], report: ReconcileReport
    ) -> None:
        servers = list(dict.fromkeys([*via, self.server_name]))
        path = Api._build_path(["join", new], {"access_token": self.client.access_token})
        path += "&" + urlencode([("server_name", server) for server in servers if server])
        response = await self.client._send(JoinResponse, "POST", path, Api.to_json({}))
        if not isinstance(response, JoinResponse):
            # Tried again on each pass (an invite may come), reported once.
            if new not in self._join_failed:
                self._join_failed.add(new)
                self._problem(report, set(), owner, new, Problem.CANNOT_JOIN, str(response))
            return
        self._join_failed.discard(new)
        if await rooms.replace_room(self.ctx, old, new) is None:
            return
        levels = await rooms.levels_set_by_bot(self.ctx)
        if old in levels:  # the upgrade copied the power levels, and so the bot's marks
            levels[new] = levels.pop(old)
            await rooms.record_levels_set_by_bot(self.ctx, levels)
        if old in self._members_seen:
            self._members_seen[new] = self._members_seen.pop(old)
        report.followed.append((owner, old, new))
        log.info("followed the upgrade of %s (%s) to %s", old, owner, new)
        # Unlinking is an empty link event; the next pass links the new room or Space.
        plan = await rooms.rooms_plan(self.ctx)
        if owner != SPACE and plan.space_id:
            await self._put(report, SPACE, plan.space_id, SPACE_CHILD, {}, old)
        elif owner == SPACE:
            self._seen_closed.clear()  # closed rooms are linked into the new Space too
            for planned in plan.rooms:
                if planned.room_id:
                    await self._put(report, planned.owner, planned.room_id, SPACE_PARENT, {}, old)


def _server(user_id: str) -> str:
    return user_id.partition(":")[2]


def _join_rules(planned: PlannedRoom, space_id: str | None, restricted_ok: bool) -> dict[str, Any]:
    if planned.private or not space_id or not restricted_ok:
        return {"join_rule": "invite"}
    return {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": space_id}],
    }


def _join_rules_fit(planned: PlannedRoom, space_id: str | None, room: RoomState) -> bool:
    """Private: invite-only (knocking, which still needs an invite, is fine). Public:
    joinable by the Space's members (a room a secretary made public stays public)."""
    rule = room.join_rules.get("join_rule")
    if planned.private or not space_id or not room.allows_restricted_joins:
        return rule in {"invite", "knock"}
    if rule == "public":
        return True
    allow = room.join_rules.get("allow") or []
    space = {"type": "m.room_membership", "room_id": space_id}
    return rule in {"restricted", "knock_restricted"} and space in allow
