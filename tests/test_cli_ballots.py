"""`harmony ballots enter`: the paper ballots of a meeting's vote, counted from a CSV file
in the format of `harmony tally` (what `!ballot paper` tells the secretary to run)."""

import pytest

from harmony_matrix.services import meetings, paper_votes
from tests.ballots.helpers import meeting_at_vote, voters
from tests.services.helpers import ANA
from tests.test_cli import harmony

HEADER = "1. Meet monthly,2. Meet every two months,3. Meet yearly\n"


async def test_paper_ballots_are_entered_counted_and_recorded(demo, database_url, tmp_path):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    plan = await paper_votes.prepare_paper_vote(demo, ANA, ref)
    ballots = tmp_path / "ballots.csv"
    ballots.write_text(plan.header + "\n" + "5,3,0\n4,5,0\n0,5,1\n5,1,0\n5,2,0\n")
    result = harmony(*plan.command.split()[1:-1], str(ballots), database=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{ref}: 5 paper ballots were counted.",
        "The winner is “1. Meet monthly”; it is recorded as consensus.",
    ]
    summary = await meetings.meeting_summary(demo, ref)
    assert summary.phase.value == "consensus"


async def test_no_clear_winner_is_said(demo, database_url, tmp_path):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    ballots = tmp_path / "ballots.csv"
    ballots.write_text(HEADER + "5,0,0\n0,5,0\n")
    result = harmony("ballots", "enter", ref, str(ballots), database=database_url)
    assert result.returncode == 0, result.stderr
    assert "no clear winner" in result.stdout
    assert (await meetings.meeting_summary(demo, ref)).phase.value == "debate"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HEADER + "5,3,9\n", "Row 2"),
        (HEADER + "5,0\n", "Row 2"),
        (HEADER, "no ballots"),
        ("Meet monthly,Meet weekly,Meet yearly\n5,0,0\n", "no option “\u2068Meet weekly\u2069”"),
        (HEADER + "5,0,0\n" * 7, "7 paper ballots"),
    ],
)
async def test_bad_ballots_exit_2_and_change_nothing(
    demo, database_url, tmp_path, content, message
):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    ballots = tmp_path / "ballots.csv"
    ballots.write_text(content)
    result = harmony("ballots", "enter", ref, str(ballots), database=database_url)
    assert result.returncode == 2
    assert message in result.stderr and not result.stdout
    assert (await meetings.meeting_summary(demo, ref)).phase.value == "vote"


async def test_a_missing_file_or_meeting_exits_2(demo, database_url, tmp_path):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    missing = harmony("ballots", "enter", ref, str(tmp_path / "nope.csv"), database=database_url)
    assert missing.returncode == 2 and "There is no file" in missing.stderr
    ballots = tmp_path / "ballots.csv"
    ballots.write_text(HEADER + "5,0,0\n")
    unknown = harmony("ballots", "enter", "M-99", str(ballots), database=database_url)
    assert unknown.returncode == 2 and "There is no meeting M-99" in unknown.stderr


def test_the_help_says_what_the_file_holds():
    result = harmony("ballots", "enter", "--help")
    assert result.returncode == 0
    assert "harmony tally" in result.stdout and "paper ballot" in result.stdout
    assert "paper ballots of a meeting" in harmony("ballots", "--help").stdout
