"""Membership between two of our servers on loopback over TLS: invites, joins, leaves,
rejected invites and knocks as both servers' clients see them, and the membership
endpoints over HTTP with X-Matrix signatures (forged, wrong origin, unknown room,
incompatible version).  Both engines; one pair of servers per engine, shared by
the module (each test makes its own users and rooms).

spec: server-server-api.md#joining-rooms, #knocking-rooms, #inviting-to-a-room,
#leaving-rooms-rejecting-invites
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from signedjson.key import generate_signing_key

from homeserver.events.room_versions import get_room_version
from homeserver.events.signing import sign_event_and_compute_id
from tests.federation.interop.clients import (
    SyncWatcher,
    User,
    create_room,
    invite,
    is_membership,
    join,
    new_user,
    room_path,
)
from tests.support.federation import (
    FederatedServer,
    TestCA,
    database_section,
    federated_server,
    federation_request,
)
from tests.support.synapse_server import SynapseServer, synapse_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-membership")]


@attrs.frozen
class Pair:
    ca: TestCA
    #: Where the rooms are created (the resident).
    home: FederatedServer
    #: Whose users join, leave and knock through ``home``.
    away: FederatedServer

    def require_ours(self, *servers: FederatedServer) -> None:
        """Skip a test of our own behaviour when one of ``servers`` is Synapse."""
        if any(isinstance(server, SynapseServer) for server in servers):
            pytest.skip("about our server's behaviour, not Synapse's")


#: (home, away): ours with ours; Synapse's users in our rooms (our serving side);
#: our users in Synapse's rooms (our asking side).  Synapse runs on SQLite.
PAIRINGS = [("ours", "ours", "sqlite"), ("ours", "ours", "postgres")]
PAIRINGS += [("ours", "synapse", "sqlite"), ("synapse", "ours", "postgres")]


@pytest.fixture(scope="module", params=PAIRINGS, ids=["-".join(p) for p in PAIRINGS])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    home_kind, away_kind, engine = request.param
    folder = tmp_path_factory.mktemp(f"membership-{engine}")
    ca = TestCA.create(folder / "ca")
    with ExitStack() as stack:

        def start(kind: str, name: str) -> FederatedServer:
            if kind == "synapse":
                return stack.enter_context(synapse_server(folder, ca, name=name))
            database = stack.enter_context(database_section(engine, folder / f"{name}-db"))
            return stack.enter_context(federated_server(folder, database, ca, name=name))

        yield Pair(ca, start(home_kind, "home"), start(away_kind, "away"))


def membership_in(user: User, room_id: str, target: str) -> str | None:
    """``target``'s membership in ``room_id`` as ``user``'s server has it."""
    response = user.server.process.request(
        "GET",
        "/_matrix/client/v3" + room_path(room_id, "state", "m.room.member", target),
        headers={"Authorization": f"Bearer {user.access_token}"},
    )
    if response.status == 404:
        return None
    assert response.status == 200, (response.status, response.body)
    membership: str = response.json()["membership"]
    return membership


def section_with(section: str, room_id: str) -> Any:
    return lambda body: body.get("rooms", {}).get(section, {}).get(room_id)


# --- invites and joins -----------------------------------------------------------


def test_a_remote_invite_shows_the_room_and_the_inviter_to_the_invitee(pair: Pair) -> None:
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    room_id = create_room(alice, name="Invitation")
    invite(alice, room_id, bob)
    invited = SyncWatcher(bob).wait_for(section_with("invite", room_id), what="the invite")
    state = {(e["type"], e["state_key"]): e for e in invited["invite_state"]["events"]}
    assert ("m.room.create", "") in state
    assert state[("m.room.name", "")]["content"] == {"name": "Invitation"}
    assert state[("m.room.member", bob.user_id)]["sender"] == alice.user_id
    assert membership_in(alice, room_id, bob.user_id) == "invite"


def test_the_invitee_joins_through_the_inviters_server_and_both_see_both(pair: Pair) -> None:
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    room_id = create_room(alice)
    invite(alice, room_id, bob)
    SyncWatcher(bob).wait_for(section_with("invite", room_id), what="the invite")
    # No via: the server of the inviter is the candidate.
    bob.call("POST", f"/join/{quote(room_id, safe='')}", {})
    for user in (alice, bob):
        joined = user.call("GET", room_path(room_id, "joined_members"))["joined"]
        assert set(joined) == {alice.user_id, bob.user_id}, user.server.server_name


def test_a_remote_invitee_of_create_room_gets_a_direct_invite_and_joins(pair: Pair) -> None:
    """``createRoom``'s ``invite`` of another server's user goes through that server
    (``/v2/invite``), as clients open a DM; ``is_direct`` is in the invite it sees.

    spec: client-server-api/_index.md#creation, server-server-api.md#inviting-to-a-room
    """
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    room_id = create_room(alice, name="A chat", invite=[bob.user_id], is_direct=True)
    invited = SyncWatcher(bob).wait_for(section_with("invite", room_id), what="the invite")
    state = {(e["type"], e["state_key"]): e for e in invited["invite_state"]["events"]}
    assert state[("m.room.name", "")]["content"] == {"name": "A chat"}
    member = state[("m.room.member", bob.user_id)]
    assert (member["sender"], member["content"].get("is_direct")) == (alice.user_id, True)
    assert membership_in(alice, room_id, bob.user_id) == "invite"
    # No via: the server of the inviter is the candidate.
    bob.call("POST", f"/join/{quote(room_id, safe='')}", {})
    for user in (alice, bob):
        joined = user.call("GET", room_path(room_id, "joined_members"))["joined"]
        assert set(joined) == {alice.user_id, bob.user_id}, user.server.server_name


def test_create_room_invites_local_and_remote_users_past_an_unreachable_one(pair: Pair) -> None:
    """An invitee whose server cannot be reached is not invited, and the room is
    created all the same with everyone else invited (local invitees in the first
    batch, remote ones after it)."""
    pair.require_ours(pair.home)
    alice, carol = new_user(pair.home, "alice"), new_user(pair.home, "carol")
    bob = new_user(pair.away, "bob")
    stranger = "@someone:localhost:1"  # nothing listens on port 1
    room_id = create_room(alice, invite=[carol.user_id, stranger, bob.user_id])
    assert membership_in(alice, room_id, carol.user_id) == "invite"
    assert membership_in(alice, room_id, stranger) is None
    assert membership_in(alice, room_id, bob.user_id) == "invite"
    SyncWatcher(bob).wait_for(section_with("invite", room_id), what="the invite")
    SyncWatcher(carol).wait_for(section_with("invite", room_id), what="the local invite")


def test_create_room_whose_remote_invite_the_rules_refuse_leaves_no_room(pair: Pair) -> None:
    """A remote invite is checked with the room's first events, so one the auth rules
    would refuse fails the request before anything is stored or sent."""
    pair.require_ours(pair.home)
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    response = pair.home.process.request(
        "POST",
        "/_matrix/client/v3/createRoom",
        json_body={
            "room_version": "11",
            "invite": [bob.user_id],
            "power_level_content_override": {"invite": 101},
        },
        headers={"Authorization": f"Bearer {alice.access_token}"},
    )
    assert (response.status, response.json()["errcode"]) == (400, "M_INVALID_ROOM_STATE")
    assert bob.user_id in response.json()["error"]
    assert alice.call("GET", "/joined_rooms") == {"joined_rooms": []}


def test_a_remote_user_joins_a_public_room_by_id_with_via(pair: Pair) -> None:
    alice, carol = new_user(pair.home, "alice"), new_user(pair.away, "carol")
    room_id = create_room(alice, preset="public_chat")
    join(carol, room_id, [pair.home.server_name])
    assert membership_in(alice, room_id, carol.user_id) == "join"
    joined = SyncWatcher(carol).wait_for(section_with("join", room_id), what="the joined room")
    senders = {e["state_key"] for e in joined["state"]["events"] if e["type"] == "m.room.member"}
    senders |= {
        e["state_key"] for e in joined["timeline"]["events"] if e["type"] == "m.room.member"
    }
    assert alice.user_id in senders


def test_joining_a_room_no_known_server_has_is_not_found(pair: Pair) -> None:
    pair.require_ours(pair.away)
    dan = new_user(pair.away, "dan")
    response = pair.away.process.request(
        "POST",
        f"/_matrix/client/v3/join/{quote('!nowhere:' + pair.home.server_name, safe='')}",
        json_body={},
        headers={"Authorization": f"Bearer {dan.access_token}"},
    )
    assert response.status == 404, response.body


def test_an_invite_of_a_user_whose_server_cannot_be_reached_stores_nothing(pair: Pair) -> None:
    pair.require_ours(pair.home)
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice)
    stranger = "@someone:localhost:1"  # nothing listens on port 1
    response = pair.home.process.request(
        "POST",
        "/_matrix/client/v3" + room_path(room_id, "invite"),
        json_body={"user_id": stranger},
        headers={"Authorization": f"Bearer {alice.access_token}"},
    )
    assert response.status == 502, response.body
    assert membership_in(alice, room_id, stranger) is None


def test_a_restricted_join_is_vouched_for_by_the_resident(pair: Pair) -> None:
    """spec: server-server-api.md#restricted-rooms"""
    alice, bob = new_user(pair.home, "alice"), new_user(pair.away, "bob")
    space = create_room(alice, preset="public_chat", room_version="10")
    join(bob, space, [pair.home.server_name])
    join_rules = {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": space}],
    }
    restricted = create_room(
        alice,
        room_version="10",
        initial_state=[{"type": "m.room.join_rules", "state_key": "", "content": join_rules}],
    )
    join(bob, restricted, [pair.home.server_name])
    assert membership_in(alice, restricted, bob.user_id) == "join"
    member = bob.call("GET", room_path(restricted, "state", "m.room.member", bob.user_id))
    assert member["join_authorised_via_users_server"] == alice.user_id


