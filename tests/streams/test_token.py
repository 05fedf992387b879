"""The pagination tokens' text forms: sync tokens and topological tokens."""

from __future__ import annotations

import pytest

from homeserver.errors import MatrixError
from homeserver.streams.token import (
    HISTORY_START,
    StreamToken,
    TopologicalToken,
    parse_pagination_token,
)


def test_round_trip() -> None:
    token = StreamToken(
        events=12, account_data=3, receipts=9, typing=1_700_000_000_000, presence=1_700_000_000_007
    )
    assert StreamToken.parse(token.to_string()) == token


def test_tokens_from_before_a_stream_existed_still_parse() -> None:
    assert StreamToken.parse("s5_2") == StreamToken(events=5, account_data=2)


@pytest.mark.parametrize(
    "text", ["", "s", "x1_2", "s1__2", "s-1", "s1_2_3_4_5_6_7_8", "s１", "s1.5", "s" + "9" * 30]
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


def test_topological_tokens_round_trip_and_order_as_history() -> None:
    for token in (TopologicalToken(7, 42), TopologicalToken(7, -3), HISTORY_START):
        assert TopologicalToken.parse(token.to_string(), param="from") == token
    # Depth first, then stream position; "before" an event is after its predecessor.
    assert TopologicalToken(3, 100) < TopologicalToken(4, -5) < TopologicalToken(4, 1)
    assert TopologicalToken.before(4, 1) < TopologicalToken.after(4, 1)
    assert TopologicalToken.before(4, 1).key == (4, 0)
    assert HISTORY_START < TopologicalToken.before(0, -(2**62))


def test_pagination_tokens_of_either_kind_parse() -> None:
    assert parse_pagination_token("t5_-2", param="from") == TopologicalToken(5, -2)
    assert parse_pagination_token("s5_2", param="from") == StreamToken(events=5, account_data=2)


@pytest.mark.parametrize(
    "text",
    [
        "t",
        "t1",
        "t1_",
        "t_1",
        "t-1_2",
        "t+1_2",
        "t1_2_3",
        "t1_-",
        "t１_2",
        "t1_2 ",
        "t" + "9" * 20 + "_1",
    ],
)
def test_malformed_topological_tokens_are_invalid_params(text: str) -> None:
    with pytest.raises(MatrixError) as raised:
        parse_pagination_token(text, param="to")
    assert raised.value.errcode == "M_INVALID_PARAM"
    assert "to" in raised.value.message
