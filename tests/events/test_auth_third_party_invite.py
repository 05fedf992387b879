"""Invites carrying ``third_party_invite``: the signed token must match the room's keys.

spec: rooms/v12.md#authorisation-rules rule 5.4.1 (same in every version),
server-server-api.md#third-party-invites
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from unpaddedbase64 import decode_base64, encode_base64

from tests.events._auth_fixtures import (
    ALICE,
    ALL,
    BOB,
    CAROL,
    Case,
    Room,
    params,
    run_case,
    standard_room,
)

KEY = generate_signing_key("0")
OTHER_KEY = generate_signing_key("1")
PUBLIC = encode_verify_key_base64(get_verify_key(KEY))
OTHER_PUBLIC = encode_verify_key_base64(get_verify_key(OTHER_KEY))
URLSAFE_PUBLIC = encode_base64(decode_base64(PUBLIC), urlsafe=True)
TOKEN = "abc123"


def signed(mxid: str = CAROL, token: str = TOKEN, key: Any = KEY) -> dict[str, Any]:
    return sign_json({"mxid": mxid, "token": token, "sender": BOB}, "id.example", key)


def room_with_invite(**invite_content: Any) -> Callable[[str], Room]:
    """Standard room where BOB issued a third-party invite with ``invite_content``."""

    def make(version: str) -> Room:
        room = standard_room(version)
        content = invite_content or {"public_key": PUBLIC, "display_name": "c..."}
        room.add("m.room.third_party_invite", BOB, content, TOKEN)
        return room

    return make


def tp_invite(
    signed_obj: Any = None, sender: str = BOB, target: str = CAROL, raw: Any = None
) -> Callable[[Room], Any]:
    def make(room: Room) -> Any:
        invite = (
            raw if raw is not None else {"display_name": "c...", "signed": signed_obj or signed()}
        )
        return room.member_event(target, "invite", sender, third_party_invite=invite)

    return make


def tampered() -> dict[str, Any]:
    obj = copy.deepcopy(signed())
    obj["mxid"] = CAROL
    obj["extra"] = "changed after signing"
    return obj


CASES = [
    Case(
        "valid_signature_single_public_key_allowed", ALL, tp_invite(), True, room=room_with_invite()
    ),
    Case(
        "valid_signature_in_public_keys_list_allowed",
        ALL,
        tp_invite(),
        True,
        room=room_with_invite(public_keys=[{"public_key": OTHER_PUBLIC}, {"public_key": PUBLIC}]),
    ),
    Case(
        "urlsafe_public_key_accepted",
        ALL,
        tp_invite(),
        True,
        room=room_with_invite(public_key=URLSAFE_PUBLIC),
    ),
    Case(
        "signature_by_unknown_key_denied",
        ALL,
        tp_invite(signed(key=OTHER_KEY)),
        False,
        room=room_with_invite(),
        reason="signature",
    ),
    Case(
        "tampered_signed_object_denied",
        ALL,
        tp_invite(tampered()),
        False,
        room=room_with_invite(),
        reason="signature",
    ),
    Case(
        "unsigned_token_denied",
        ALL,
        tp_invite({"mxid": CAROL, "token": TOKEN}),
        False,
        room=room_with_invite(),
    ),
    Case(
        "garbage_public_key_denied",
        ALL,
        tp_invite(),
        False,
        room=room_with_invite(public_key="!!not base64!!", public_keys="nope"),
    ),
    Case(
        "mxid_not_matching_state_key_denied",
        ALL,
        tp_invite(signed(mxid="@dave:d.test")),
        False,
        room=room_with_invite(),
        reason="mxid",
    ),
    Case(
        "no_third_party_invite_event_for_token_denied",
        ALL,
        tp_invite(signed(token="other")),
        False,
        room=room_with_invite(),
        reason="no m.room.third_party_invite",
    ),
    Case(
        "sender_not_issuer_of_third_party_invite_denied",
        ALL,
        tp_invite(sender=ALICE),
        False,
        room=room_with_invite(),
        reason="did not send",
    ),
    Case(
        "banned_target_denied",
        ALL,
        tp_invite(),
        False,
        room=room_with_invite(),
        setup=lambda r: r.set_member(CAROL, "ban", sender=ALICE),
        reason="banned",
    ),
    Case(
        "missing_signed_denied",
        ALL,
        tp_invite(raw={"display_name": "c..."}),
        False,
        room=room_with_invite(),
        reason="signed",
    ),
    Case(
        "third_party_invite_not_an_object_denied",
        ALL,
        tp_invite(raw="yes"),
        False,
        room=room_with_invite(),
    ),
    Case(
        "signed_without_token_denied",
        ALL,
        tp_invite({"mxid": CAROL, "signatures": {}}),
        False,
        room=room_with_invite(),
        reason="mxid or token",
    ),
]


@pytest.mark.parametrize(("case", "version"), params(CASES))
def test_third_party_invite_rule(case: Case, version: str) -> None:
    run_case(case, version)
