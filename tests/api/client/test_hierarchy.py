"""/hierarchy over HTTP against the real server, on both engines."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tests.support.http import Response
from tests.support.matrix import auth, call, register
from tests.support.server_process import ServerProcess

V1 = "/_matrix/client/v1"


def hierarchy(server: ServerProcess, token: str, room_id: str, **query: Any) -> Response:
    suffix = f"?{urlencode(query)}" if query else ""
    return server.request("GET", f"{V1}/rooms/{room_id}/hierarchy{suffix}", headers=auth(token))


def ok(response: Response) -> Any:
    assert response.status == 200, response.body
    return response.json()


def errcode(response: Response) -> tuple[int, str]:
    return response.status, response.json()["errcode"]


def create_room(server: ServerProcess, token: str, **body: Any) -> str:
    room_id: str = ok(call(server, "POST", "/createRoom", token=token, body=body))["room_id"]
    return room_id


def create_space(server: ServerProcess, token: str, name: str, **body: Any) -> str:
    return create_room(server, token, name=name, creation_content={"type": "m.space"}, **body)


def add_child(
    server: ServerProcess, token: str, space: str, child: str, order: str, **extra: Any
) -> None:
    content = {"via": ["localhost"], "order": order, **extra}
    put = call(
        server, "PUT", f"/rooms/{space}/state/m.space.child/{child}", token=token, body=content
    )
    assert put.status == 200, put.body


def room_ids(body: dict[str, Any]) -> list[str]:
    return [room["room_id"] for room in body["rooms"]]


class Tree:
    """Alice's public space:

    space
      a  general (public, suggested)           order "a"
      b  subspace (public space)                order "b"
           b1 nested (public, suggested)        order "a"
      c  hidden (private, invite only)          order "c"
      d  members (restricted to the space)      order "d"
    """

    def __init__(self, server: ServerProcess, alice: str) -> None:
        self.space = create_space(server, alice, "Space", preset="public_chat", topic="Top")
        self.general = create_room(server, alice, preset="public_chat", name="General")
        self.subspace = create_space(server, alice, "Sub", preset="public_chat")
        self.nested = create_room(server, alice, preset="public_chat", name="Nested")
        self.hidden = create_room(server, alice, preset="private_chat", name="Hidden")
        restricted = {
            "type": "m.room.join_rules",
            "state_key": "",
            "content": {
                "join_rule": "restricted",
                "allow": [{"type": "m.room_membership", "room_id": self.space}],
            },
        }
        self.members = create_room(
            server, alice, name="Members", room_version="10", initial_state=[restricted]
        )
        add_child(server, alice, self.space, self.general, "a", suggested=True)
        add_child(server, alice, self.space, self.subspace, "b")
        add_child(server, alice, self.subspace, self.nested, "a", suggested=True)
        add_child(server, alice, self.space, self.hidden, "c")
        add_child(server, alice, self.space, self.members, "d")


def test_a_space_tree_as_a_member_sees_it(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    tree = Tree(open_server, alice)
    ok(call(open_server, "POST", f"/rooms/{tree.space}/join", token=bob, body={}))

    body = ok(hierarchy(open_server, bob, tree.space))
    # Depth first, children in `order`; the private room is left out.
    assert room_ids(body) == [tree.space, tree.general, tree.subspace, tree.nested, tree.members]
    assert "next_batch" not in body
    space, general, subspace, nested, members = body["rooms"]
    assert space["name"] == "Space" and space["topic"] == "Top"
    assert space["room_type"] == "m.space"
    assert space["num_joined_members"] == 2
    assert space["join_rule"] == "public"
    assert space["world_readable"] is False and space["guest_can_join"] is False
    children = space["children_state"]
    assert [c["state_key"] for c in children] == [
        tree.general,
        tree.subspace,
        tree.hidden,
        tree.members,
    ]
    assert children[0]["type"] == "m.space.child"
    assert children[0]["sender"] == "@alice:localhost"
    assert children[0]["content"] == {"via": ["localhost"], "order": "a", "suggested": True}
    assert isinstance(children[0]["origin_server_ts"], int)
    assert general["children_state"] == [] and "room_type" not in general
    assert general["name"] == "General" and general["num_joined_members"] == 1
    assert [c["state_key"] for c in subspace["children_state"]] == [tree.nested]
    assert nested["name"] == "Nested"
    # Bob may join the restricted room through his membership of the space.
    assert members["join_rule"] == "restricted"
    assert members["allowed_room_ids"] == [tree.space]
    assert "allowed_room_ids" not in general

    # Alice sees the private room she is in too.
    alices = ok(hierarchy(open_server, alice, tree.space))
    assert tree.hidden in room_ids(alices)

    suggested = ok(hierarchy(open_server, bob, tree.space, suggested_only="true"))
    assert room_ids(suggested) == [tree.space, tree.general]
    assert [c["state_key"] for c in suggested["rooms"][0]["children_state"]] == [tree.general]

    shallow = ok(hierarchy(open_server, bob, tree.space, max_depth=1))
    assert room_ids(shallow) == [tree.space, tree.general, tree.subspace, tree.members]
    assert room_ids(ok(hierarchy(open_server, bob, tree.space, max_depth=0))) == [tree.space]
    # From a subspace, only its part of the tree.
    assert room_ids(ok(hierarchy(open_server, bob, tree.subspace))) == [tree.subspace, tree.nested]


def test_a_restricted_room_is_hidden_from_non_members_of_its_allowed_rooms(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    tree = Tree(open_server, alice)
    # Carol has not joined the space: the public rooms show, the restricted one does not.
    body = ok(hierarchy(open_server, carol, tree.space))
    assert room_ids(body) == [tree.space, tree.general, tree.subspace, tree.nested]


def test_hierarchy_pages_carry_their_parameters(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    tree = Tree(open_server, alice)
    everything = room_ids(ok(hierarchy(open_server, alice, tree.space)))
    assert len(everything) == 6

    seen: list[str] = []
    query: dict[str, Any] = {"limit": 4, "max_depth": 5}
    sizes = []
    while True:
        page = ok(hierarchy(open_server, alice, tree.space, **query))
        seen.extend(room_ids(page))
        sizes.append(len(page["rooms"]))
        if "next_batch" not in page:
            break
        token = page["next_batch"]
        query = {"limit": 4, "max_depth": 5, "from": token}
    assert seen == everything
    assert sizes == [4, 2]

    first = ok(hierarchy(open_server, alice, tree.space, limit=2))
    token = first["next_batch"]
    for changed in (
        {"suggested_only": "true"},
        {"max_depth": 1},
    ):
        refused = hierarchy(open_server, alice, tree.space, limit=2, **{"from": token, **changed})
        assert errcode(refused) == (400, "M_INVALID_PARAM"), changed
    elsewhere = hierarchy(open_server, alice, tree.subspace, **{"from": token})
    assert errcode(elsewhere) == (400, "M_INVALID_PARAM")
    # The limit may change between pages.
    rest = ok(hierarchy(open_server, alice, tree.space, limit=10, **{"from": token}))
    assert room_ids(first) + room_ids(rest) == everything


def test_who_may_walk_a_space(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    eve = register(open_server, "eve")["access_token"]
    private = create_space(open_server, alice, "Private", preset="private_chat")
    child = create_room(open_server, alice, preset="public_chat")
    add_child(open_server, alice, private, child, "a")
    assert errcode(hierarchy(open_server, eve, private)) == (403, "M_FORBIDDEN")
    assert errcode(hierarchy(open_server, eve, "!unknown:localhost")) == (403, "M_FORBIDDEN")
    # Invited is enough to look.
    invite = call(
        open_server,
        "POST",
        f"/rooms/{private}/invite",
        token=alice,
        body={"user_id": "@eve:localhost"},
    )
    assert invite.status == 200, invite.body
    assert room_ids(ok(hierarchy(open_server, eve, private))) == [private, child]
    for query in (
        {"limit": "0"},
        {"limit": "many"},
        {"max_depth": "-1"},
        {"suggested_only": "maybe"},
        {"from": "not a token"},
        {"from": "bm9wZQ"},
    ):
        assert errcode(hierarchy(open_server, alice, private, **query)) == (
            400,
            "M_INVALID_PARAM",
        ), query
    assert errcode(hierarchy(open_server, alice, "not-a-room")) == (400, "M_INVALID_PARAM")
