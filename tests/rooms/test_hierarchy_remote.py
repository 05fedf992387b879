"""The space hierarchy across servers, in-process on both engines: what another
server is told of our rooms (``server_hierarchy``), and how a walk takes in rooms
of other servers (through a :class:`RemoteHierarchy` that answers as a remote
server would)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import pytest
import pytest_twisted

from homeserver.errors import MatrixError
from homeserver.rooms.hierarchy import RemoteSpace
from tests.rooms.test_hierarchy import ALICE, Spaces, room_ids
from tests.rooms.test_hierarchy import spaces as spaces  # the fixture, shared

ORIGIN = "remote.test"
REMOTE_SPACE = "!space:remote.test"
REMOTE_CHILD = "!child:remote.test"
REMOTE_GRANDCHILD = "!grandchild:remote.test"
REMOTE_HIDDEN = "!hidden:remote.test"


class JoinedServersByRoom:
    """Which servers are in which room, as the test says."""

    def __init__(self, joined: dict[str, set[str]] | None = None) -> None:
        self.joined = joined or {}

    async def get_joined_servers(self, room_id: str) -> Collection[str]:
        return self.joined.get(room_id, set())


def summary(room_id: str, join_rule: str = "public", **extra: Any) -> dict[str, Any]:
    return {
        "room_id": room_id,
        "num_joined_members": 2,
        "world_readable": False,
        "guest_can_join": False,
        "join_rule": join_rule,
        **extra,
    }


def child_state(*room_ids: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "m.space.child",
            "state_key": room_id,
            "content": {"via": [ORIGIN]},
            "sender": "@rita:remote.test",
            "origin_server_ts": index,
        }
        for index, room_id in enumerate(room_ids)
    ]


class RemoteServer:
    """Answers ``/hierarchy`` for the rooms of remote.test; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def walk(self) -> RemoteServer:
        return self

    async def get_remote_space(
        self, room_id: str, via: Sequence[str], *, suggested_only: bool
    ) -> RemoteSpace | None:
        self.asked.append((room_id, tuple(via)))
        if room_id == REMOTE_SPACE:
            return RemoteSpace(
                room=summary(
                    REMOTE_SPACE,
                    room_type="m.space",
                    children_state=child_state(REMOTE_CHILD, REMOTE_HIDDEN),
                ),
                children={
                    REMOTE_CHILD: summary(
                        REMOTE_CHILD,
                        room_type="m.space",
                        children_state=child_state(REMOTE_GRANDCHILD),
                    )
                },
                inaccessible_children=frozenset({REMOTE_HIDDEN}),
            )
        if room_id == REMOTE_GRANDCHILD:
            return RemoteSpace(summary(REMOTE_GRANDCHILD, "invite"), {}, frozenset())
        return None


@pytest_twisted.ensureDeferred
async def test_another_server_sees_open_children_and_is_told_of_closed_ones(
    spaces: Spaces,
) -> None:
    space = await spaces.room(space=True)
    public = await spaces.room()
    private = await spaces.room(join_rule="invite")
    await spaces.child(space, public)
    await spaces.child(space, private)
    await spaces.child(space, "!unknown:elsewhere.test")
    body = await spaces.hierarchy.server_hierarchy(
        ORIGIN, space, suggested_only=False, joined_servers=JoinedServersByRoom()
    )
    assert body["room"]["room_id"] == space
    assert len(body["room"]["children_state"]) == 3
    assert [child["room_id"] for child in body["children"]] == [public]
    assert body["inaccessible_children"] == [private]


@pytest_twisted.ensureDeferred
async def test_a_private_room_is_hidden_unless_the_server_has_members_in_it(
    spaces: Spaces,
) -> None:
    private = await spaces.room(join_rule="invite")
    with pytest.raises(MatrixError) as hidden:
        await spaces.hierarchy.server_hierarchy(
            ORIGIN, private, suggested_only=False, joined_servers=JoinedServersByRoom()
        )
    assert hidden.value.status == 404
    joined = JoinedServersByRoom({private: {ORIGIN}})
    body = await spaces.hierarchy.server_hierarchy(
        ORIGIN, private, suggested_only=False, joined_servers=joined
    )
    assert body["room"]["room_id"] == private


@pytest_twisted.ensureDeferred
async def test_a_restricted_room_shows_to_servers_in_an_allowed_room(spaces: Spaces) -> None:
    allowed = await spaces.room(join_rule="invite")
    allow = [{"type": "m.room_membership", "room_id": allowed}]
    restricted = await spaces.room(join_rule="restricted", extra={"allow": allow})
    with pytest.raises(MatrixError):
        await spaces.hierarchy.server_hierarchy(
            ORIGIN, restricted, suggested_only=False, joined_servers=JoinedServersByRoom()
        )
    joined = JoinedServersByRoom({allowed: {ORIGIN}})
    body = await spaces.hierarchy.server_hierarchy(
        ORIGIN, restricted, suggested_only=False, joined_servers=joined
    )
    assert body["room"]["allowed_room_ids"] == [allowed]


@pytest_twisted.ensureDeferred
async def test_a_walk_takes_in_remote_rooms_through_their_via(spaces: Spaces) -> None:
    remote = RemoteServer()
    spaces.hierarchy.use_remote_hierarchy(remote)
    space = await spaces.room(space=True)
    await spaces.state(space, "m.space.child", REMOTE_SPACE, {"via": [ORIGIN]})
    body = await spaces.walk(space, user_id=ALICE)
    # The invite-only grandchild is not for Alice; the inaccessible one is skipped.
    assert room_ids(body) == [space, REMOTE_SPACE, REMOTE_CHILD]
    remote_space = body["rooms"][1]
    assert [child["state_key"] for child in remote_space["children_state"]] == [
        REMOTE_CHILD,
        REMOTE_HIDDEN,
    ]
    # One request for the remote space (its answer covered its child), one for the
    # grandchild the answer did not describe.
    assert remote.asked == [(REMOTE_SPACE, (ORIGIN,)), (REMOTE_GRANDCHILD, (ORIGIN,))]


@pytest_twisted.ensureDeferred
async def test_an_unknown_room_is_asked_of_the_server_its_id_names(spaces: Spaces) -> None:
    remote = RemoteServer()
    spaces.hierarchy.use_remote_hierarchy(remote)
    body = await spaces.walk(REMOTE_SPACE, max_depth=0)
    assert room_ids(body) == [REMOTE_SPACE]
    assert remote.asked == [(REMOTE_SPACE, (ORIGIN,))]


@pytest_twisted.ensureDeferred
async def test_without_federation_remote_rooms_stay_unknown(spaces: Spaces) -> None:
    with pytest.raises(MatrixError) as refused:
        await spaces.walk(REMOTE_SPACE)
    assert refused.value.status == 403