# --- leaving ---------------------------------------------------------------------


def test_rejecting_a_remote_invite_reaches_the_inviting_server(pair: Pair) -> None:
    alice, erin = new_user(pair.home, "alice"), new_user(pair.away, "erin")
    room_id = create_room(alice)
    invite(alice, room_id, erin)
    erin_sync = SyncWatcher(erin)
    erin_sync.wait_for(section_with("invite", room_id), what="the invite")
    erin.call("POST", room_path(room_id, "leave"), {})
    assert membership_in(alice, room_id, erin.user_id) == "leave"
    erin_sync.wait_for(section_with("leave", room_id), what="the rejected invite as left")


def test_a_remote_member_leaving_is_seen_by_the_resident(pair: Pair) -> None:
    alice, fay = new_user(pair.home, "alice"), new_user(pair.away, "fay")
    room_id = create_room(alice, preset="public_chat")
    join(fay, room_id, [pair.home.server_name])
    alice_sync = SyncWatcher(alice)
    fay.call("POST", room_path(room_id, "leave"), {})
    alice_sync.wait_for_event(
        room_id, lambda event: is_membership(event, fay.user_id, "leave"), what="fay leaving"
    )


# --- knocking --------------------------------------------------------------------


def test_a_knock_reaches_the_resident_and_the_knocker_sees_the_room(pair: Pair) -> None:
    alice, gus = new_user(pair.home, "alice"), new_user(pair.away, "gus")
    room_id = create_room(
        alice,
        name="Knock here",
        room_version="10",
        initial_state=[
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}
        ],
    )
    alice_sync = SyncWatcher(alice)
    gus.call("POST", f"/knock/{quote(room_id, safe='')}?via={pair.home.server_name}", {})
    alice_sync.wait_for_event(
        room_id, lambda event: is_membership(event, gus.user_id, "knock"), what="gus knocking"
    )
    knocked = SyncWatcher(gus).wait_for(section_with("knock", room_id), what="the knocked room")
    kinds = {event["type"] for event in knocked["knock_state"]["events"]}
    assert {"m.room.create", "m.room.join_rules", "m.room.name"} <= kinds


