"""Steps 1-3 of the checks on receipt of a PDU, with keys made in the test."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import pytest_twisted

from federation.inbound.pdu_checks import InvalidPdu, PduChecker
from homeserver.events.room_versions import get_room_version
from homeserver.events.signing import sign_event
from tests.federation.inbound.signing import TestKeyring, TestServer

V10 = get_room_version("10")
V4 = get_room_version("4")
V1 = get_room_version("1")
ROOM = "!room:remote.test"


@pytest_twisted.ensureDeferred
async def test_a_validly_signed_pdu_becomes_its_event() -> None:
    remote = TestServer("remote.test")
    pdu, event_id = remote.pdu(V10, ROOM)
    event = await PduChecker(TestKeyring(remote)).check(V10, pdu, origin="remote.test")
    assert event.event_id == event_id
    assert event.content == {"msgtype": "m.text", "body": "hi"}


@pytest_twisted.ensureDeferred
async def test_forged_signature_is_refused() -> None:
    remote = TestServer("remote.test")
    forger = TestServer("remote.test")  # same name, another key
    pdu, _ = forger.pdu(V10, ROOM)
    pdu["signatures"] = {
        "remote.test": {remote.key_id: pdu["signatures"]["remote.test"][forger.key_id]}
    }
    with pytest.raises(InvalidPdu, match="bad signature from remote.test"):
        await PduChecker(TestKeyring(remote)).check(V10, pdu, origin="remote.test")


@pytest_twisted.ensureDeferred
async def test_signature_of_another_server_than_the_senders_is_refused() -> None:
    remote = TestServer("remote.test")
    other = TestServer("other.test")
    pdu, _ = other.pdu(V10, ROOM)
    pdu["sender"] = "@mallory:remote.test"  # claims to be from remote.test, signed by other.test
    with pytest.raises(InvalidPdu, match="remote.test"):
        await PduChecker(TestKeyring(remote, other)).check(V10, pdu, origin="other.test")


@pytest_twisted.ensureDeferred
async def test_changed_signed_field_is_refused() -> None:
    remote = TestServer("remote.test")
    pdu, _ = remote.pdu(V10, ROOM)
    pdu["sender"] = "@someone_else:remote.test"
    with pytest.raises(InvalidPdu):
        await PduChecker(TestKeyring(remote)).check(V10, pdu, origin="remote.test")


@pytest_twisted.ensureDeferred
async def test_bad_content_hash_gives_the_redacted_event() -> None:
    remote = TestServer("remote.test")
    pdu, event_id = remote.pdu(V10, ROOM)
    # The body is not covered by the signature (redacted away) but is by the hash.
    tampered = copy.deepcopy(pdu)
    tampered["content"]["body"] = "something else"
    event = await PduChecker(TestKeyring(remote)).check(V10, tampered, origin="remote.test")
    assert event.event_id == event_id
    assert event.content == {}


@pytest_twisted.ensureDeferred
async def test_malformed_pdu_is_refused_with_the_reason() -> None:
    remote = TestServer("remote.test")
    pdu, _ = remote.pdu(V10, ROOM)
    del pdu["depth"]
    with pytest.raises(InvalidPdu, match="depth"):
        await PduChecker(TestKeyring(remote)).check(V10, pdu, origin="remote.test")
    with pytest.raises(InvalidPdu):
        await PduChecker(TestKeyring(remote)).check(V10, ["not", "an", "object"], origin=None)  # type: ignore[arg-type]


@pytest_twisted.ensureDeferred
async def test_key_expired_before_the_event_is_refused_from_room_version_5() -> None:
    remote = TestServer("remote.test", valid_until_ts=1_600_000_000_000)
    keyring = TestKeyring(remote)
    pdu, _ = remote.pdu(V10, ROOM, origin_server_ts=1_700_000_000_000)
    with pytest.raises(InvalidPdu, match="expired"):
        await PduChecker(keyring).check(V10, pdu, origin="remote.test")
    assert keyring.asked == [("remote.test", 1_700_000_000_000)]


@pytest_twisted.ensureDeferred
async def test_key_validity_is_not_enforced_before_room_version_5() -> None:
    remote = TestServer("remote.test", valid_until_ts=1_600_000_000_000)
    keyring = TestKeyring(remote)
    pdu, event_id = remote.pdu(V4, ROOM, origin_server_ts=1_700_000_000_000)
    event = await PduChecker(keyring).check(V4, pdu, origin="remote.test")
    assert event.event_id == event_id
    assert keyring.asked == [("remote.test", 0)]


@pytest_twisted.ensureDeferred
async def test_v1_event_needs_the_signature_of_the_event_ids_server_too() -> None:
    sender_server = TestServer("remote.test")
    id_server = TestServer("other.test")
    pdu, event_id = sender_server.pdu(V1, ROOM)
    pdu_copy = copy.deepcopy(pdu)
    pdu_copy["event_id"] = "$abc:other.test"
    # Re-sign with the new ID: the sender's signature covers event_id.
    del pdu_copy["signatures"]
    sign_event(pdu_copy, "remote.test", sender_server.key, V1)
    keyring = TestKeyring(sender_server, id_server)
    with pytest.raises(InvalidPdu, match="other.test"):
        await PduChecker(keyring).check(V1, pdu_copy, origin="remote.test")
    id_server.cosign(pdu_copy, V1)
    event = await PduChecker(keyring).check(V1, pdu_copy, origin="remote.test")
    assert event.event_id == "$abc:other.test"


@pytest_twisted.ensureDeferred
async def test_restricted_join_needs_the_authorising_servers_signature() -> None:
    joiner = TestServer("joiner.test")
    resident = TestServer("resident.test")
    pdu, _ = joiner.pdu(
        V10,
        ROOM,
        event_type="m.room.member",
        content={"membership": "join", "join_authorised_via_users_server": "@admin:resident.test"},
        extra={"state_key": "@rita:joiner.test"},
    )
    keyring = TestKeyring(joiner, resident)
    with pytest.raises(InvalidPdu, match="resident.test"):
        await PduChecker(keyring).check(V10, pdu, origin="joiner.test")
    resident.cosign(pdu, V10)
    event = await PduChecker(keyring).check(V10, pdu, origin="joiner.test")
    assert event.membership == "join"


@pytest_twisted.ensureDeferred
async def test_unsigned_claims_of_the_sender_are_dropped() -> None:
    remote = TestServer("remote.test")
    pdu, event_id = remote.pdu(V10, ROOM)
    pdu["unsigned"] = {"redacted_because": {"fake": True}, "m.relations": {}}
    event = await PduChecker(TestKeyring(remote)).check(V10, pdu, origin="remote.test")
    assert event.event_id == event_id
    assert event.unsigned == {}


@pytest_twisted.ensureDeferred
async def test_stripped_state_in_unsigned_is_dropped_too() -> None:
    # Nothing in unsigned is signed: /invite and send_knock attach checked stripped
    # state themselves; from anywhere else it would be a spoofed room preview.
    remote = TestServer("remote.test")
    stripped = [
        {"type": "m.room.name", "state_key": "", "content": {"name": "x"}, "sender": "@a:b"}
    ]
    pdu, _ = remote.pdu(
        V10,
        ROOM,
        event_type="m.room.member",
        content={"membership": "invite"},
        extra={"state_key": "@alice:example.org"},
    )
    pdu["unsigned"] = {"invite_room_state": stripped, "knock_room_state": stripped, "age": 4}
    event = await PduChecker(TestKeyring(remote)).check(V10, pdu, origin="remote.test")
    assert event.unsigned == {}


@pytest.mark.parametrize("third_party", [True, False])
@pytest_twisted.ensureDeferred
async def test_a_third_party_invite_needs_no_signature_of_the_senders_server(
    third_party: bool,
) -> None:
    """spec: server-server-api.md#validating-hashes-and-signatures-on-received-events:
    the server sending a 3rd party invite may not be the sender's."""
    sender_server, relaying = TestServer("remote.test"), TestServer("relay.test")
    content: dict[str, Any] = {"membership": "invite"}
    if third_party:
        content["third_party_invite"] = {"display_name": "a", "signed": {"token": "t"}}
    pdu, event_id = relaying.pdu(
        V10,
        ROOM,
        event_type="m.room.member",
        content=content,
        extra={"sender": "@rita:remote.test", "state_key": "@alice:example.org"},
    )
    checker = PduChecker(TestKeyring(sender_server, relaying))
    if third_party:
        event = await checker.check(V10, pdu, origin="relay.test")
        assert event.event_id == event_id
    else:
        with pytest.raises(InvalidPdu, match="remote.test"):
            await checker.check(V10, pdu, origin="relay.test")
