import json
import tempfile
import tomllib
from dataclasses import fields
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.config import Config, load_config, parse_share
from harmony_matrix.errors import InvalidInput


def test_defaults_are_the_documented_interpretations():
    config = load_config(None, {})
    assert config.rules.active_days == 90
    assert config.rules.minimum_quorum_share == Fraction(15, 100)
    assert config.rules.moot_date_limit_days == 14 and config.rules.thing_date_limit_days == 21
    assert config.rules.moot_days_counted_from == "trigger"
    assert config.rules.opening_margin_minutes == 30
    assert config.party.reference_prefix == "HPUK" and config.party.timezone == "Europe/London"
    assert config.database.url == "sqlite:///harmony.db"


def test_file_then_environment(tmp_path):
    path = tmp_path / "harmony.toml"
    path.write_text(
        '[party]\nname = "Test Party"\n[rules]\nactive_days = 60\npetition_share = "20%"\n'
        '[database]\nurl = "sqlite:///x.db"\n'
    )
    env = {
        "HARMONY_RULES__ACTIVE_DAYS": "30",
        "HARMONY_RULES__REQUIRE_PREPARATION": "false",
        "HARMONY_RULES__MOOT_DAYS_COUNTED_FROM": "scheduling",
        "HARMONY_RULES__OPENING_MARGIN_MINUTES": "0",
    }
    config = load_config(path, env)
    assert config.party.name == "Test Party"
    assert config.rules.active_days == 30  # the environment wins
    assert config.rules.petition_share == Fraction(1, 5)
    assert config.rules.require_preparation is False
    assert config.rules.moot_days_counted_from == "scheduling"
    assert config.rules.opening_margin_minutes == 0
    assert config.database.url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("env", "path"),
    [
        ({"HARMONY_RULES__ACTIVE_DAYS": "ninety"}, "rules.active_days"),
        ({"HARMONY_RULES__MINIMUM_QUORUM_SHARE": "10%"}, "rules.minimum_quorum_share"),
        ({"HARMONY_RULES__PETITION_SHARE": "0"}, "rules.petition_share"),
        ({"HARMONY_RULES__PETITION_SHARE": "0%"}, "rules.petition_share"),
        ({"HARMONY_RULES__PETITION_SHARE": "-5%"}, "rules.petition_share"),
        ({"HARMONY_RULES__PETITION_SHARE": "101%"}, "rules.petition_share"),
        ({"HARMONY_RULES__SMALL_ASSEMBLY_QUORUM": "0"}, "rules.small_assembly_quorum"),
        ({"HARMONY_RULES__ACTIVE_DAYS": "-1"}, "rules.active_days"),
        ({"HARMONY_RULES__OPENING_MARGIN_MINUTES": "-1"}, "rules.opening_margin_minutes"),
        ({"HARMONY_RULES__OPENING_MARGIN_MINUTES": "1441"}, "rules.opening_margin_minutes"),
        ({"HARMONY_RULES__MOOT_DAYS_COUNTED_FROM": "tomorrow"}, "rules.moot_days_counted_from"),
        ({"HARMONY_RULES__COLOUR": "red"}, "rules.colour"),
        ({"HARMONY_NOPE__X": "1"}, "nope"),
        ({"HARMONY_PARTY__TIMEZONE": "Mars/Olympus"}, "party.timezone"),
        ({"HARMONY_MATRIX__USER_ID": "harmony"}, "matrix.user_id"),
        ({"HARMONY_PARTY__DEFAULT_LANGUAGE": "tlh"}, "party.default_language"),
    ],
)
def test_errors_name_the_setting(env, path):
    with pytest.raises(InvalidInput) as caught:
        load_config(None, env)
    assert f"Error in configuration at '{path}'" in str(caught.value.message)


def test_a_petition_share_of_zero_is_refused_in_a_file(tmp_path):
    """A share of 0 would let one signature call a Party Thing of the whole party."""
    path = tmp_path / "harmony.toml"
    path.write_text("[rules]\npetition_share = 0\n")
    with pytest.raises(InvalidInput) as caught:
        load_config(path, {})
    text = caught.value.message.render("en")
    assert text.startswith("Error in configuration at 'rules.petition_share': ")
    assert "above 0" in text


def test_bad_files(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        load_config(tmp_path / "missing.toml", {})
    broken = tmp_path / "broken.toml"
    broken.write_text("[party\n")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load_config(broken, {})


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("15%", Fraction(3, 20)),
        ("0.15", Fraction(3, 20)),
        (0.15, Fraction(3, 20)),
        ("3/20", Fraction(3, 20)),
    ],
)
def test_shares_are_exact(text, share):
    assert parse_share(text) == share


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HARMONY_WEB__PORT": "eighty"}, "expected a whole number, such as 8080"),
        ({"HARMONY_RULES__PETITION_SHARE": "lots"}, "expected a share, such as 15% or 0.15"),
    ],
)
def test_a_wrong_type_names_the_expected_one(env, expected):
    with pytest.raises(InvalidInput) as raised:
        load_config(None, env)
    assert expected in str(raised.value.message)


