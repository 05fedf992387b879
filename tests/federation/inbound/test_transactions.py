"""Inbound transactions through the handler, with the real event path and stores on
both engines (the HTTP endpoint is exercised in test_send_endpoint.py)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from federation.inbound.transactions import MAX_QUEUED_PER_ORIGIN, MAX_RECEIPT_ROOMS
from homeserver.errors import MatrixError
from homeserver.storage.database import Database
from tests.federation.inbound.conftest import (
    ALICE,
    REMOTE,
    FederatedRoom,
    build_inbound,
)
from tests.federation.inbound.signing import TestServer


def txn(pdus: list[Any], edus: list[Any] | None = None, origin: str = REMOTE) -> dict[str, Any]:
    body: dict[str, Any] = {"origin": origin, "origin_server_ts": 1_700_000_000_000, "pdus": pdus}
    if edus is not None:
        body["edus"] = edus
    return body


async def count_events(db: Database, event_id: str) -> int:
    rows = await db.execute("count", "SELECT COUNT(*) FROM events WHERE event_id = ?", event_id)
    return int(rows[0][0])


@pytest_twisted.ensureDeferred
async def test_pdus_of_a_transaction_are_stored_and_answered(room: FederatedRoom) -> None:
    inbound = build_inbound(room)
    pdu, event_id = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "hi"})
    response = await inbound.transactions.on_transaction(REMOTE, "t1", txn([pdu]))
    assert response == {"pdus": {event_id: {}}}
    assert (await room.timeline())[-1] == event_id


@pytest_twisted.ensureDeferred
async def test_replayed_transaction_gets_the_same_response_and_is_processed_once(
    room: FederatedRoom,
) -> None:
    inbound = build_inbound(room)
    pdu, event_id = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "hi"})
    seen: list[Mapping[str, Any]] = []

    async def typing(origin: str, content: Mapping[str, Any]) -> None:
        seen.append(content)

    inbound.edus.register("m.typing", typing)
    body = txn([pdu], [{"edu_type": "m.typing", "content": {"room_id": room.room_id}}])
    first = await inbound.transactions.on_transaction(REMOTE, "t1", copy.deepcopy(body))
    checks = len(inbound.keyring.asked)
    again = await inbound.transactions.on_transaction(REMOTE, "t1", copy.deepcopy(body))
    assert again == first == {"pdus": {event_id: {}}}
    assert len(inbound.keyring.asked) == checks  # nothing checked the second time
    assert len(seen) == 1
    assert await count_events(room.db, event_id) == 1
    # The same ID from another server is another transaction.
    other = TestServer("other.test")
    inbound_other = build_inbound(room, other)
    answer = await inbound_other.transactions.on_transaction(
        "other.test", "t1", txn([], origin="other.test")
    )
    assert answer == {"pdus": {}}


@pytest_twisted.ensureDeferred
async def test_retry_during_processing_waits_for_the_first_attempt(room: FederatedRoom) -> None:
    inbound = build_inbound(room)
    pdu, event_id = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "hi"})
    attempts = [
        defer.ensureDeferred(
            inbound.transactions.on_transaction(REMOTE, "t1", copy.deepcopy(txn([pdu])))
        )
        for _ in range(3)
    ]
    responses = await defer.gatherResults(attempts)
    assert responses == [{"pdus": {event_id: {}}}] * 3
    assert len(inbound.keyring.asked) == 1
    assert await count_events(room.db, event_id) == 1


@pytest_twisted.ensureDeferred
async def test_bad_pdu_gets_an_error_and_the_others_are_stored(room: FederatedRoom) -> None:
    inbound = build_inbound(room)
    good, good_id = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "a"})
    forger = TestServer(REMOTE)  # not the key the keyring knows
    forged, forged_id = await room.remote_pdu(
        "m.room.message", {"msgtype": "m.text", "body": "b"}, server=forger
    )
    response = await inbound.transactions.on_transaction(REMOTE, "t1", txn([good, forged]))
    assert response["pdus"][good_id] == {}
    assert "signature" in response["pdus"][forged_id]["error"]
    assert await count_events(room.db, good_id) == 1
    assert await count_events(room.db, forged_id) == 0


@pytest_twisted.ensureDeferred
async def test_pdu_for_a_room_we_are_not_in_gets_an_error(room: FederatedRoom) -> None:
    inbound = build_inbound(room)
    pdu, _ = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "a"})
    pdu = copy.deepcopy(pdu)
    pdu["room_id"] = "!elsewhere:remote.test"
    pdu["event_id"] = "$v1style:remote.test"  # how a v1 PDU names itself
    response = await inbound.transactions.on_transaction(REMOTE, "t1", txn([pdu, "junk", 5]))
    assert response == {
        "pdus": {"$v1style:remote.test": {"error": "This server is not in the room"}}
    }


@pytest_twisted.ensureDeferred
async def test_pdu_for_a_room_our_last_user_left_gets_an_error(room: FederatedRoom) -> None:
    inbound = build_inbound(room)
    await room.send_local("m.room.member", {"membership": "leave"}, ALICE)
    pdu, event_id = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "a"})
    response = await inbound.transactions.on_transaction(REMOTE, "t1", txn([pdu]))
    assert response == {"pdus": {event_id: {"error": "This server is not in the room"}}}
    assert await count_events(room.db, event_id) == 0


@pytest_twisted.ensureDeferred
async def test_pdu_from_a_server_denied_by_the_acl_is_refused(room: FederatedRoom) -> None:
    inbound = build_inbound(room)
    await room.send_local(
        "m.room.server_acl", {"allow": ["*"], "deny": ["remote.test"]}, state_key=""
    )
    pdu, event_id = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "a"})
    response = await inbound.transactions.on_transaction(REMOTE, "t1", txn([pdu]))
    assert "ACL" in response["pdus"][event_id]["error"]
    assert await count_events(room.db, event_id) == 0
    # A relayed copy from a server the ACL allows is accepted (ACLs judge the origin).
    relay = TestServer("relay.test")
    inbound_relay = build_inbound(room, relay)
    response = await inbound_relay.transactions.on_transaction(
        "relay.test", "t1", txn([pdu], origin="relay.test")
    )
    assert response == {"pdus": {event_id: {}}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"origin": "evil.test", "origin_server_ts": 1, "pdus": []}, "origin"),
        ({"origin": REMOTE, "origin_server_ts": "1", "pdus": []}, "origin_server_ts"),
        ({"origin": REMOTE, "origin_server_ts": 1}, "pdus"),
        ({"origin": REMOTE, "origin_server_ts": 1, "pdus": {}}, "pdus"),
        ({"origin": REMOTE, "origin_server_ts": 1, "pdus": [], "edus": {}}, "edus"),
        ({"origin": REMOTE, "origin_server_ts": 1, "pdus": [{}] * 51}, "50 PDUs"),
        ({"origin": REMOTE, "origin_server_ts": 1, "pdus": [], "edus": [{}] * 101}, "100 EDUs"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_malformed_transaction_is_refused(
    room: FederatedRoom, body: dict[str, Any], message: str
) -> None:
    inbound = build_inbound(room)
    with pytest.raises(MatrixError) as raised:
        await inbound.transactions.on_transaction(REMOTE, "t1", body)
    assert raised.value.status == 400
    assert raised.value.errcode == "M_BAD_JSON"
    assert message in raised.value.message
    assert await inbound.store.get_response(REMOTE, "t1") is None


@pytest_twisted.ensureDeferred
async def test_edus_reach_their_handlers_and_a_failing_one_fails_nothing(
    room: FederatedRoom,
) -> None:
    inbound = build_inbound(room)
    seen: list[tuple[str, str, Mapping[str, Any]]] = []

    async def receipts(origin: str, content: Mapping[str, Any]) -> None:
        seen.append(("m.receipt", origin, content))

    async def broken(origin: str, content: Mapping[str, Any]) -> None:
        raise RuntimeError("handler bug")

    inbound.edus.register("m.receipt", receipts)
    inbound.edus.register("m.typing", broken)
    edus = [
        {"edu_type": "m.typing", "content": {}},
        {"edu_type": "m.unknown", "content": {}},
        {"edu_type": "m.receipt"},  # no content: ignored
        "not an object",
        {"edu_type": "m.receipt", "content": {"r": 1}},
    ]
    response = await inbound.transactions.on_transaction(REMOTE, "t1", txn([], edus))
    assert response == {"pdus": {}}
    assert seen == [("m.receipt", REMOTE, {"r": 1})]


@pytest_twisted.ensureDeferred
async def test_responses_older_than_a_day_are_pruned(room: FederatedRoom) -> None:
    inbound = build_inbound(room)
    await inbound.store.store_response(REMOTE, "old", '{"pdus": {}}', 1_000)
    await inbound.store.store_response(REMOTE, "new", '{"pdus": {}}', 10**13)
    assert await inbound.store.prune(10**12) == 1
    assert await inbound.store.get_response(REMOTE, "old") is None
    assert await inbound.store.get_response(REMOTE, "new") == '{"pdus": {}}'


@pytest_twisted.ensureDeferred
async def test_local_member_sees_remote_message(room: FederatedRoom) -> None:
    """The remote user's message is in Alice's room timeline, in order."""
    inbound = build_inbound(room)
    first, first_id = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "1"})
    await inbound.transactions.on_transaction(REMOTE, "t1", txn([first]))
    second, second_id = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "2"})
    await inbound.transactions.on_transaction(REMOTE, "t2", txn([second]))
    assert (await room.timeline())[-2:] == [first_id, second_id]


@pytest_twisted.ensureDeferred
async def test_typing_and_receipts_of_rooms_denying_the_server_are_dropped(
    room: FederatedRoom,
) -> None:
    inbound = build_inbound(room)
    seen: list[tuple[str, Mapping[str, Any]]] = []

    async def typing(origin: str, content: Mapping[str, Any]) -> None:
        seen.append(("m.typing", content))

    async def receipts(origin: str, content: Mapping[str, Any]) -> None:
        seen.append(("m.receipt", content))

    inbound.edus.register("m.typing", typing)
    inbound.edus.register("m.receipt", receipts)
    await room.send_local("m.room.server_acl", {"allow": ["*"], "deny": [REMOTE]}, "")
    other_room = "!elsewhere:example.org"  # unknown here: no ACL to deny
    edus = [
        {"edu_type": "m.typing", "content": {"room_id": room.room_id, "typing": True}},
        {"edu_type": "m.typing", "content": {"room_id": other_room, "typing": True}},
        {"edu_type": "m.receipt", "content": {room.room_id: {}, other_room: {"x": 1}}},
        {"edu_type": "m.receipt", "content": {room.room_id: {}}},
    ]
    await inbound.transactions.on_transaction(REMOTE, "t1", txn([], edus))
    assert seen == [
        ("m.typing", {"room_id": other_room, "typing": True}),
        ("m.receipt", {other_room: {"x": 1}}),
    ]


@pytest_twisted.ensureDeferred
async def test_a_receipt_edu_is_read_for_at_most_100_rooms(room: FederatedRoom) -> None:
    inbound = build_inbound(room)
    seen: list[Mapping[str, Any]] = []

    async def receipts(origin: str, content: Mapping[str, Any]) -> None:
        seen.append(content)

    inbound.edus.register("m.receipt", receipts)
    content: dict[str, Any] = {f"!r{n}:remote.test": {} for n in range(5000)}
    edus = [{"edu_type": "m.receipt", "content": content}]
    await inbound.transactions.on_transaction(REMOTE, "t1", txn([], edus))
    [kept] = seen
    assert list(kept) == [f"!r{n}:remote.test" for n in range(MAX_RECEIPT_ROOMS)]


@pytest_twisted.ensureDeferred
async def test_hostile_values_never_fail_the_transaction(room: FederatedRoom) -> None:
    inbound = build_inbound(room)
    good, good_id = await room.remote_pdu("m.room.message", {"msgtype": "m.text", "body": "ok"})
    hostile: list[Any] = [
        {"room_id": "!nul\x00:remote.test", "event_id": "$a:remote.test"},
        {"room_id": room.room_id},  # nothing else
        {"room_id": room.room_id, "event_id": 5, "depth": "deep", "content": []},
        {**good, "depth": 2**70},
        None,
    ]
    edus = [
        {"edu_type": "m.typing", "content": {"room_id": "!nul\x00:x"}},
        {"edu_type": "m.receipt", "content": {"!nul\x00:x": {}}},
    ]
    response = await inbound.transactions.on_transaction(REMOTE, "t1", txn([*hostile, good], edus))
    assert response["pdus"][good_id] == {}


@pytest_twisted.ensureDeferred
async def test_transactions_of_one_origin_queue_in_order_and_too_many_are_refused(
    room: FederatedRoom,
) -> None:
    """Each waits for the one before (the sender's order); past the queue's bound a
    sender that piles up retries is told to slow down (429)."""
    inbound = build_inbound(room)
    started: defer.Deferred[None] = defer.Deferred()
    release: defer.Deferred[None] = defer.Deferred()
    order: list[str] = []

    async def slow_typing(origin: str, content: Mapping[str, Any]) -> None:
        order.append(str(content["n"]))
        if content["n"] == 0:
            started.callback(None)
            await release

    inbound.edus.register("m.typing", slow_typing)
    queued = [
        defer.ensureDeferred(
            inbound.transactions.on_transaction(
                REMOTE, f"t{n}", txn([], [{"edu_type": "m.typing", "content": {"n": n}}])
            )
        )
        for n in range(MAX_QUEUED_PER_ORIGIN)
    ]
    await started
    assert order == ["0"]  # the rest wait behind the first
    with pytest.raises(MatrixError) as raised:
        await inbound.transactions.on_transaction(REMOTE, "one-too-many", txn([]))
    assert raised.value.status == 429
    # Another origin is not held up.
    other = build_inbound(room, TestServer("other.test"))
    assert await other.transactions.on_transaction(
        "other.test", "t0", txn([], origin="other.test")
    ) == {"pdus": {}}
    release.callback(None)
    await defer.gatherResults(queued)
    assert order == [str(n) for n in range(MAX_QUEUED_PER_ORIGIN)]
