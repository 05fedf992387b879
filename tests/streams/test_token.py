"""The sync token's text form."""

from __future__ import annotations

import pytest

from homeserver.errors import MatrixError
from homeserver.streams.token import StreamToken


def test_round_trip() -> None:
    token = StreamToken(events=12, account_data=3, receipts=9, typing=1_700_000_000_000)
    assert StreamToken.parse(token.to_string()) == token


def test_tokens_from_before_a_stream_existed_still_parse() -> None:
    assert StreamToken.parse("s5_2") == StreamToken(events=5, account_data=2)


@pytest.mark.parametrize(
    "text", ["", "s", "x1_2", "s1__2", "s-1", "s1_2_3_4_5", "s１", "s1.5", "s" + "9" * 30]
)
def test_malformed_tokens_are_invalid_params(text: str) -> None:
    with pytest.raises(MatrixError) as raised:
        StreamToken.parse(text, param="from")
    assert raised.value.errcode == "M_INVALID_PARAM"
    assert "from" in raised.value.message


def test_advanced_to_takes_the_later_position_of_each_stream() -> None:
    a = StreamToken(events=5, receipts=1)
    b = StreamToken(events=3, receipts=4)
    assert a.advanced_to(b) == StreamToken(events=5, receipts=4)
    assert a.is_after(b) and b.is_after(a)
    assert not a.is_after(a)
