"""Power levels: what the register wants, in Matrix numbers, and what the bot may change.

Pure, so the rules are tested without a homeserver. Room version 12 (MSC4289) gives the
room's creators (the sender of ``m.room.create`` and its ``additional_creators``)
unlimited power: they are never listed in ``users`` (the server refuses it) and nobody
can lower them. matrix-nio does not know this, so it is computed here.

The bot only undoes what it did itself: it remembers each level it set and the level
the person had before, and when the reason ends (a suspension over, a secretary no
longer one) it puts the earlier level back, unless someone has changed it since.
A mute that a moderator chose stays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Secretaries' level: Matrix clients show 50 as "Moderator".
MODERATOR = 50
#: What sending needs in a closed room (Matrix clients show 100 as "Admin"), or more if
#: someone other than the bot has 100.
CLOSED = 100
#: What a muted person would need to speak: mute below the lowest of these.
MESSAGE_TYPES = ("m.room.message", "m.room.encrypted", "m.sticker", "m.reaction")
#: The level the bot set for a user, and the explicit level they had before (None: none).
SetByBot = dict[str, list[int | None]]


def creators_are_privileged(version: str) -> bool:
    """Room versions where creators have unlimited power: 12 and later (MSC4289)."""
    if version == "org.matrix.hydra.11":
        return True
    return version.isdigit() and int(version) >= 12


def room_creators(create_event: Mapping[str, Any]) -> frozenset[str]:
    """The creators with unlimited power (empty before room version 12)."""
    content = create_event.get("content") or {}
    if not creators_are_privileged(str(content.get("room_version", "1"))):
        return frozenset()
    extra = content.get("additional_creators") or []
    return frozenset([create_event.get("sender", ""), *(u for u in extra if isinstance(u, str))])


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class PowerLevels:
    content: Mapping[str, Any] = field(default_factory=dict)
    creators: frozenset[str] = frozenset()
    #: A room without a power-levels event: its creator has 100, state needs 0.
    missing: bool = False
    creator: str = ""

    @classmethod
    def from_state(
        cls, content: Mapping[str, Any] | None, create_event: Mapping[str, Any]
    ) -> PowerLevels:
        return cls(
            content=content or {},
            creators=room_creators(create_event),
            missing=content is None,
            creator=create_event.get("sender", ""),
        )

    @property
    def users(self) -> Mapping[str, Any]:
        users = self.content.get("users")
        return users if isinstance(users, Mapping) else {}

    @property
    def users_default(self) -> int:
        return _int(self.content.get("users_default"), 0)

    def explicit(self, user_id: str) -> int | None:
        if user_id not in self.users:
            return None
        return _int(self.users[user_id], self.users_default)

    def level(self, user_id: str) -> float:
        if user_id in self.creators:
            return math.inf
        if self.missing:
            return 100 if user_id == self.creator else 0
        found = self.explicit(user_id)
        return self.users_default if found is None else found

    def state_level(self, event_type: str) -> int:
        events = self.content.get("events") or {}
        default = 0 if self.missing else _int(self.content.get("state_default"), 50)
        return _int(events.get(event_type), default) if event_type in events else default

    def may_send_state(self, user_id: str, event_type: str) -> bool:
        return self.level(user_id) >= self.state_level(event_type)

    def may_invite(self, user_id: str) -> bool:
        return self.level(user_id) >= _int(self.content.get("invite"), 0)

    def mute_level(self) -> int:
        return min(self.event_level(kind) for kind in ("", *MESSAGE_TYPES)) - 1

    def event_level(self, event_type: str) -> int:
        """What sending a (non-state) event of this type needs; "" for any other type."""
        events = self.content.get("events") or {}
        default = _int(self.content.get("events_default"), 0)
        return _int(events[event_type], default) if event_type in events else default


@dataclass(frozen=True)
class LevelChange:
    user_id: str
    old: int | None
    #: None: removed from ``users`` (back to the room's default).
    new: int | None


@dataclass
class PowerPlan:
    #: The new ``users`` map; equal to the old one when nothing changes.
    users: dict[str, int]
    changes: list[LevelChange]
    set_by_bot: SetByBot
    #: People the bot should change but may not (a creator, or someone at its level).
    refused: list[str]

    def content(self, current: Mapping[str, Any]) -> dict[str, Any]:
        return {**current, "users": self.users}


def plan_levels(
    levels: PowerLevels,
    bot: str,
    *,
    moderators: frozenset[str],
    muted: frozenset[str],
    set_by_bot: Mapping[str, list[int | None]],
) -> PowerPlan:
    """The levels the register wants in one room: secretaries at least moderator,
    suspended people muted; levels the bot set earlier and no longer needs restored."""
    users = {user: _int(value, levels.users_default) for user, value in levels.users.items()}
    plan = PowerPlan(users=dict(users), changes=[], set_by_bot={}, refused=[])
    bot_level = levels.level(bot)
    mute = levels.mute_level()
    for user in sorted(moderators | muted | set(set_by_bot)):
        if user == bot:
            continue
        if user in levels.creators:  # unlimited power: nothing to give, nothing to take
            if user in muted:
                plan.refused.append(user)
            continue
        current = users.get(user)
        effective = levels.users_default if current is None else current
        remembered = set_by_bot.get(user)
        owned = remembered is not None and remembered[0] == current
        before = remembered[1] if owned and remembered else current
        if user in muted:
            target: int | None = mute if effective > mute else current
        elif user in moderators:
            floor = max(MODERATOR, before if before is not None else levels.users_default)
            target = floor if owned or effective < MODERATOR else current
        else:
            target = before if owned else current
        if target == current:
            if owned and (user in muted or user in moderators):
                plan.set_by_bot[user] = [current, before]
            continue
        if not _may_change(bot_level, current, target):
            plan.refused.append(user)
            continue
        if target is None:
            del plan.users[user]
        else:
            plan.users[user] = target
        if target is not None and (user in muted or user in moderators):
            plan.set_by_bot[user] = [target, before]
        plan.changes.append(LevelChange(user, current, target))
    return plan


def _may_change(bot_level: float, old: int | None, new: int | None) -> bool:
    """The auth rules for another user's entry: the sender must outrank its old value and
    may not grant more than it has."""
    if old is not None and old >= bot_level:
        return False
    return new is None or new <= bot_level


@dataclass(frozen=True)
class Closing:
    """A room closed to new messages: only the bot may still post."""

    #: The new power-levels content; None when the room is closed already.
    content: dict[str, Any] | None
    #: People who could still post, since the bot does not outrank them (a creator).
    still_speaking: list[str]


def close_levels(levels: PowerLevels, bot: str) -> Closing:
    """Sending any event (a message, a reaction, a redaction) needs more than anyone but
    the bot has; members keep their levels, so they stay and read the record."""
    others = [
        _int(value, levels.users_default) for user, value in levels.users.items() if user != bot
    ]
    highest = max([levels.users_default, *others])
    bot_level = levels.level(bot)
    # Never above the bot: it could not set a level it does not have, nor post after.
    needed = int(min(max(CLOSED, highest + 1), bot_level))
    still_speaking = sorted(
        {creator for creator in levels.creators if creator != bot}
        | {
            user
            for user, value in levels.users.items()
            if user != bot and user not in levels.creators and _int(value, 0) >= needed
        }
    )
    closed = all(levels.event_level(kind) >= needed for kind in ("", *MESSAGE_TYPES))
    if closed:
        return Closing(None, still_speaking)
    events = dict(levels.content.get("events") or {})
    for kind in MESSAGE_TYPES:
        events[kind] = max(needed, _int(events.get(kind), 0))
    content = {
        **levels.content,
        "events_default": max(needed, _int(levels.content.get("events_default"), 0)),
        "events": events,
    }
    return Closing(content, still_speaking)
