"""Pagination tokens: positions survive the round trip, anything else is refused."""

from __future__ import annotations

import base64
import json

import pytest

from homeserver.directory.tokens import PageToken, decode_token, encode_token
from homeserver.errors import MatrixError
from homeserver.storage.directory import ListingPosition


def raw_token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("room_id", ["!abc:example.org", "!ünïcødé/+=:hs", "!" + "x" * 43])
def test_tokens_round_trip(forward: bool, room_id: str) -> None:
    token = PageToken(ListingPosition(12, room_id), forward)
    encoded = encode_token(token)
    assert encoded.replace("-", "").replace("_", "").isalnum()  # safe in a query string
    assert decode_token(encoded) == token


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        "A",  # base64 of nothing sensible
        raw_token({"f": 1}),
        raw_token(["f", 1]),
        raw_token(["x", 1, "!r:hs"]),
        raw_token(["f", -1, "!r:hs"]),
        raw_token(["f", True, "!r:hs"]),
        raw_token(["f", 1.5, "!r:hs"]),
        raw_token(["f", 2**63, "!r:hs"]),
        raw_token(["f", 1, 7]),
        raw_token(["f", 1, "no sigil"]),
        raw_token(["f", 1, "!nul\x00:hs"]),
        base64.urlsafe_b64encode(b'["f",1,"!\\ud800:hs"]').decode(),  # lone surrogate
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
    ],
)
def test_anything_but_a_position_is_refused(token: str) -> None:
    with pytest.raises(MatrixError) as raised:
        decode_token(token)
    assert (raised.value.status, raised.value.errcode) == (400, "M_INVALID_PARAM")


def test_a_tampered_token_is_refused() -> None:
    encoded = encode_token(PageToken(ListingPosition(3, "!r:hs"), True))
    with pytest.raises(MatrixError):
        decode_token("A" + encoded[1:])  # the opening '[' no longer decodes
