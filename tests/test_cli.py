"""The `harmony` command, run as a real process on the database under test."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from harmony_matrix.demo import demo_file
from harmony_matrix.i18n import available_languages
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
    assert unreachable.returncode == 2 and "Cannot use the database" in unreachable.stderr
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


# --- Ordinary mistakes: a message and exit 2, never "failed unexpectedly" -----------------


def _refused(result, *expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "unexpectedly" not in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def test_a_database_of_a_newer_harmony_is_refused_by_upgrade_and_demo(tmp_path):
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    assert harmony("db", "upgrade", database=url).returncode == 0
    with sqlite3.connect(tmp_path / "newer.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'f00d'")
    _refused(harmony("db", "upgrade", database=url), "newer version of Harmony", "f00d")
    _refused(harmony("demo", database=url), "newer version of Harmony")


def test_a_url_with_two_slashes_names_the_fix(tmp_path):
    command = [sys.executable, "-m", "harmony_matrix.cli", "--database", "sqlite://demo.db"]
    result = subprocess.run(
        [*command, "db", "status"], capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path
    )
    _refused(result, "sqlite:///demo.db")
    assert list(tmp_path.iterdir()) == []


def test_a_host_that_does_not_resolve():
    result = harmony("db", "status", database="postgresql://x@no-such-host.invalid/harmony")
    _refused(result, "Cannot use the database", "HARMONY_DATABASE__URL")


def test_files_that_cannot_be_read(tmp_path):
    fifo = tmp_path / "ballots.csv"
    os.mkfifo(fifo)  # root reads any file: a FIFO is a path that cannot be read as one
    _refused(harmony("tally", str(fifo)), "not a regular file")
    _refused(harmony("tally", str(tmp_path)), "is a folder")
    _refused(harmony("--config", str(tmp_path), "db", "status"), "is a folder")


def test_a_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    # A folder cannot be made under a file, whoever runs the command (root included).
    url = f"sqlite:///{blocker / 'sub' / 'harmony.db'}"
    _refused(harmony("db", "upgrade", database=url), "Cannot create the folder")


def test_a_mistyped_sqlite_path_creates_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'typo' / 'harmny.db'}"
    for args in (("quorum", "x"), ("consensus",), ("db", "status"), ("assemblies", "list")):
        _refused(harmony(*args, database=url), "There is no database at", "harmony db upgrade")
    assert list(tmp_path.iterdir()) == []


def _read_only_runner(folder: Path):
    """A way to run a command that cannot write ``folder``, or None.

    Root ignores file modes, so for root the folder is bound read-only in a private
    mount namespace (``unshare -m``): writes then fail with EROFS for everyone. Anyone
    else gets the folder and its files chmod'ed read-only.
    """
    if os.geteuid() != 0:
        for item in folder.iterdir():
            item.chmod(0o444)
        folder.chmod(0o555)
        return lambda command: command
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro '{folder}' '{folder}'"],
        capture_output=True,
    )
    if probe.returncode != 0:
        return None

    def wrap(command: list[str]) -> list[str]:
        script = f"mount --bind -o ro '{folder}' '{folder}' && exec \"$@\""
        return ["unshare", "-m", "sh", "-c", script, "sh", *command]

    return wrap


def test_read_only_commands_work_on_a_read_only_database(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    url = f"sqlite:///{folder / 'harmony.db'}"
    assert harmony("demo", database=url).returncode == 0
    before = sorted(p.name for p in folder.iterdir())
    wrap = _read_only_runner(folder)
    if wrap is None:
        # CI must prove this, not skip it (the machines run tests as root, with unshare).
        assert not os.environ.get("CI"), "cannot make a folder read-only here (unshare -m)"
        pytest.skip("no way to make a folder read-only for root here (unshare -m)")
    environment = {**os.environ, "LANG": "C.UTF-8"}
    environment.pop("HARMONY_DATABASE__URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "harmony_matrix.cli", "--database", url, *args]
        return subprocess.run(
            wrap(command), capture_output=True, text=True, timeout=TIMEOUT, env=environment
        )

    try:
        for args in (
            ("db", "status"),
            ("assemblies", "list"),
            ("quorum", "operational-working-group"),
            ("consensus", "--verify"),
            ("petition", "status", "P-1"),
        ):
            result = run(*args)
            assert "Traceback" not in result.stderr
            assert result.returncode == 0, (args, result.stderr)
        writer = run("db", "upgrade")  # a command that writes says why it cannot
        assert writer.returncode == 2 and "Cannot use the database" in writer.stderr
    finally:
        folder.chmod(0o755)
        for item in folder.iterdir():
            item.chmod(0o644)
    assert sorted(p.name for p in folder.iterdir()) == before


def test_unavailable_language_is_refused_with_the_list(database_url):
    languages = ", ".join(available_languages())
    _refused(harmony("--language", "de", "quorum", "x", database=database_url), "“de”", languages)


def test_global_options_after_the_command(database_url):
    result = harmony("db", "status", "--database", database_url)
    assert result.returncode == 0, result.stderr
    french = harmony("quorum", "nowhere", "--language", "fr", "--database", database_url)
    assert french.returncode == 2 and "assemblée" in french.stderr


def test_assemblies_are_listed_and_found_by_name_or_reference(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert harmony("demo", database=url).returncode == 0
    listed = harmony("assemblies", "list", database=url)
    assert listed.returncode == 0
    slug, reference, name = next(
        line.split("\t") for line in listed.stdout.splitlines() if "Operational" in line
    )
    assert slug == "operational-working-group"
    by_slug = harmony("quorum", slug, database=url).stdout
    assert harmony("quorum", reference.lower(), database=url).stdout == by_slug
    assert harmony("quorum", name.upper(), database=url).stdout == by_slug


# --- A newcomer's path ---------------------------------------------------------------------


def test_the_demo_has_a_petition_and_a_consensus_record_to_show(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    demo = harmony("demo", database=url)
    assert demo.returncode == 0, demo.stderr
    # Its suggestions run as they are printed: ./dev harmony, not a harmony off the PATH.
    suggestions = [line for line in demo.stdout.splitlines() if line.startswith("Try:")]
    assert suggestions and all("./dev harmony" in line for line in suggestions)
    petition = harmony("petition", "status", "P-1", database=url)
    assert petition.returncode == 0 and "Signatures:" in petition.stdout
    record = harmony("consensus", database=url)
    assert record.returncode == 0 and "#1 M-1" in record.stdout
    verified = harmony("consensus", "--verify", database=url)
    assert verified.returncode == 0 and "holds 1 entry" in verified.stdout
    assert harmony("consensus", "--verify", database=url).stdout == verified.stdout


def test_dev_harmony_runs_the_command_from_the_callers_folder(tmp_path):
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "ballots.csv").write_text("A,B\n5,0\n4,1\n")
    result = subprocess.run(
        [str(root / "dev"), "harmony", "tally", "ballots.csv", "--format", "text"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        env={**os.environ, "LANG": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr
    assert "A is the winner." in result.stdout


def test_consensus_of_an_unknown_assembly(database_url):
    _refused(harmony("consensus", "nope", database=database_url), "no assembly called “nope”")


def test_consensus_verify_catches_a_truncation_from_the_command_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert harmony("demo", database=url).returncode == 0
    head = harmony("consensus", "--verify", database=url).stdout.split("head hash ")[1][:64]
    ok = harmony("consensus", "--verify", "--expect-head", head, database=url)
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(tmp_path / "demo.db") as connection:
        connection.execute("DELETE FROM consensus_records")
    truncated = harmony("consensus", "--verify", "--expect-head", head, database=url)
    assert truncated.returncode == 1 and "is not in the record" in truncated.stderr
    counted = harmony("consensus", "--verify", "--expect-count", "1", database=url)
    assert counted.returncode == 1 and "published count" in counted.stderr


def test_a_hand_edited_consensus_row_is_a_broken_entry(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert harmony("demo", database=url).returncode == 0
    with sqlite3.connect(tmp_path / "demo.db") as connection:
        connection.execute("UPDATE consensus_records SET method = 'nope'")
    verified = harmony("consensus", "--verify", database=url)
    assert verified.returncode == 1 and "unknown method" in verified.stderr
    assert "unexpectedly" not in verified.stderr
    listed = harmony("consensus", database=url)
    assert listed.returncode == 0, listed.stderr
    with sqlite3.connect(tmp_path / "demo.db") as connection:
        connection.execute("UPDATE consensus_records SET recorded_at = 'soon'")
    dated = harmony("consensus", "--verify", database=url)
    assert dated.returncode == 1 and "unexpectedly" not in dated.stderr


def test_argparse_speaks_through_harmonys_catalogs(monkeypatch, capsys):
    """argparse's own words ("usage", "options", "show this help message") are looked up
    in Harmony's catalog of the operator's language, where the lead's extraction puts
    them (ARGPARSE_MESSAGES)."""
    import gettext

    from harmony_matrix import cli

    words = {
        "usage: ": "utilisation : ",
        "options": "options générales",
        "show this help message and exit": "afficher cette aide et quitter",
        "the following arguments are required: %s": "arguments obligatoires : %s",
    }
    assert {m.msgid for m in cli.ARGPARSE_MESSAGES} >= set(words)

    class Catalog(gettext.NullTranslations):
        def gettext(self, message: str) -> str:
            return words.get(message, message)

    monkeypatch.setattr(cli, "catalog", lambda language: Catalog())
    try:
        with pytest.raises(SystemExit):
            cli.main(["--language", "fr", "--help"])
        shown = capsys.readouterr().out
        assert shown.startswith("utilisation : harmony")
        assert "options générales" in shown and "afficher cette aide et quitter" in shown
        with pytest.raises(SystemExit):
            cli.main(["--language", "fr", "quorum"])
        assert "arguments obligatoires : assembly" in capsys.readouterr().err
    finally:
        cli.translate_argparse("en")
