"""A room's current state, read from ``GET /rooms/{id}/state`` (no dependency on sync).

Pure: parsing only, so it is tested without a homeserver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harmony_matrix.bot.power import PowerLevels, room_creators

ENCRYPTION = "m.room.encryption"
MEGOLM = "m.megolm.v1.aes-sha2"
SPACE_CHILD = "m.space.child"
SPACE_PARENT = "m.space.parent"
JOIN_RULES = "m.room.join_rules"
POWER_LEVELS = "m.room.power_levels"

#: Room versions without ``restricted`` joins (added in version 8).
NO_RESTRICTED_JOINS = frozenset({"1", "2", "3", "4", "5", "6", "7"})


@dataclass(frozen=True)
class Membership:
    membership: str
    #: Who set it: the member themselves (join, leave) or someone else (invite, kick, ban).
    sender: str


@dataclass
class RoomState:
    room_id: str
    version: str = "1"
    creators: frozenset[str] = frozenset()
    power: PowerLevels = field(default_factory=PowerLevels)
    join_rules: Mapping[str, Any] = field(default_factory=dict)
    encrypted: bool = False
    members: dict[str, Membership] = field(default_factory=dict)
    children: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    parents: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The room that replaced this one, if it was upgraded.
    replacement: str | None = None
    #: Who upgraded it: their server can help the bot join the new room.
    replaced_by: str = ""

    @property
    def allows_restricted_joins(self) -> bool:
        return self.version not in NO_RESTRICTED_JOINS

    def present(self, user_id: str) -> bool:
        """Joined or invited."""
        found = self.members.get(user_id)
        return found is not None and found.membership in {"join", "invite"}


def parse_state(room_id: str, events: Iterable[Mapping[str, Any]]) -> RoomState:
    state = RoomState(room_id)
    power_content: Mapping[str, Any] | None = None
    create: Mapping[str, Any] = {}
    for event in events:
        kind = event.get("type")
        key = event.get("state_key", "")
        content = event.get("content") or {}
        if kind == "m.room.create":
            create = event
        elif kind == POWER_LEVELS:
            power_content = content
        elif kind == JOIN_RULES:
            state.join_rules = content
        elif kind == ENCRYPTION:
            state.encrypted = bool(content.get("algorithm"))
        elif kind == "m.room.member":
            state.members[key] = Membership(content.get("membership", ""), event.get("sender", ""))
        elif kind == SPACE_CHILD and content.get("via"):
            state.children[key] = content
        elif kind == SPACE_PARENT and content.get("via"):
            state.parents[key] = content
        elif kind == "m.room.tombstone" and content.get("replacement_room"):
            state.replacement = content["replacement_room"]
            state.replaced_by = event.get("sender", "")
    state.version = str((create.get("content") or {}).get("room_version", "1"))
    state.creators = room_creators(create)
    state.power = PowerLevels.from_state(power_content, create)
    return state
