"""`harmony bot` refuses a configuration it cannot start with: exit status 2, the setting
named on stderr, no traceback, before any homeserver is contacted."""

from __future__ import annotations

import os

import pytest

from harmony_matrix.cli import main
from harmony_matrix.homeserver import free_port
from tests.matrix.bot_process import run_harmony, write_config

GOOD = {
    "homeserver": "http://127.0.0.1:9",  # nothing listens: never reached by these tests
    "user_id": "@harmony:example.org",
    "password": "secret",
}


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"user_id": None}, "matrix.user_id"),
        ({"homeserver": "matrix.example.org"}, "matrix.homeserver"),
        ({"homeserver": "ftp://matrix.example.org"}, "matrix.homeserver"),
        ({"password": None}, "matrix.password"),
        ({"password": None, "access_token": ""}, "matrix.password"),
    ],
)
def test_a_setting_the_bot_needs_is_named(
    tmp_path, database_url, changes, setting, capsys, monkeypatch
):
    # In this process (a real one below): settings from the environment would win.
    for name in os.environ:
        if name.startswith("HARMONY_") and "__" in name:
            monkeypatch.delenv(name)
    matrix = {key: value for key, value in {**GOOD, **changes}.items() if value is not None}
    matrix["store_path"] = str(tmp_path / "store")
    config = write_config(tmp_path / "harmony.toml", database_url=database_url, matrix=matrix)

    status = main(["bot", "--config", str(config)])

    out, err = capsys.readouterr()
    assert status == 2, err
    assert f"'{setting}'" in err
    assert "Traceback" not in err + out
    assert "is starting" not in out  # refused before starting
    assert not (tmp_path / "store").exists()  # and before touching the bot's store


def test_a_homeserver_that_does_not_answer_is_named(tmp_path, database_url):
    """A real process: what the operator sees on the terminal, exit status included."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = write_config(
        tmp_path / "harmony.toml",
        database_url=database_url,
        matrix={**GOOD, "homeserver": url, "store_path": str(tmp_path / "store")},
    )

    result = run_harmony("bot", "--config", str(config))

    assert result.returncode == 2, result.stderr
    assert "'matrix.homeserver'" in result.stderr and url in result.stderr
    assert "Cannot use the database" not in result.stderr  # it is not the database's fault
    assert "Traceback" not in result.stderr + result.stdout
    assert "Unclosed" not in result.stderr  # the client was closed
