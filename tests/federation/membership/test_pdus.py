"""The pure pieces both sides of the handshakes share: a member event's shape, our
countersignature, and the room state an invite or knock carries."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from signedjson.key import get_verify_key
from signedjson.sign import verify_signed_json

from federation.inbound.pdu_checks import PduChecker
from federation.membership.pdus import checked_room_state, countersign, member_event_problem
from homeserver.errors import MatrixError
from homeserver.events.hashing import compute_event_id
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import get_room_version
from tests.federation.inbound.signing import TestKeyring, TestServer

V10 = get_room_version("10")
V12 = get_room_version("12")
ROOM = "!room:remote.test"


def join_pdu(**changes: Any) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "type": "m.room.member",
        "room_id": ROOM,
        "sender": "@rita:remote.test",
        "state_key": "@rita:remote.test",
        "content": {"membership": "join"},
    }
    pdu.update(changes)
    return pdu


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        ({"type": "m.room.message"}, "not an m.room.member event"),
        ({"room_id": "!other:remote.test"}, "not in this room"),
        ({"content": {"membership": "leave"}}, "membership is not join"),
        ({"content": "join"}, "membership is not join"),
        ({"state_key": "@other:remote.test"}, "state_key is not its sender"),
        ({"sender": "@rita:else.test", "state_key": "@rita:else.test"}, "not a user of"),
    ],
)
def test_member_event_shape(changes: dict[str, Any], problem: str | None) -> None:
    found = member_event_problem(
        join_pdu(**changes), room_id=ROOM, membership="join", sender_server="remote.test"
    )
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_countersignature_verifies_and_keeps_the_event_id_and_other_signatures() -> None:
    remote, local = TestServer("remote.test"), TestServer("example.org")
    pdu, event_id = remote.pdu(V10, ROOM, event_type="m.room.member", extra={"state_key": "@b:x"})
    signed = countersign(pdu, "example.org", local.key, V10)
    assert compute_event_id(signed, V10) == event_id
    assert signed["hashes"] == pdu["hashes"]
    redacted = prune_event_dict(signed, V10)
    verify_signed_json(redacted, "example.org", get_verify_key(local.key))
    verify_signed_json(redacted, "remote.test", get_verify_key(remote.key))
    assert set(pdu["signatures"]) == {"remote.test"}  # the original is not changed


def stripped(event_type: str) -> dict[str, Any]:
    return {"type": event_type, "state_key": "", "content": {}, "sender": "@rita:remote.test"}


@pytest_twisted.ensureDeferred
async def test_room_state_pdus_are_checked_and_stripped() -> None:
    remote = TestServer("remote.test")
    create, _ = remote.pdu(
        V10,
        ROOM,
        event_type="m.room.create",
        content={"room_version": "10"},
        extra={"state_key": ""},
    )
    name, _ = remote.pdu(
        V10, ROOM, event_type="m.room.name", content={"name": "N"}, extra={"state_key": ""}
    )
    forged, _ = TestServer("remote.test").pdu(
        V10, ROOM, event_type="m.room.topic", content={"topic": "T"}, extra={"state_key": ""}
    )
    elsewhere, _ = remote.pdu(
        V10, "!other:remote.test", event_type="m.room.avatar", extra={"state_key": ""}
    )
    result = await checked_room_state(
        PduChecker(TestKeyring(remote)),
        V10,
        ROOM,
        [create, name, forged, elsewhere, "junk"],
        origin="remote.test",
        strict=False,
    )
    assert [entry["type"] for entry in result] == ["m.room.create", "m.room.name"]
    assert result[1] == {
        "type": "m.room.name",
        "state_key": "",
        "content": {"name": "N"},
        "sender": "@rita:remote.test",
    }


@pytest_twisted.ensureDeferred
async def test_stripped_room_state_of_older_servers_is_accepted_before_v12() -> None:
    checker = PduChecker(TestKeyring())
    result = await checked_room_state(
        checker, V10, ROOM, [stripped("m.room.create"), {"type": 1}], origin="r", strict=False
    )
    assert [entry["type"] for entry in result] == ["m.room.create"]


@pytest_twisted.ensureDeferred
async def test_stripped_room_state_is_refused_in_v12() -> None:
    checker = PduChecker(TestKeyring())
    with pytest.raises(MatrixError) as caught:
        await checked_room_state(
            checker, V12, ROOM, [stripped("m.room.create")], origin="r", strict=True
        )
    assert caught.value.errcode == "M_INVALID_PARAM"


@pytest_twisted.ensureDeferred
async def test_room_state_without_the_create_event_is_refused_in_v12() -> None:
    checker = PduChecker(TestKeyring())
    with pytest.raises(MatrixError) as caught:
        await checked_room_state(checker, V12, ROOM, [], origin="r", strict=True)
    assert "m.room.create" in caught.value.message