def test_a_configuration_path_that_is_a_folder(tmp_path):
    with pytest.raises(InvalidInput) as raised:
        load_config(tmp_path, {})
    assert "is a folder" in str(raised.value.message)


def test_choices_read_or():
    from harmony_matrix.i18n import any_of, list_of

    assert any_of(["member", "secretary", "moderator"]).render("en") == (
        "member, secretary or moderator"
    )
    assert list_of(["A", "B", "C"]).render("en") == "A, B and C"


EXAMPLE = Path(__file__).resolve().parents[1] / "harmony.example.toml"


def test_the_example_documents_every_setting_with_its_default():
    """A new setting without its line in harmony.example.toml fails here."""
    text = EXAMPLE.read_text(encoding="utf-8")
    with EXAMPLE.open("rb") as handle:
        example = tomllib.load(handle)
    for section in fields(Config):
        settings = example.get(section.name, {})
        for setting in fields(section.default_factory):  # type: ignore[misc]
            assert setting.name in settings, f"[{section.name}] {setting.name} is not documented"
            variable = f"HARMONY_{section.name.upper()}__{setting.name.upper()}"
            assert f"Environment: {variable}\n{setting.name} = " in text, variable
    # Every value shown is the default, as its comment says.
    assert load_config(EXAMPLE, {}) == load_config(None, {})


def test_secrets_from_files_are_read_at_load_and_stripped(tmp_path):
    (tmp_path / "password").write_text("  hunter2-password\n")
    (tmp_path / "token").write_text("syt_token\n")
    config = load_config(
        None,
        {
            "HARMONY_MATRIX__PASSWORD_FILE": str(tmp_path / "password"),
            "HARMONY_MATRIX__ACCESS_TOKEN_FILE": str(tmp_path / "token"),
        },
    )
    assert config.matrix.password == "hunter2-password"
    assert config.matrix.access_token == "syt_token"
    assert "hunter2" not in repr(config) and "syt_token" not in repr(config)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"HARMONY_MATRIX__PASSWORD_FILE": "{missing}"}, "matrix.password_file"),
        ({"HARMONY_MATRIX__ACCESS_TOKEN_FILE": "{empty}"}, "matrix.access_token_file"),
        ({"HARMONY_SECURITY__SECRET_KEY_FILE": "{missing}"}, "security.secret_key_file"),
        (
            {"HARMONY_MATRIX__PASSWORD": "x", "HARMONY_MATRIX__PASSWORD_FILE": "{empty}"},
            "matrix.password_file",
        ),
        (
            {"HARMONY_SECURITY__SECRET_KEY": "x", "HARMONY_SECURITY__SECRET_KEY_FILE": "{empty}"},
            "security.secret_key_file",
        ),
    ],
)
def test_a_secret_file_that_cannot_be_used_is_named(tmp_path, env, setting):
    (tmp_path / "empty").write_text("\n")
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty"}
    with pytest.raises(InvalidInput, match=f"'{setting}'"):
        load_config(None, {name: value.format(**paths) for name, value in env.items()})


@given(secret=st.text(alphabet=st.characters(categories=["L", "N"]), min_size=6))
def test_a_secret_of_the_wrong_type_is_not_echoed(secret):
    # TOML numbers and arrays are refused without showing the value.
    document = f"[matrix]\npassword = [{json.dumps(secret, ensure_ascii=False)}]\n"
    with pytest.raises(InvalidInput) as raised:
        load_config_text(document)
    assert "'matrix.password'" in str(raised.value)
    assert secret not in str(raised.value)


def load_config_text(document: str) -> Config:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "harmony.toml"
        path.write_text(document, encoding="utf-8")
        return load_config(path, {})


def test_the_monitoring_settings_come_from_the_environment_too():
    config = load_config(
        None,
        {
            "HARMONY_MATRIX__HEALTH_PORT": "8081",
            "HARMONY_MATRIX__HEALTH_HOST": "0.0.0.0",
            "HARMONY_WEB__METRICS": "true",
        },
    )
    assert (config.matrix.health_port, config.matrix.health_host) == (8081, "0.0.0.0")
    assert config.web.metrics is True
    defaults = load_config(None, {})
    assert (defaults.matrix.health_port, defaults.web.metrics) == (0, False)


@pytest.mark.parametrize("port", ["-1", "65536"])
def test_a_health_port_out_of_range_is_named_when_the_bot_starts(port):
    config = load_config(
        None,
        {
            "HARMONY_MATRIX__HEALTH_PORT": port,
            "HARMONY_MATRIX__USER_ID": "@harmony:example.org",
            "HARMONY_MATRIX__PASSWORD": "secret",
        },
    )
    with pytest.raises(InvalidInput) as caught:
        config.matrix.check_for_bot()
    assert "Error in configuration at 'matrix.health_port'" in str(caught.value.message)
