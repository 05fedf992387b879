"""Server ACLs between two of our servers, on both engines: ``ours`` is named
``localhost:<port>`` and ``other`` by the IP literal ``127.0.0.1:<port>``, so an ACL of
a room on ``ours`` can deny ``other`` by its name (ACLs ignore ports, and every other
test server is a ``localhost``).

A denied server's PDUs in ``/send`` are dropped with an error for each event ID, its
typing and receipt EDUs for the room are ignored, and the protected endpoints
(``make_join``, ``state_ids``, ``backfill`` ...) answer 403 ``M_FORBIDDEN``; once the
room's admin lifts the ACL, the same requests succeed.

spec: server-server-api.md#server-access-control-lists-acls,
client-server-api/modules/server_acls.md
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from tests.federation.interop.clients import (
    Conversation,
    ServerPair,
    User,
    create_room,
    has_event_id,
    is_membership,
    new_user,
    room_path,
    send_text,
    start_conversation,
)
from tests.support.federation import (
    FederatedServer,
    TestCA,
    database_section,
    federated_server,
    federation_request,
)
from tests.support.http import Response
from tests.support.matrix import CLIENT, auth

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-acl")]

#: Every server but those named by an IP literal (``other``).
DENY_IP_LITERALS = {"allow": ["*"], "allow_ip_literals": False}
#: Every server but ``127.0.0.1`` (``other``), whatever its port.
DENY_LOOPBACK_ADDRESS = {"allow": ["*"], "deny": ["127.0.0.1"]}
ALLOW_ALL = {"allow": ["*"]}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def acl_servers(
    request: pytest.FixtureRequest, ca: TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPair]:
    """``ours`` (``localhost:<port>``) and ``other`` (``127.0.0.1:<port>``)."""
    engine: str = request.param
    folder = tmp_path_factory.mktemp(f"acl-{engine}")
    with ExitStack() as stack:
        ours_db = stack.enter_context(database_section(engine, folder / "ours-db"))
        ours = stack.enter_context(federated_server(folder, ours_db, ca, name="ours"))
        other_db = stack.enter_context(database_section(engine, folder / "other-db"))
        other = stack.enter_context(
            federated_server(folder, other_db, ca, name="other", host="127.0.0.1")
        )
        assert other.server_name.startswith("127.0.0.1:")
        yield ServerPair(pairing="ours-ours", engine=engine, ca=ca, ours=ours, other=other)


def public_conversation(servers: ServerPair) -> Conversation:
    """``creator`` on ``ours`` made a public room; ``joiner`` of ``other`` is in it."""
    return start_conversation(servers.ours, servers.other, preset="public_chat")


def set_acl(admin: User, room_id: str, content: dict[str, Any]) -> str:
    """The room's ``m.room.server_acl``, set by its admin; the event ID."""
    event_id: str = admin.call(
        "PUT", room_path(room_id, "state", "m.room.server_acl", ""), content
    )["event_id"]
    return event_id


def as_other(servers: ServerPair, method: str, path: str, body: Any = None) -> Response:
    """A request of ``other`` (signed with its key) to ``ours``."""
    origin: FederatedServer = servers.other
    return federation_request(
        servers.ca,
        servers.ours,
        method,
        path,
        body=body,
        origin=origin.server_name,
        signing_key=origin.signing_key(),
    )


