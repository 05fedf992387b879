"""Pagination tokens of the published room directory (``next_batch``, ``prev_batch``).

A token is a position in the listing order plus a direction: "the rooms after this
one" (``next_batch``) or "the rooms before this one" (``prev_batch``).  Positions,
not offsets, so pages neither skip nor repeat rooms when others are published or
change size in between.  Tokens are opaque to clients (URL-safe base64 of a small
JSON array); anything that does not decode to a well-formed position is refused
with 400 ``M_INVALID_PARAM``.

spec: data/api/client-server/list_public_rooms.yaml ("The direction of pagination
is specified solely by which token is supplied")
"""

from __future__ import annotations

import attrs

from homeserver.directory.listing import ListingPosition
from homeserver.util.opaque_tokens import decode_array, encode_array, invalid_token

_FORWARD = "f"
_MAX_BIGINT = 2**63 - 1
_BACKWARD = "b"


@attrs.frozen
class PageToken:
    position: ListingPosition
    #: True: the rooms after ``position``; False: the rooms before it.
    forward: bool


def encode_token(token: PageToken) -> str:
    return encode_array(
        [
            _FORWARD if token.forward else _BACKWARD,
            token.position.joined_members,
            token.position.room_id,
        ]
    )


def decode_token(token: str) -> PageToken:
    """The position in ``token``; 400 ``M_INVALID_PARAM`` if it is not one of ours."""
    invalid = invalid_token()
    payload = decode_array(token, 3)
    direction, joined_members, room_id = payload
    if (
        direction not in (_FORWARD, _BACKWARD)
        or type(joined_members) is not int
        or not 0 <= joined_members <= _MAX_BIGINT
        or not isinstance(room_id, str)
        or not room_id.startswith("!")
        or "\x00" in room_id
    ):
        raise invalid
    try:
        room_id.encode("utf-8")  # no lone surrogates (from \\udxxx escapes)
    except UnicodeEncodeError:
        raise invalid from None
    return PageToken(ListingPosition(joined_members, room_id), direction == _FORWARD)
