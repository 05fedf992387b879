"""What other servers may read of a room: events, state, auth chains, missing events,
through the handler with the real stores on both engines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor

from federation.acl import ServerAcl
from federation.inbound.event_reads import EventReadHandler
from federation.inbound.pdu_checks import PduChecker
from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.storage.erased_users import ErasedUserStore
from homeserver.storage.event_graph import EventGraphStore
from tests.federation.inbound.conftest import LOCAL, REMOTE, FederatedRoom
from tests.federation.inbound.signing import TestKeyring, TestServer


def reads_of(
    room: FederatedRoom, partial_state: Callable[[str], Awaitable[bool]] | None = None
) -> EventReadHandler:
    return EventReadHandler(
        server_name=LOCAL,
        events=room.events,
        state=room.state,
        graph=EventGraphStore(room.db, room.state),
        acl=ServerAcl(events=room.events, state=room.state),
        clock=Clock(reactor),
        partial_state=partial_state,
    )


async def refused(coroutine: Any) -> tuple[int, str]:
    with pytest.raises(MatrixError) as raised:
        await coroutine
    return raised.value.status, raised.value.errcode


@pytest_twisted.ensureDeferred
async def test_event_is_served_to_a_server_in_the_room(room: FederatedRoom) -> None:
    message = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "hi"})
    answer = await reads_of(room).get_event(REMOTE, message.event_id)
    assert answer["origin"] == LOCAL
    assert answer["pdus"] == [message.pdu]


@pytest_twisted.ensureDeferred
async def test_servers_not_in_the_room_or_denied_by_the_acl_are_refused(
    room: FederatedRoom,
) -> None:
    message = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "hi"})
    reads = reads_of(room)
    assert await refused(reads.get_event("stranger.test", message.event_id)) == (
        403,
        "M_FORBIDDEN",
    )
    assert await refused(reads.get_event(REMOTE, "$unknown")) == (404, "M_NOT_FOUND")
    await room.send_local("m.room.server_acl", {"allow": ["*"], "deny": [REMOTE]}, "")
    assert await refused(reads.get_event(REMOTE, message.event_id)) == (403, "M_FORBIDDEN")
    assert await refused(reads.get_state_ids(REMOTE, room.room_id, message.event_id)) == (
        403,
        "M_FORBIDDEN",
    )


@pytest_twisted.ensureDeferred
async def test_history_from_before_a_server_joined_is_redacted_for_it(
    room: FederatedRoom,
) -> None:
    await room.send_local("m.room.history_visibility", {"history_visibility": "joined"}, "")
    secret = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "secret"})
    other = TestServer("other.test")
    pdu, _ = await room.remote_pdu(
        "m.room.member",
        {"membership": "join"},
        sender="@olga:other.test",
        state_key="@olga:other.test",
        server=other,
    )
    joined = await PduChecker(TestKeyring(other)).check(
        secret.room_version, pdu, origin="other.test"
    )
    [result] = await room.pipeline.path.receive(room.room_id, [joined], origin="other.test")
    assert result.outcome is not None and result.outcome.is_accepted
    later = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "later"})
    reads = reads_of(room)

    [hidden] = (await reads.get_event("other.test", secret.event_id))["pdus"]
    assert hidden["content"] == {}
    assert hidden["hashes"] == secret.pdu["hashes"]  # the graph stays whole
    [shown] = (await reads.get_event("other.test", later.event_id))["pdus"]
    assert shown["content"]["body"] == "later"
    # remote.test was joined all along: it sees both.
    [seen] = (await reads.get_event(REMOTE, secret.event_id))["pdus"]
    assert seen["content"]["body"] == "secret"
    # Judged on the state after each event: olga's own join is served whole.
    [own_join] = (await reads.get_event("other.test", joined.event_id))["pdus"]
    assert own_join["content"] == {"membership": "join"}


@pytest_twisted.ensureDeferred
async def test_state_ids_and_state_are_the_state_before_the_event(room: FederatedRoom) -> None:
    topic = await room.send_local("m.room.topic", {"topic": "first"}, "")
    before = {key: e.event_id for key, e in (await room.current_state()).items()}
    await room.send_local("m.room.topic", {"topic": "second"}, "")
    message = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "hi"})
    reads = reads_of(room)
    # The state before the second topic: the first topic is in it.
    second_topic = (await room.current_state())[("m.room.topic", "")]
    answer = await reads.get_state_ids(REMOTE, room.room_id, second_topic.event_id)
    assert sorted(answer["pdu_ids"]) == sorted(before.values())
    assert topic.event_id in answer["pdu_ids"]
    create_id = before[("m.room.create", "")]
    assert create_id in answer["auth_chain_ids"]
    full = await reads.get_state(REMOTE, room.room_id, message.event_id)
    assert {p["content"].get("topic") for p in full["pdus"] if p["type"] == "m.room.topic"} == {
        "second"
    }
    assert any(p["type"] == "m.room.create" for p in full["auth_chain"])
    assert await refused(reads.get_state_ids(REMOTE, room.room_id, "$nope")) == (
        404,
        "M_NOT_FOUND",
    )
    assert await refused(reads.get_state_ids(REMOTE, "!other:example.org", message.event_id)) == (
        404,
        "M_NOT_FOUND",
    )


@pytest_twisted.ensureDeferred
async def test_event_auth_is_the_events_auth_chain(room: FederatedRoom) -> None:
    message = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "hi"})
    answer = await reads_of(room).get_event_auth(REMOTE, room.room_id, message.event_id)
    types = sorted((p["type"], p.get("state_key")) for p in answer["auth_chain"])
    assert ("m.room.create", "") in types
    assert ("m.room.power_levels", "") in types
    assert ("m.room.member", "@alice:example.org") in types
    assert all(p["type"] != "m.room.message" for p in answer["auth_chain"])


@pytest_twisted.ensureDeferred
async def test_missing_events_are_those_between_earliest_and_latest(room: FederatedRoom) -> None:
    start = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "0"})
    middle = [
        await room.send_local("m.room.message", {"msgtype": "m.text", "body": str(n)})
        for n in range(1, 4)
    ]
    latest = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "4"})
    reads = reads_of(room)
    answer = await reads.get_missing_events(
        REMOTE,
        room.room_id,
        earliest=[start.event_id],
        latest=[latest.event_id],
        limit=10,
        min_depth=0,
    )
    assert [p["content"]["body"] for p in answer["events"]] == ["1", "2", "3"]
    limited = await reads.get_missing_events(
        REMOTE,
        room.room_id,
        earliest=[start.event_id],
        latest=[latest.event_id],
        limit=2,
        min_depth=0,
    )
    # The newest ones first when limited: they are what the asker lacks most.
    assert [p["content"]["body"] for p in limited["events"]] == ["2", "3"]
    deep = await reads.get_missing_events(
        REMOTE,
        room.room_id,
        earliest=[start.event_id],
        latest=[latest.event_id],
        limit=10,
        min_depth=middle[1].depth,
    )
    assert [p["content"]["body"] for p in deep["events"]] == ["2", "3"]
    assert await refused(
        reads.get_missing_events(
            "stranger.test",
            room.room_id,
            earliest=[],
            latest=[latest.event_id],
            limit=10,
            min_depth=0,
        )
    ) == (403, "M_FORBIDDEN")


@pytest_twisted.ensureDeferred
async def test_events_of_erased_senders_are_served_redacted(room: FederatedRoom) -> None:
    message = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "mine"})
    erased = ErasedUserStore(room.db)
    reads = EventReadHandler(
        server_name=LOCAL,
        events=room.events,
        state=room.state,
        graph=EventGraphStore(room.db, room.state),
        acl=ServerAcl(events=room.events, state=room.state),
        clock=Clock(reactor),
        erased=erased,
    )
    [before] = (await reads.get_event(REMOTE, message.event_id))["pdus"]
    assert before["content"]["body"] == "mine"
    await erased.mark_erased(message.sender)
    [after] = (await reads.get_event(REMOTE, message.event_id))["pdus"]
    assert after["content"] == {}


@pytest_twisted.ensureDeferred
async def test_the_state_of_a_room_we_hold_partially_is_not_served(room: FederatedRoom) -> None:
    """While we fetch a room's members after a partial-state join, our state of it is
    not the room's: /state and /state_ids send the asker elsewhere."""
    message = await room.send_local("m.room.message", {"msgtype": "m.text", "body": "hi"})
    partial_rooms = {room.room_id}

    async def is_partial(room_id: str) -> bool:
        return room_id in partial_rooms

    reads = reads_of(room, is_partial)
    for read in (reads.get_state_ids, reads.get_state):
        assert await refused(read(REMOTE, room.room_id, message.event_id)) == (
            404,
            "M_NOT_FOUND",
        )
    partial_rooms.clear()
    answer = await reads.get_state_ids(REMOTE, room.room_id, message.event_id)
    assert answer["pdu_ids"]
