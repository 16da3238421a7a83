"""Work that must wait for a unit of work's commit: a counted round's key is destroyed
only once the count is committed, and not at all if the command is rolled back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from harmony_matrix.services import ballots
from harmony_matrix.storage.models import BallotRound
from tests.ballots.helpers import links_by_person, meeting_at_vote, path_of, voters
from tests.services.helpers import ANA


class Boom(Exception):
    pass


async def closed_in_a_unit_of_work(ctx, *, fail_after: bool) -> tuple[str, list]:
    present = await voters(ctx, 9)
    ref = await meeting_at_vote(ctx, present)
    await ballots.open_ballot(ctx, ANA, ref)
    for link in (await links_by_person(ctx)).values():
        await ballots.cast_ballot(ctx, path_of(link), {1: 5, 2: 1, 3: 0})
    keys_before = sorted(ctx.ballot_keys_path.iterdir())
    assert keys_before
    try:
        async with ctx.unit_of_work():
            view = await ballots.close_ballot(ctx, ANA, ref)
            assert not view.cleaned_up
            # Not yet: the count is not committed.
            assert sorted(ctx.ballot_keys_path.iterdir()) == keys_before
            if fail_after:
                raise Boom
    except Boom:
        pass
    return ref, keys_before


async def test_the_key_is_destroyed_and_storage_scrubbed_after_the_commit(demo):
    await closed_in_a_unit_of_work(demo, fail_after=False)
    assert list(demo.ballot_keys_path.iterdir()) == []
    async with demo.transaction() as session:
        round_ = await session.scalar(select(BallotRound))
        assert round_ is not None and round_.cleaned_at is not None


async def test_a_rolled_back_close_keeps_the_key_so_the_round_can_still_be_counted(demo):
    ref, keys_before = await closed_in_a_unit_of_work(demo, fail_after=True)
    assert sorted(demo.ballot_keys_path.iterdir()) == keys_before
    view = await ballots.close_ballot(demo, ANA, ref)  # counted after all
    assert view.cast == 9 and view.result is not None


@pytest.mark.parametrize("inside", [False, True])
async def test_deferring_happens_only_inside_a_unit_of_work(ctx, inside):
    ran: list[str] = []

    async def work() -> None:
        ran.append("ran")

    if inside:
        async with ctx.unit_of_work():
            assert ctx.defer_until_committed(work)
            assert ran == []
        assert ran == ["ran"]
    else:
        assert not ctx.defer_until_committed(work)
        assert ran == []
