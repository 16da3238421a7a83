"""Meeting and petition IDs as people type them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.errors import InvalidInput
from harmony_matrix.services.lookup import meeting_ref, parse_ref


@given(st.integers(min_value=0, max_value=999_999_999))
def test_an_id_reads_back_in_every_way_it_is_written(number: int) -> None:
    for written in (meeting_ref(number), f"m{number}", str(number), f" M-{number} "):
        assert parse_ref("M", written) == number


@pytest.mark.parametrize("written", ["M-1234567890", "99999999999999999999", "P-3", "M-", "M-1a"])
def test_what_is_no_id_is_refused_before_the_database_sees_it(written: str) -> None:
    with pytest.raises(InvalidInput):
        parse_ref("M", written)
