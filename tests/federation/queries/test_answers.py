"""Other servers' answers to queries are checked before a client sees them: what is
not what the spec says is dropped, never passed on."""

from __future__ import annotations

from typing import Any

from federation.queries.directory import parse_public_rooms
from federation.queries.hierarchy import parse_remote_space
from federation.queries.media import _content_type, _file_name
from federation.queries.profiles import parse_profile
from homeserver.profile.fields import Profile

ROOM = "!room:remote.test"
CHILD = "!child:remote.test"


def chunk(room_id: str = ROOM, **extra: Any) -> dict[str, Any]:
    return {
        "room_id": room_id,
        "num_joined_members": 3,
        "world_readable": False,
        "guest_can_join": True,
        **extra,
    }


def test_a_profile_keeps_only_string_fields_and_mxc_avatars() -> None:
    assert parse_profile({"displayname": "Rita", "avatar_url": "mxc://r.test/a"}) == Profile(
        "Rita", "mxc://r.test/a"
    )
    assert parse_profile({"displayname": 7, "avatar_url": "https://evil.test/x"}) == Profile()
    assert parse_profile({"displayname": "x" * 1000}) == Profile()


def test_public_room_entries_that_are_not_chunks_are_dropped() -> None:
    body = {
        "chunk": [
            chunk(name="Lobby", join_rule="knock"),
            chunk(room_id="not a room"),
            chunk(num_joined_members=-1),
            chunk(world_readable="yes"),
            "nonsense",
            chunk(room_id=CHILD, name=["not", "text"]),
        ],
        "next_batch": "n1",
        "total_room_count_estimate": "many",
    }
    page = parse_public_rooms(body, page_size=10)
    assert [room.room_id for room in page.rooms] == [ROOM, CHILD]
    lobby, child = page.rooms
    assert (lobby.name, lobby.join_rule, lobby.guest_access) == ("Lobby", "knock", "can_join")
    assert child.name is None
    assert child.join_rule == "public"  # the spec's default
    assert page.next_batch == "n1"
    assert page.prev_batch is None
    assert page.total_room_count_estimate == 2


def test_a_public_room_page_is_cut_to_the_page_size() -> None:
    body = {"chunk": [chunk(room_id=f"!r{i}:remote.test") for i in range(20)]}
    assert len(parse_public_rooms(body, page_size=5).rooms) == 5
    assert parse_public_rooms({"chunk": "nope"}, page_size=5).rooms == []


def child_event(state_key: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "m.space.child",
        "state_key": state_key,
        "content": {"via": ["remote.test"]},
        "sender": "@rita:remote.test",
        "origin_server_ts": 5,
        **extra,
    }


def test_a_remote_space_is_reduced_to_checked_summaries() -> None:
    body = {
        "room": chunk(
            room_type="m.space",
            children_state=[
                child_event(CHILD),
                child_event(CHILD, type="m.room.name"),
                child_event(CHILD, content="not an object"),
                "nonsense",
            ],
            unknown_key="dropped",
        ),
        "children": [chunk(room_id=CHILD, name="Child"), chunk(room_id="bad"), chunk()],
        "inaccessible_children": ["!hidden:remote.test", 5, "bad"],
    }
    space = parse_remote_space(ROOM, body)
    assert space is not None
    assert space.room["room_type"] == "m.space"
    assert "unknown_key" not in space.room
    assert space.room["children_state"] == [child_event(CHILD)]
    # The room itself is never its own child.
    assert list(space.children) == [CHILD]
    assert space.children[CHILD]["name"] == "Child"
    assert space.inaccessible_children == frozenset({"!hidden:remote.test"})


def test_an_answer_about_another_room_is_refused() -> None:
    assert parse_remote_space(ROOM, {"room": chunk(room_id=CHILD)}) is None
    assert parse_remote_space(ROOM, {"room": "nope"}) is None
    assert parse_remote_space(ROOM, []) is None


def test_media_part_headers_are_checked() -> None:
    assert _content_type("image/png") == "image/png"
    assert _content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    assert _content_type("not a type") is None
    assert _file_name('attachment; filename="cat.png"') == "cat.png"
    assert _file_name("inline; filename*=utf-8''%C3%A9t%C3%A9.txt") == "été.txt"
    assert _file_name('attachment; filename="../../etc/passwd"') is None
    assert _file_name("inline") is None