def send_transaction(
    servers: ServerPair,
    *,
    pdus: Sequence[dict[str, Any]] = (),
    edus: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """One transaction from ``other`` to ``ours``; its (200) answer."""
    response = as_other(
        servers,
        "PUT",
        f"/_matrix/federation/v1/send/acl{time.monotonic_ns()}",
        {
            "origin": servers.other.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": list(pdus),
            "edus": list(edus),
        },
    )
    assert response.status == 200, (response.status, response.body)
    answer: dict[str, Any] = response.json()
    return answer


def pdu_held_by_other(servers: ServerPair, event_id: str) -> dict[str, Any]:
    """The PDU of ``event_id`` as ``other`` serves it (``ours`` asking)."""
    origin: FederatedServer = servers.ours
    response = federation_request(
        servers.ca,
        servers.other,
        "GET",
        f"/_matrix/federation/v1/event/{quote(event_id, safe='')}",
        origin=origin.server_name,
        signing_key=origin.signing_key(),
    )
    assert response.status == 200, (response.status, response.body)
    pdus: list[dict[str, Any]] = response.json()["pdus"]
    return pdus[0]


def event_status(user: User, room_id: str, event_id: str) -> int:
    """The status of the user's ``GET /rooms/{roomId}/event/{eventId}``."""
    response = user.server.process.request(
        "GET", CLIENT + room_path(room_id, "event", event_id), headers=auth(user.access_token)
    )
    return response.status


def test_pdus_of_a_denied_server_are_dropped_until_the_acl_is_lifted(
    acl_servers: ServerPair,
) -> None:
    conversation = public_conversation(acl_servers)
    room_id, admin, member = conversation.room_id, conversation.creator, conversation.joiner
    set_acl(admin, room_id, DENY_IP_LITERALS)
    # The member's server makes the event (and sends it on, dropped as well); the test
    # hands the same PDU over itself to read the answer for it.
    event_id = send_text(member, room_id, "while denied")
    pdu = pdu_held_by_other(acl_servers, event_id)

    answer = send_transaction(acl_servers, pdus=[pdu])
    assert "error" in answer["pdus"][event_id], answer
    assert event_status(admin, room_id, event_id) == 404

    set_acl(admin, room_id, ALLOW_ALL)
    answer = send_transaction(acl_servers, pdus=[pdu])
    assert answer["pdus"][event_id] == {}, answer
    assert event_status(admin, room_id, event_id) == 200
    # And the member's server's own transactions are taken again.
    later = send_text(member, room_id, "after the ACL")
    conversation.creator_sync.wait_for_event(room_id, has_event_id(later))


def test_a_denied_server_cannot_join_or_read_the_room_until_the_acl_is_lifted(
    acl_servers: ServerPair,
) -> None:
    conversation = public_conversation(acl_servers)
    room_id, admin = conversation.room_id, conversation.creator
    # A room ``other`` has no member in: a join of its user needs ``make_join`` of ``ours``.
    lone_room = create_room(admin, preset="public_chat")
    acl_event = set_acl(admin, room_id, DENY_LOOPBACK_ADDRESS)
    set_acl(admin, lone_room, DENY_LOOPBACK_ADDRESS)
    newcomer = new_user(acl_servers.other, "newcomer")
    room = quote(room_id, safe="")
    versions = urlencode([("ver", version) for version in KNOWN_ROOM_VERSIONS])
    # ``other`` is in the room: without an ACL, each of these is answered.
    protected = [
        f"/_matrix/federation/v1/make_join/{room}/{quote(newcomer.user_id, safe='')}?{versions}",
        f"/_matrix/federation/v1/state_ids/{room}?{urlencode({'event_id': acl_event})}",
        f"/_matrix/federation/v1/backfill/{room}?{urlencode({'v': acl_event, 'limit': 5})}",
    ]
    join_lone_room = f"{CLIENT}/join/{quote(lone_room, safe='')}?" + urlencode(
        {"server_name": acl_servers.ours.server_name}
    )

    for path in protected:
        response = as_other(acl_servers, "GET", path)
        assert (response.status, response.json().get("errcode")) == (403, "M_FORBIDDEN"), path
    refused = newcomer.server.process.request(
        "POST", join_lone_room, json_body={}, headers=auth(newcomer.access_token)
    )
    assert refused.status != 200, refused.body

    set_acl(admin, room_id, ALLOW_ALL)
    set_acl(admin, lone_room, ALLOW_ALL)
    for path in protected:
        response = as_other(acl_servers, "GET", path)
        assert response.status == 200, (path, response.status, response.body)
    newcomer.call("POST", join_lone_room.removeprefix(CLIENT), {})
    joined = admin.call("GET", room_path(lone_room, "joined_members"))["joined"]
    assert newcomer.user_id in joined


def ephemeral(body: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]


def typing_in(body: dict[str, Any], room_id: str, user_id: str) -> bool:
    events = ephemeral(body, room_id, "m.typing")
    return bool(events) and user_id in events[-1]["content"]["user_ids"]


def receipt_in(body: dict[str, Any], room_id: str, event_id: str, user_id: str) -> bool:
    return any(
        user_id in event["content"].get(event_id, {}).get("m.read", {})
        for event in ephemeral(body, room_id, "m.receipt")
    )


def typing_edu(room_id: str, user_id: str, typing: bool) -> dict[str, Any]:
    return {
        "edu_type": "m.typing",
        "content": {"room_id": room_id, "user_id": user_id, "typing": typing},
    }


def receipt_edu(room_id: str, user_id: str, event_id: str) -> dict[str, Any]:
    receipt = {"event_ids": [event_id], "data": {"ts": int(time.time() * 1000)}}
    return {"edu_type": "m.receipt", "content": {room_id: {"m.read": {user_id: receipt}}}}


def test_typing_and_receipts_of_a_denied_server_are_ignored_until_the_acl_is_lifted(
    acl_servers: ServerPair,
) -> None:
    conversation = public_conversation(acl_servers)
    denied_room, admin, member = conversation.room_id, conversation.creator, conversation.joiner
    watcher = conversation.creator_sync
    # A second room, without an ACL: the member's EDUs there mark when those before
    # them in the same transaction were handled (EDUs are applied in order).
    open_room: str = admin.call(
        "POST", "/createRoom", {"preset": "public_chat", "name": secrets.token_hex(3)}
    )["room_id"]
    member.call(
        "POST",
        f"/join/{quote(open_room, safe='')}?"
        + urlencode({"server_name": acl_servers.ours.server_name}),
        {},
    )
    watcher.wait_for_event(
        open_room,
        lambda event: is_membership(event, member.user_id, "join"),
        what="the member joining the open room",
    )
    target = send_text(admin, denied_room, "receipt target")
    set_acl(admin, denied_room, DENY_IP_LITERALS)
    watcher.catch_up()

    send_transaction(
        acl_servers,
        edus=[
            typing_edu(denied_room, member.user_id, True),
            receipt_edu(denied_room, member.user_id, target),
            typing_edu(open_room, member.user_id, True),
        ],
    )
    seen: list[dict[str, Any]] = []

    def marker(body: dict[str, Any]) -> bool:
        seen.append(body)
        return typing_in(body, open_room, member.user_id)

    watcher.wait_for(marker, what="the member typing in the open room")
    # A fresh sync shows the rooms' current typing and receipts, whatever was missed.
    seen.append(admin.call("GET", "/sync?timeout=0"))
    assert not any(typing_in(body, denied_room, member.user_id) for body in seen)
    assert not any(receipt_in(body, denied_room, target, member.user_id) for body in seen)

    set_acl(admin, denied_room, ALLOW_ALL)
    send_transaction(
        acl_servers,
        edus=[
            typing_edu(denied_room, member.user_id, True),
            receipt_edu(denied_room, member.user_id, target),
        ],
    )
    got = {"typing": False, "receipt": False}

    def both(body: dict[str, Any]) -> bool:
        got["typing"] = got["typing"] or typing_in(body, denied_room, member.user_id)
        got["receipt"] = got["receipt"] or receipt_in(body, denied_room, target, member.user_id)
        return got["typing"] and got["receipt"]

    watcher.wait_for(both, what="the member's typing and receipt in the room")
    send_transaction(
        acl_servers,
        edus=[
            typing_edu(denied_room, member.user_id, False),
            typing_edu(open_room, member.user_id, False),
        ],
    )