# --- the endpoints over HTTP -----------------------------------------------------


def make_join(
    pair: Pair, room_id: str, user_id: str, *, key: Any = None, ver: str = "10"
) -> tuple[int, dict[str, Any]]:
    pair.require_ours(pair.home)
    path = (
        f"/_matrix/federation/v1/make_join/{quote(room_id, safe='')}/{quote(user_id, safe='')}"
        f"?ver={ver}"
    )
    response = federation_request(
        pair.ca,
        pair.home,
        "GET",
        path,
        origin=pair.away.server_name,
        signing_key=key if key is not None else pair.away.signing_key(),
    )
    return response.status, response.json()


def test_make_join_over_http_answers_a_template(pair: Pair) -> None:
    pair.require_ours(pair.home)
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10")
    status, body = make_join(pair, room_id, pair.away.user_id("hal"))
    assert status == 200, body
    assert body["room_version"] == "10"
    assert body["event"]["content"]["membership"] == "join"


def test_make_join_with_a_forged_signature_is_unauthorized(pair: Pair) -> None:
    pair.require_ours(pair.home)
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10")
    forged = generate_signing_key(pair.away.signing_key().version)
    status, body = make_join(pair, room_id, pair.away.user_id("hal"), key=forged)
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")


def test_make_join_for_a_user_of_another_server_is_forbidden_over_http(pair: Pair) -> None:
    pair.require_ours(pair.home)
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10")
    status, body = make_join(pair, room_id, pair.home.user_id("mallory"))
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_make_join_of_an_unknown_room_is_not_found_over_http(pair: Pair) -> None:
    pair.require_ours(pair.home)
    status, body = make_join(pair, f"!unknown:{pair.home.server_name}", pair.away.user_id("hal"))
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_make_join_without_a_supported_version_is_incompatible_over_http(pair: Pair) -> None:
    pair.require_ours(pair.home)
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10")
    status, body = make_join(pair, room_id, pair.away.user_id("hal"), ver="9")
    assert (status, body["errcode"], body["room_version"]) == (
        400,
        "M_INCOMPATIBLE_ROOM_VERSION",
        "10",
    )


