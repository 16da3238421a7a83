"""`harmony bot` refuses a configuration it cannot start with: exit status 2, the setting
named on stderr, no traceback, before any homeserver is contacted."""

from __future__ import annotations

import pytest

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
def test_a_setting_the_bot_needs_is_named(tmp_path, database_url, changes, setting):
    matrix = {key: value for key, value in {**GOOD, **changes}.items() if value is not None}
    matrix["store_path"] = str(tmp_path / "store")
    config = write_config(tmp_path / "harmony.toml", database_url=database_url, matrix=matrix)

    result = run_harmony("bot", "--config", str(config))

    assert result.returncode == 2, result.stderr
    assert f"'{setting}'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "is starting" not in result.stdout  # refused before starting
    assert not (tmp_path / "store").exists()  # and before touching the bot's store


def test_a_homeserver_that_does_not_answer_is_named(tmp_path, database_url):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = write_config(
        tmp_path / "harmony.toml",
        database_url=database_url,
        matrix={**GOOD, "homeserver": url, "store_path": str(tmp_path / "store")},
    )

    result = run_harmony("bot", "--config", str(config))

    assert result.returncode == 2, result.stderr
    assert "'matrix.homeserver'" in result.stderr and url in result.stderr
    assert "database" not in result.stderr  # it is not the database's fault
    assert "Traceback" not in result.stderr + result.stdout
    assert "Unclosed" not in result.stderr  # the client was closed
