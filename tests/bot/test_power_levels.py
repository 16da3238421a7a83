"""Power levels from the register: creators in room version 12, secretaries, suspensions."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.bot.power import (
    CLOSED,
    MESSAGE_TYPES,
    MODERATOR,
    LevelChange,
    PowerLevels,
    close_levels,
    plan_levels,
    room_creators,
)
from harmony_matrix.bot.room_state import parse_state
from harmony_matrix.bot.rooms import _join_rules_fit
from harmony_matrix.services.rooms import PlannedRoom, RoomKind

BOT = "@harmony:hs"
ANA = "@ana:hs"
BRYN = "@bryn:hs"
IRIS = "@iris:other"


def create(version: str = "12", sender: str = BOT, extra: list[str] | None = None) -> dict:
    content: dict = {"room_version": version}
    if extra is not None:
        content["additional_creators"] = extra
    return {"type": "m.room.create", "state_key": "", "sender": sender, "content": content}


def levels(users: dict | None = None, version: str = "12", **content) -> PowerLevels:
    return PowerLevels.from_state({"users": users or {}, **content}, create(version))


def plan(pl: PowerLevels, moderators=(), muted=(), set_by_bot=None):
    return plan_levels(
        pl,
        BOT,
        moderators=frozenset(moderators),
        muted=frozenset(muted),
        set_by_bot=set_by_bot or {},
    )


def test_version_12_creators_are_the_sender_and_the_additional_creators():
    assert room_creators(create("12", BOT, [ANA])) == {BOT, ANA}
    assert room_creators(create("11", BOT, [ANA])) == frozenset()
    assert room_creators(create("1")) == frozenset()


def test_a_creator_has_unlimited_power_and_is_never_listed():
    pl = PowerLevels.from_state({"users": {}}, create("12", BOT, [ANA]))
    assert pl.level(BOT) == math.inf
    result = plan(pl, moderators=[ANA, BRYN])
    assert result.changes == [LevelChange(BRYN, None, MODERATOR)]
    assert BOT not in result.users and ANA not in result.users


def test_before_version_12_the_creator_is_an_ordinary_user():
    pl = levels({BOT: 100}, version="10")
    assert pl.level(BOT) == 100
    assert plan(pl, moderators=[ANA]).users == {BOT: 100, ANA: MODERATOR}


def test_a_creator_cannot_be_muted_and_the_bot_says_so():
    pl = PowerLevels.from_state({"users": {}}, create("12", BOT, [ANA]))
    result = plan(pl, muted=[ANA])
    assert result.changes == [] and result.refused == [ANA]


def test_secretaries_become_moderators_and_a_higher_level_is_kept():
    result = plan(levels({BRYN: 100}), moderators=[ANA, BRYN])
    assert result.changes == [LevelChange(ANA, None, MODERATOR)]
    assert result.users == {ANA: MODERATOR, BRYN: 100}


def test_a_suspended_member_is_muted_below_what_messages_need():
    pl = levels(events_default=0, events={"m.room.encrypted": 10, "m.room.message": 5})
    assert pl.mute_level() == -1
    pl = levels(users_default=10, events_default=20, events={"m.room.message": 5})
    assert pl.mute_level() == 4
    result = plan(pl, muted=[IRIS])
    assert result.users[IRIS] == 4 and result.set_by_bot == {IRIS: [4, None]}
    # Below what messages need already (the room's default): nothing to do.
    assert plan(levels(events_default=20), muted=[IRIS]).changes == []


def test_the_end_of_a_suspension_restores_the_earlier_level():
    muting = plan(levels({IRIS: 20}), muted=[IRIS])
    assert muting.users[IRIS] == -1
    restored = plan(levels(muting.users), set_by_bot=muting.set_by_bot)
    assert restored.users[IRIS] == 20
    assert restored.set_by_bot == {}


def test_a_suspended_secretary_is_muted_then_moderator_again():
    muted = plan(levels(), moderators=[ANA], muted=[ANA])
    assert muted.users[ANA] == -1
    back = plan(levels(muted.users), moderators=[ANA], set_by_bot=muted.set_by_bot)
    assert back.users[ANA] == MODERATOR
    # No longer secretary: removed from the users map (the room's default again).
    gone = plan(levels(back.users), set_by_bot=back.set_by_bot)
    assert ANA not in gone.users and gone.changes == [LevelChange(ANA, MODERATOR, None)]


def test_a_mute_someone_else_chose_is_left_alone():
    assert plan(levels({BRYN: -1})).changes == []
    # The bot muted Iris, then a moderator changed her level: not the bot's to undo.
    assert plan(levels({IRIS: -5}), set_by_bot={IRIS: [-1, None]}).changes == []


def test_a_user_at_the_bots_level_cannot_be_changed():
    pl = levels({BOT: 50, BRYN: 50}, version="10")
    result = plan(pl, muted=[BRYN])
    assert result.changes == [] and result.refused == [BRYN]


def test_a_repeat_changes_nothing():
    first = plan(levels(), moderators=[ANA], muted=[IRIS])
    again = plan(levels(first.users), moderators=[ANA], muted=[IRIS], set_by_bot=first.set_by_bot)
    assert again.changes == [] and again.set_by_bot == first.set_by_bot


user_ids = st.sampled_from([ANA, BRYN, IRIS, "@x:hs", "@y:other"])
level_values = st.integers(min_value=-10, max_value=100)


@given(
    users=st.dictionaries(user_ids, level_values),
    moderators=st.frozensets(user_ids),
    muted=st.frozensets(user_ids),
    creators=st.lists(user_ids, max_size=2),
)
def test_register_levels_hold_and_a_second_plan_is_silent(users, moderators, muted, creators):
    pl = PowerLevels.from_state(
        {"users": {u: v for u, v in users.items() if u not in creators}},
        create("12", BOT, creators),
    )
    first = plan(pl, moderators=moderators, muted=muted)
    assert not set(first.users) & pl.creators
    for user in muted - pl.creators:
        assert first.users.get(user, 0) < 0  # cannot send messages
    for user in moderators - muted - pl.creators:
        assert first.users.get(user, 0) >= MODERATOR
    after = PowerLevels.from_state({"users": first.users}, create("12", BOT, creators))
    second = plan(after, moderators=moderators, muted=muted, set_by_bot=first.set_by_bot)
    assert second.changes == []
    # Nobody suspended or secretary any more: every level is as it was before the bot.
    restored = plan(after, set_by_bot=first.set_by_bot)
    final = {**first.users}
    for change in restored.changes:
        if change.new is None:
            del final[change.user_id]
        else:
            final[change.user_id] = change.new
    assert final == {u: v for u, v in users.items() if u not in creators}


def room(private: bool) -> PlannedRoom:
    return PlannedRoom(
        RoomKind.ASSEMBLY, 1, "owg", "OWG", "", private, "!r", frozenset(), frozenset()
    )


def state(join_rules: dict, version: str = "12"):
    return parse_state(
        "!r",
        [create(version), {"type": "m.room.join_rules", "state_key": "", "content": join_rules}],
    )


def test_join_rules_private_rooms_are_invite_only():
    assert _join_rules_fit(room(True), "!s", state({"join_rule": "invite"}))
    assert not _join_rules_fit(room(True), "!s", state({"join_rule": "public"}))


def test_join_rules_public_rooms_are_open_to_the_space():
    allow = {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": "!s"}]}
    assert _join_rules_fit(room(False), "!s", state(allow))
    assert not _join_rules_fit(room(False), "!s", state({"join_rule": "invite"}))
    assert not _join_rules_fit(room(False), "!other", state(allow))
    # A room version without restricted joins stays invite-only.
    assert _join_rules_fit(room(False), "!s", state({"join_rule": "invite"}, version="6"))


def test_parse_state_reads_members_links_and_tombstones():
    parsed = parse_state(
        "!r",
        [
            create(),
            {
                "type": "m.room.member",
                "state_key": ANA,
                "sender": ANA,
                "content": {"membership": "leave"},
            },
            {
                "type": "m.space.parent",
                "state_key": "!s",
                "sender": BOT,
                "content": {"via": ["hs"]},
            },
            {"type": "m.space.parent", "state_key": "!gone", "sender": BOT, "content": {}},
            {
                "type": "m.room.tombstone",
                "state_key": "",
                "sender": BRYN,
                "content": {"replacement_room": "!new"},
            },
        ],
    )
    assert not parsed.present(ANA)
    assert list(parsed.parents) == ["!s"]
    assert parsed.replacement == "!new" and parsed.replaced_by == BRYN
    assert parsed.creators == {BOT}


# -- a finished meeting's room, closed to new messages --------------------------------


def may_post(pl: PowerLevels, user: str) -> bool:
    """Whether ``user`` may send any message-like event (or any other event)."""
    return any(pl.level(user) >= pl.event_level(kind) for kind in ("", *MESSAGE_TYPES))


def test_a_closed_room_lets_only_the_bot_post_and_keeps_everyone():
    pl = levels({ANA: MODERATOR, IRIS: -1}, events={"m.room.message": 0, "m.room.name": 50})
    closing = close_levels(pl, BOT)
    assert closing.content is not None and closing.still_speaking == []
    closed = PowerLevels.from_state(closing.content, create())
    assert closed.users == {ANA: MODERATOR, IRIS: -1}  # nobody removed or demoted
    assert closed.event_level("") == CLOSED
    assert all(closed.event_level(kind) == CLOSED for kind in MESSAGE_TYPES)
    assert closed.state_level("m.room.name") == 50  # other rules kept
    assert may_post(closed, BOT) and not may_post(closed, ANA) and not may_post(closed, BRYN)
    assert close_levels(closed, BOT).content is None  # closed already: nothing to send


def test_a_room_where_someone_else_has_100_closes_above_them_if_the_bot_can():
    pl = levels({BRYN: 100})
    closed = PowerLevels.from_state(close_levels(pl, BOT).content, create())
    assert not may_post(closed, BRYN) and may_post(closed, BOT)
    # A room where the bot is not a creator: it cannot go above its own 100.
    old = PowerLevels.from_state({"users": {BOT: 100, BRYN: 100}}, create("10"))
    closing = close_levels(old, BOT)
    assert closing.still_speaking == [BRYN]
    assert closing.content is not None and closing.content["events_default"] == 100
    # Another creator always keeps the floor.
    shared = PowerLevels.from_state({"users": {}}, create("12", BOT, [ANA]))
    assert close_levels(shared, BOT).still_speaking == [ANA]


@given(
    st.dictionaries(st.sampled_from([ANA, BRYN, IRIS, "@x:hs"]), st.integers(-10, 99), max_size=4),
    st.integers(-5, 99),
    st.dictionaries(st.sampled_from(MESSAGE_TYPES), st.integers(-5, 150), max_size=4),
)
def test_after_closing_nobody_but_the_bot_posts(users, default, events):
    pl = levels(users, users_default=default, events=events)
    closing = close_levels(pl, BOT)
    closed = pl if closing.content is None else PowerLevels.from_state(closing.content, create())
    assert may_post(closed, BOT)
    assert not any(may_post(closed, user) for user in [*users, "@newcomer:hs"])
    assert dict(closed.users) == users
