"""Matrix user IDs: server names are case-insensitive, localparts say what is wrong."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.errors import InvalidInput
from harmony_matrix.matrix_ids import check_matrix_id, normalise_matrix_id

LOCALPART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._=-/+", min_size=1, max_size=30)
LABEL = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    min_size=1,
    max_size=12,
)
SERVER = st.lists(LABEL, min_size=1, max_size=4).map(".".join)


@given(LOCALPART, SERVER, st.one_of(st.none(), st.integers(1, 65535)))
def test_the_server_name_is_stored_in_lower_case(localpart, server, port):
    suffix = "" if port is None else f":{port}"
    found = check_matrix_id(f"@{localpart}:{server}{suffix}")
    assert found == f"@{localpart}:{server.lower()}{suffix}"
    assert check_matrix_id(found) == found  # normalising twice changes nothing
    assert normalise_matrix_id(f"@{localpart}:{server}{suffix}") == found


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@bob:Example.org", "@bob:example.org"),
        ("@bob:EXAMPLE.ORG:8448", "@bob:example.org:8448"),
        ("@bob:127.0.0.1:8008", "@bob:127.0.0.1:8008"),
        ("@bob:[::1]:8448", "@bob:[::1]:8448"),
        ("@a.b_c=d-e/f+g:x.org", "@a.b_c=d-e/f+g:x.org"),
    ],
)
def test_valid_ids(value, expected):
    assert check_matrix_id(value) == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("@Bob:example.org", "has “B”"),
        ("@bob smith:example.org", "has “ ”"),
        ("@Bö!:example.org", "has “!” “B” “ö”"),
        ("bob:example.org", "looks like @name:server"),
        ("@bob", "looks like @name:server"),
        ("@:example.org", "looks like @name:server"),
        ("@bob:exa mple.org", "is not a server name"),
        ("@bob:example.org:port", "is not a server name"),
        ("@" + "a" * 250 + ":x.org", "longer than the 255 characters"),
    ],
)
def test_a_bad_id_says_what_is_wrong(value, says):
    with pytest.raises(InvalidInput) as caught:
        check_matrix_id(value)
    assert says in caught.value.message.render("en")


def test_lower_case_letters_digits_and_the_punctuation_are_named():
    with pytest.raises(InvalidInput) as caught:
        check_matrix_id("@Bob:example.org")
    rendered = caught.value.message.render("en")
    assert "lower-case letters, digits and these characters: . _ = - / +" in rendered
