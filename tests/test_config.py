from fractions import Fraction

import pytest

from harmony_matrix.config import load_config, parse_share
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
