"""`harmony members import` and `harmony members end-role`: problems first, then a
summary; progress only on a terminal; roles end with a date."""

import pytest

from harmony_matrix.demo import demo_file

from .test_cli import harmony


@pytest.fixture
def demo_files(tmp_path):
    members = tmp_path / "members.csv"
    members.write_text(demo_file("members.csv"))
    assemblies = tmp_path / "assemblies.toml"
    assemblies.write_text(demo_file("assemblies.toml"))
    return members, assemblies


HEADER = "matrix_id,display_name,status,assemblies\n"


def test_problems_come_first_and_unchanged_rows_are_not_listed(database_url, demo_files):
    members, assemblies = demo_files
    harmony("assemblies", "import", str(assemblies), "--apply", database=database_url)
    harmony("members", "import", str(members), "--apply", database=database_url)
    again = harmony("members", "import", str(members), "--apply", database=database_url)
    assert again.returncode == 0
    assert "@ana:harmony.uk" not in again.stdout  # 40 unchanged rows are only counted
    assert "0 new, 0 updated, 40 unchanged, 0 with errors." in again.stdout
    verbose = harmony("members", "import", str(members), "--verbose", database=database_url)
    assert "row 2\t@ana:harmony.uk\tunchanged" in verbose.stdout
    bad = members.parent / "bad.csv"
    rows = "".join(f"@p{n}:x.org,P {n},member,\n" for n in range(300))
    bad.write_text(HEADER + rows + "\n@bad:x.org,Bad,chair,\n")
    result = harmony("members", "import", str(bad), "--apply", database=database_url)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("row 303\t@bad:x.org\terror: ")  # the physical line
    assert "300 new, 0 updated, 0 unchanged, 1 with errors." in lines[1]
    assert "Nothing was written" in lines[2]
    assert result.stdout == ""  # no progress: stderr is not a terminal, and no OK rows
    check = harmony("quorum", "operational-working-group", database=database_url)
    assert check.returncode == 0


def test_end_role(database_url, demo_files):
    members, assemblies = demo_files
    harmony("assemblies", "import", str(assemblies), "--apply", database=database_url)
    harmony("members", "import", str(members), "--apply", database=database_url)
    args = ("members", "end-role", "@bryn:Harmony.uk", "operational-working-group")
    ended = harmony(*args, "moderator", "--on", "2026-12-31", database=database_url)
    assert ended.returncode == 0, ended.stderr
    assert "moderator" in ended.stdout and "2026-12-31" in ended.stdout
    again = harmony(*args, "moderator", "--on", "2027-01-02", database=database_url)
    assert again.returncode == 2 and "no current role moderator" in again.stderr
    bad_date = harmony(*args, "--on", "31/12/2026", database=database_url)
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr
    bad_role = harmony(*args, "boss", database=database_url)
    assert bad_role.returncode == 2 and "boss" in bad_role.stderr
    bad_id = harmony("members", "end-role", "@Bryn:harmony.uk", "x", database=database_url)
    assert bad_id.returncode == 2 and "has “B”" in bad_id.stderr


def test_progress_shows_on_a_terminal_only(database_url, tmp_path):
    import os
    import pty
    import subprocess
    import sys

    members = tmp_path / "members.csv"
    members.write_text(HEADER + "".join(f"@p{n}:x.org,P {n},member,\n" for n in range(50)))
    PYTHON_CLI = (sys.executable, "-m", "harmony_matrix.cli")
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [*PYTHON_CLI, "--database", database_url, "members", "import", str(members), "--apply"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
            env={**os.environ, "LANG": "C.UTF-8"},
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert result.returncode == 0
    assert b"Reading the file: " in shown and b"Writing: " in shown
    assert "Reading" not in result.stdout and "50 new" in result.stdout