def test_the_legacy_v1_send_join_answers_status_and_body(pair: Pair) -> None:
    """Older servers still call v1, which answers ``[200, body]``.
    spec: data/api/server-server/joins-v1.yaml"""
    pair.require_ours(pair.home)
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10")
    user_id = pair.away.user_id("ivy")
    status, made = make_join(pair, room_id, user_id)
    assert status == 200, made
    key = pair.away.signing_key()
    pdu = {k: v for k, v in made["event"].items() if k != "origin"}
    pdu["origin_server_ts"] = int(time.time() * 1000)
    event_id = sign_event_and_compute_id(pdu, pair.away.server_name, key, get_room_version("10"))
    response = federation_request(
        pair.ca,
        pair.home,
        "PUT",
        f"/_matrix/federation/v1/send_join/{quote(room_id, safe='')}/{quote(event_id, safe='')}",
        body=pdu,
        origin=pair.away.server_name,
        signing_key=key,
    )
    assert response.status == 200, response.body
    status_in_body, body = response.json()
    assert status_in_body == 200
    assert {(e["type"], e["state_key"]) for e in body["state"]} >= {
        ("m.room.create", ""),
        ("m.room.member", alice.user_id),
    }
    assert membership_in(alice, room_id, user_id) == "join"


def test_make_join_of_a_banned_user_is_forbidden_over_http(pair: Pair) -> None:
    pair.require_ours(pair.home)
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10")
    banned = pair.away.user_id("banned")
    alice.call("POST", room_path(room_id, "ban"), {"user_id": banned})
    status, body = make_join(pair, room_id, banned)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_make_join_from_a_server_the_acl_denies_is_forbidden_over_http(pair: Pair) -> None:
    """spec: server-server-api.md#server-access-control-lists-acls"""
    pair.require_ours(pair.home)
    alice = new_user(pair.home, "alice")
    room_id = create_room(alice, preset="public_chat", room_version="10")
    acl = {"allow": ["*"], "deny": ["localhost"], "allow_ip_literals": True}
    # Both test servers are named localhost:<port>: the ACL matches the host part.
    alice.call("PUT", room_path(room_id, "state", "m.room.server_acl", ""), acl)
    status, body = make_join(pair, room_id, pair.away.user_id("hal"))
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
