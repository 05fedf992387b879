"""The space hierarchy handler in-process on both engines: child order, loops, invalid
children, which rooms show, and its pagination tokens."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import pytest_twisted
from signedjson.key import generate_signing_key
from twisted.internet.task import Clock as FakeReactor

from homeserver.auth.tokens import Requester
from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.rooms.builder import EventDraft
from homeserver.rooms.hierarchy import (
    HierarchyToken,
    SpaceHierarchyHandler,
    decode_token,
    encode_token,
)
from homeserver.rooms.pipeline import EventPipeline
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore

ALICE = "@alice:example.org"
BOB = "@bob:example.org"


@attrs.define
class Spaces:
    pipeline: EventPipeline
    hierarchy: SpaceHierarchyHandler
    time: FakeReactor

    async def state(self, room_id: str, event_type: str, key: str, content: dict[str, Any]) -> None:
        await self.pipeline.send(EventDraft(room_id, event_type, ALICE, content, state_key=key))

    async def room(
        self,
        *,
        space: bool = False,
        join_rule: str = "public",
        history_visibility: str = "shared",
        version: str = "10",
        extra: dict[str, Any] | None = None,
    ) -> str:
        [created, *_] = await self.pipeline.create_room(
            version, ALICE, {"type": "m.space"} if space else {}
        )
        room_id = created.event.room_id
        await self.state(room_id, "m.room.member", ALICE, {"membership": "join"})
        await self.state(room_id, "m.room.power_levels", "", {"users": {ALICE: 100}})
        await self.state(
            room_id, "m.room.join_rules", "", {"join_rule": join_rule, **(extra or {})}
        )
        await self.state(
            room_id, "m.room.history_visibility", "", {"history_visibility": history_visibility}
        )
        return room_id

    async def child(self, space: str, child: str, **content: Any) -> None:
        self.time.advance(1)
        await self.state(space, "m.space.child", child, {"via": ["example.org"], **content})

    async def walk(self, room_id: str, user_id: str = BOB, **options: Any) -> dict[str, Any]:
        return await self.hierarchy.hierarchy(Requester(user_id, "D", 0, False), room_id, **options)


@pytest_twisted.async_yield_fixture
async def spaces(db: Database) -> AsyncIterator[Spaces]:
    time = FakeReactor()
    time.advance(1_700_000_000)
    state_store = StateStore(db)
    events = EventStore(db, state_store)
    timeline = TimelineStore(db, events)
    yield Spaces(
        EventPipeline(
            server_name="example.org",
            signing_key=generate_signing_key("a_test"),
            clock=Clock(time),
            events=events,
            state=state_store,
        ),
        SpaceHierarchyHandler(
            state=RoomStateReader(events, state_store, timeline), timeline=timeline
        ),
        time,
    )


def room_ids(body: dict[str, Any]) -> list[str]:
    return [room["room_id"] for room in body["rooms"]]


@pytest_twisted.ensureDeferred
async def test_children_follow_the_spec_order(spaces: Spaces) -> None:
    space = await spaces.room(space=True)
    a, b, c, d, e, f = [await spaces.room() for _ in range(6)]
    # The spec's example: b (" "), a ("aaaa"), c ("first"), then e and d by timestamp.
    await spaces.child(space, d)
    await spaces.child(space, c, order="first")
    await spaces.child(space, a, order="aaaa")
    await spaces.child(space, e)
    await spaces.child(space, b, order=" ")
    # An invalid order (outside \x20-\x7E, or too long) counts as none.
    await spaces.child(space, f, order="\u00e9")
    body = await spaces.walk(space)
    assert room_ids(body) == [space, b, a, c, d, e, f]
    assert [child["state_key"] for child in body["rooms"][0]["children_state"]] == [
        b,
        a,
        c,
        d,
        e,
        f,
    ]


@pytest_twisted.ensureDeferred
async def test_same_order_falls_back_to_timestamp_then_room_id(spaces: Spaces) -> None:
    space = await spaces.room(space=True)
    first, second, third, fourth = [await spaces.room() for _ in range(4)]
    await spaces.child(space, third, order="x")
    await spaces.child(space, first, order="x")
    # Sent in the same millisecond: the room ID decides.
    same_time = sorted([second, fourth])
    await spaces.child(space, same_time[1], order="x")
    await spaces.state(space, "m.space.child", same_time[0], {"via": ["a"], "order": "x"})
    assert room_ids(await spaces.walk(space)) == [space, third, first, *same_time]


@pytest_twisted.ensureDeferred
async def test_loops_and_repeats_list_each_room_once(spaces: Spaces) -> None:
    top = await spaces.room(space=True)
    inner = await spaces.room(space=True)
    shared = await spaces.room()
    await spaces.child(top, inner, order="a")
    await spaces.child(top, shared, order="b")
    await spaces.child(inner, top, order="a")
    await spaces.child(inner, shared, order="b")
    assert room_ids(await spaces.walk(top)) == [top, inner, shared]
    assert room_ids(await spaces.walk(inner)) == [inner, top, shared]


@pytest_twisted.ensureDeferred
async def test_invalid_and_unknown_children_are_left_out(spaces: Spaces) -> None:
    space = await spaces.room(space=True)
    valid = await spaces.room()
    another = await spaces.room()
    await spaces.child(space, valid, order="a")
    invalid: list[dict[str, Any]] = [{"via": []}, {"via": "example.org"}, {"via": [1]}, {}]
    for content in invalid:
        await spaces.state(space, "m.space.child", another, content)
    await spaces.state(space, "m.space.child", "not-a-room", {"via": ["example.org"]})
    await spaces.child(space, "!elsewhere:remote.example", order="b")
    body = await spaces.walk(space)
    # The remote room is a valid child (in children_state) but this server cannot
    # describe it without federation.
    assert room_ids(body) == [space, valid]
    assert [c["state_key"] for c in body["rooms"][0]["children_state"]] == [
        valid,
        "!elsewhere:remote.example",
    ]


@pytest_twisted.ensureDeferred
async def test_which_rooms_a_non_member_sees(spaces: Spaces) -> None:
    space = await spaces.room(space=True)
    public = await spaces.room()
    knock = await spaces.room(join_rule="knock")
    knock_restricted = await spaces.room(join_rule="knock_restricted")
    readable = await spaces.room(join_rule="invite", history_visibility="world_readable")
    invite_only = await spaces.room(join_rule="invite")
    restricted_to_space = await spaces.room(
        join_rule="restricted",
        extra={"allow": [{"type": "m.room_membership", "room_id": space}]},
    )
    encrypted = await spaces.room()
    await spaces.state(encrypted, "m.room.encryption", "", {"algorithm": "m.megolm.v1.aes-sha2"})
    for order, room in enumerate(
        (public, knock, knock_restricted, readable, invite_only, restricted_to_space, encrypted)
    ):
        await spaces.child(space, room, order=str(order))

    outside = await spaces.walk(space)
    assert room_ids(outside) == [space, public, knock, knock_restricted, readable, encrypted]
    by_id = {room["room_id"]: room for room in outside["rooms"]}
    assert by_id[readable]["world_readable"] is True
    assert by_id[knock_restricted]["allowed_room_ids"] == []
    assert by_id[encrypted]["encryption"] == "m.megolm.v1.aes-sha2"
    assert by_id[public]["room_version"] == "10"

    # Joining the space opens the restricted room; an invite opens the private one.
    await spaces.pipeline.send(
        EventDraft(space, "m.room.member", BOB, {"membership": "join"}, state_key=BOB)
    )
    await spaces.state(invite_only, "m.room.member", BOB, {"membership": "invite"})
    inside = await spaces.walk(space)
    assert room_ids(inside) == [
        space,
        public,
        knock,
        knock_restricted,
        readable,
        invite_only,
        restricted_to_space,
        encrypted,
    ]
    restricted_entry = inside["rooms"][6]
    assert restricted_entry["allowed_room_ids"] == [space]
    assert restricted_entry["join_rule"] == "restricted"


@pytest_twisted.ensureDeferred
async def test_knock_rules_need_a_room_version_that_has_them(spaces: Spaces) -> None:
    space = await spaces.room(space=True)
    # Room version 6 has no knocking: "knock" there lets no one in.
    old = await spaces.room(join_rule="knock", version="6")
    await spaces.child(space, old)
    assert room_ids(await spaces.walk(space)) == [space]


@pytest_twisted.ensureDeferred
async def test_a_room_that_is_not_a_space_has_no_children(spaces: Spaces) -> None:
    plain = await spaces.room()
    child = await spaces.room()
    await spaces.child(plain, child)
    body = await spaces.walk(plain)
    assert room_ids(body) == [plain]
    assert body["rooms"][0]["children_state"] == []


@pytest_twisted.ensureDeferred
async def test_pages_resume_where_the_last_one_stopped(spaces: Spaces) -> None:
    space = await spaces.room(space=True)
    rooms = [await spaces.room() for _ in range(5)]
    for order, room in enumerate(rooms):
        await spaces.child(space, room, order=str(order))
    first = await spaces.walk(space, limit=3)
    assert room_ids(first) == [space, *rooms[:2]]
    assert decode_token(first["next_batch"]) == HierarchyToken(space, False, 50, 3)
    second = await spaces.walk(space, limit=3, from_token=first["next_batch"])
    assert room_ids(second) == rooms[2:]
    assert "next_batch" not in second
    with pytest.raises(MatrixError) as raised:
        await spaces.walk(space, limit=3, max_depth=3, from_token=first["next_batch"])
    assert (raised.value.status, raised.value.errcode) == (400, "M_INVALID_PARAM")
    # max_depth above the ceiling is the ceiling, so the token still matches.
    resumed = await spaces.walk(space, limit=3, max_depth=500, from_token=first["next_batch"])
    assert room_ids(resumed) == rooms[2:]


def test_tokens_round_trip_and_reject_anything_else() -> None:
    token = HierarchyToken("!space:example.org", True, 7, 20)
    assert decode_token(encode_token(token)) == token
    bad_payloads = [
        b"[]",
        b'["!a:b", true, 7]',
        b'["!a:b", 1, 7, 20]',
        b'["!a:b", true, -1, 20]',
        b'["!a:b", true, 7, 0]',
        b'["!a:b", true, 7, 1.5]',
        b"[1, true, 7, 20]",
        b"not json",
    ]
    for payload in bad_payloads:
        encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        with pytest.raises(MatrixError):
            decode_token(encoded)
    for text in ("", "has space", "+/", "x" * 5000):
        with pytest.raises(MatrixError):
            decode_token(text)
