"""The `harmony` command, run as a real process on the database under test."""

import os
import subprocess
import sys

import pytest

from harmony_matrix.demo import demo_file
from harmony_matrix.storage import migrations

TIMEOUT = 60


def harmony(*args: str, database: str | None = None, env: dict | None = None):
    command = [sys.executable, "-m", "harmony_matrix.cli"]
    if database:
        command += ["--database", database]
    environment = {**os.environ, "LANG": "C.UTF-8", **(env or {})}
    environment.pop("HARMONY_DATABASE__URL", None)
    result = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=TIMEOUT, env=environment
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def demo_files(tmp_path):
    members = tmp_path / "members.csv"
    members.write_text(demo_file("members.csv"))
    assemblies = tmp_path / "assemblies.toml"
    assemblies.write_text(demo_file("assemblies.toml"))
    return members, assemblies


def test_fresh_database_upgrade_then_use(empty_url):
    before = harmony("quorum", "operational-working-group", database=empty_url)
    assert before.returncode == 2 and "harmony db upgrade" in before.stderr
    upgraded = harmony("db", "upgrade", database=empty_url)
    assert upgraded.returncode == 0 and "up to date" in upgraded.stdout
    status = harmony("db", "status", database=empty_url)
    head = migrations.head_revision()
    assert status.returncode == 0 and f"Schema revision: {head}" in status.stdout


def test_imports_dry_run_then_apply(database_url, demo_files):
    members, assemblies = demo_files
    dry = harmony("assemblies", "import", str(assemblies), database=database_url)
    assert dry.returncode == 0 and "dry run" in dry.stdout
    assert harmony("quorum", "operational-working-group", database=database_url).returncode == 2
    applied = harmony("assemblies", "import", str(assemblies), "--apply", database=database_url)
    assert applied.returncode == 0 and "7 new" in applied.stdout
    people = harmony("members", "import", str(members), "--apply", database=database_url)
    assert people.returncode == 0, people.stderr
    assert "row 2\t@ana:harmony.uk\tnew" in people.stdout and "40 new" in people.stdout
    quorum = harmony("quorum", "operational-working-group", database=database_url)
    assert quorum.returncode == 0
    # Imported people have no recorded activity yet: the active population is 0.
    assert "Quorum for an Assembly Moot: 4" in quorum.stdout
    assert "HPUK-ASSE-2025-09-4" in quorum.stdout


def test_a_bad_row_exits_2_and_names_the_row(database_url, demo_files, tmp_path):
    _members, assemblies = demo_files
    harmony("assemblies", "import", str(assemblies), "--apply", database=database_url)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "matrix_id,display_name,status\n@ok:example.org,Ok,member\n@bad:example.org,Bad,chair\n"
    )
    result = harmony("members", "import", str(bad), "--apply", database=database_url)
    assert result.returncode == 2
    assert "row 3\t@bad:example.org\terror: " in result.stderr
    assert "member or participant" in result.stderr and "Nothing was written" in result.stderr
    again = harmony(
        "members", "import", str(bad).replace("bad.csv", "ok.csv"), database=database_url
    )
    assert again.returncode == 2 and "There is no file" in again.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("quorum", "no-such-assembly"),
        ("petition", "status", "P-1"),
        ("petition", "status", "banana"),
        ("nonsense",),
        ("members", "import"),
    ],
)
def test_bad_input_exits_2_with_a_message(database_url, args):
    result = harmony(*args, database=database_url)
    assert result.returncode == 2
    assert result.stderr.strip() and not result.stdout.strip()


def test_messages_in_the_operators_language(database_url):
    result = harmony("--language", "fr", "quorum", "nowhere", database=database_url)
    assert result.returncode == 2
    assert result.stderr.strip() == "Il n'y a pas d'assemblée nommée « nowhere »."
    env_result = harmony("quorum", "nowhere", database=database_url, env={"LANG": "fr_FR.UTF-8"})
    assert env_result.stderr == result.stderr


def test_bad_configuration_and_unreachable_database(tmp_path):
    config = tmp_path / "harmony.toml"
    config.write_text("[rules]\nminimum_quorum_share = '5%'\n")
    result = harmony("--config", str(config), "db", "status")
    assert result.returncode == 2
    assert "Error in configuration at 'rules.minimum_quorum_share'" in result.stderr
    unreachable = harmony("db", "status", database="postgresql://nobody@127.0.0.1:1/none")
    assert unreachable.returncode == 1 and "Cannot use the database" in unreachable.stderr
    wrong = harmony("db", "status", database="mysql://x@y/z")
    assert wrong.returncode == 2 and "sqlite:// or postgresql://" in wrong.stderr


def test_consensus_record_from_the_command_line(database_url):
    empty = harmony("consensus", database=database_url)
    assert empty.returncode == 0 and "No consensus" in empty.stdout
    verify = harmony("consensus", "--verify", database=database_url)
    assert verify.returncode == 0 and "intact" in verify.stdout


def test_demo_command(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = harmony("demo", database=url)
    assert result.returncode == 0, result.stderr
    assert (
        "Operational Working Group (HPUK-ASSE-2025-09-4): 38 active members, quorum 6"
        in result.stdout
    )
    das = "Disability Activism Society (HPUK-ASSE-2025-11-9): 3 active members, quorum 4"
    assert f"{das} (cannot be reached yet)" in result.stdout
    again = harmony("demo", database=url)
    assert again.returncode == 0 and again.stdout == result.stdout


def test_the_demo_never_touches_a_real_party(database_url, demo_files):
    members, _assemblies = demo_files
    real = members.parent / "real.csv"
    real.write_text("matrix_id,display_name,status\n@real:party.example,Real Person,member\n")
    harmony("members", "import", str(real), "--apply", database=database_url)
    for args in (("demo",), ("demo", "--reset")):
        result = harmony(*args, database=database_url)
        assert result.returncode == 2 and "not the demo party" in result.stderr
    still = harmony("db", "status", database=database_url)
    assert still.returncode == 0
