"""``PUT /send/{txnId}`` and the graph reads over real HTTPS between two of our
servers: the sending side of each request is the test, signing as the other server
with that server's real key (so the receiver fetches and checks it), or as a forger.

spec: server-server-api.md#put_matrixfederationv1sendtxnid,
server-server-api.md#request-authentication, server-server-api.md#retrieving-events
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from signedjson.key import generate_signing_key

from homeserver.events.format import event_from_pdu
from homeserver.events.room_versions import get_room_version
from homeserver.rooms.builder import EventDraft, RoomPosition, build_local_event
from tests.federation.interop.clients import (
    User,
    create_room,
    invite,
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
from tests.support.http import Response

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-inbound-send")]

_txn_ids = itertools.count()


@attrs.frozen
class Servers:
    ca: TestCA
    #: The server under test: it receives the transactions.
    receiver: FederatedServer
    #: The server the test speaks for (its key signs requests and PDUs).
    sender: FederatedServer


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    folder = tmp_path_factory.mktemp(f"send-{request.param}")
    ca = TestCA.create(folder / "ca")
    with ExitStack() as stack:
        receiver_db = stack.enter_context(database_section(request.param, folder / "r-db"))
        sender_db = stack.enter_context(database_section(request.param, folder / "s-db"))
        receiver = stack.enter_context(federated_server(folder, receiver_db, ca, name="receiver"))
        sender = stack.enter_context(federated_server(folder, sender_db, ca, name="sender"))
        yield Servers(ca, receiver, sender)


def send(servers: Servers, txn_id: str, body: dict[str, Any], *, forged: bool = False) -> Response:
    origin = servers.sender
    return federation_request(
        servers.ca,
        servers.receiver,
        "PUT",
        f"/_matrix/federation/v1/send/{quote(txn_id, safe='')}",
        body=body,
        origin=origin.server_name,
        signing_key=generate_signing_key("forged") if forged else origin.signing_key(),
    )


def read(servers: Servers, path: str) -> Response:
    return federation_request(
        servers.ca,
        servers.receiver,
        "GET",
        path,
        origin=servers.sender.server_name,
        signing_key=servers.sender.signing_key(),
    )


def transaction(servers: Servers, pdus: list[Any], edus: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "origin": servers.sender.server_name,
        "origin_server_ts": int(time.time() * 1000),
        "pdus": pdus,
    }
    if edus is not None:
        body["edus"] = edus
    return body


def new_txn_id() -> str:
    return f"t{next(_txn_ids)}-{time.monotonic_ns()}"


def test_transaction_is_answered_and_a_replay_gets_the_same_answer(servers: Servers) -> None:
    pdu = {"room_id": "!unknown:" + servers.sender.server_name, "event_id": "$e:x", "type": "x"}
    body = transaction(servers, [pdu])
    txn_id = new_txn_id()
    first = send(servers, txn_id, body)
    assert first.status == 200, first.body
    assert first.json() == {"pdus": {"$e:x": {"error": "This server is not in the room"}}}
    again = send(servers, txn_id, body)
    assert (again.status, again.json()) == (200, first.json())


def test_forged_request_signature_is_refused(servers: Servers) -> None:
    response = send(servers, new_txn_id(), transaction(servers, []), forged=True)
    assert response.status == 401, response.body
    assert response.json()["errcode"] == "M_UNAUTHORIZED"


@pytest.mark.parametrize(
    "change",
    [
        {"pdus": "not a list"},
        {"origin": "someone.else"},
        {"origin_server_ts": "yesterday"},
        {"pdus": [{}] * 51},
    ],
)
def test_malformed_transaction_is_refused(servers: Servers, change: dict[str, Any]) -> None:
    response = send(servers, new_txn_id(), {**transaction(servers, []), **change})
    assert response.status == 400, response.body
    assert response.json()["errcode"] == "M_BAD_JSON"


def test_unknown_event_and_room_reads_are_not_found(servers: Servers) -> None:
    response = read(servers, "/_matrix/federation/v1/event/%24nope")
    assert response.status == 404, response.body
    response = read(servers, "/_matrix/federation/v1/state_ids/%21nope%3Ax?event_id=%24nope")
    assert response.status == 404, response.body


# --- in a room both servers are in ---------------------------------------------------


@attrs.frozen
class SharedRoom:
    room_id: str
    host: User
    guest: User


@pytest.fixture(scope="module")
def shared_room(servers: Servers) -> SharedRoom:
    """A room on the receiver that a user of the sender has joined (over federation)."""
    return make_shared_room(servers)


def make_shared_room(servers: Servers) -> SharedRoom:
    host = new_user(servers.receiver, "host")
    guest = new_user(servers.sender, "guest")
    room_id = create_room(host, preset="public_chat")
    invite(host, room_id, guest)
    join(guest, room_id, [servers.receiver.server_name])
    return SharedRoom(room_id, host, guest)


def next_pdu(
    servers: Servers, room: SharedRoom, body: str, *, key: Any = None
) -> tuple[dict[str, Any], str]:
    """A message of the guest, signed as its server would (or with ``key``), after the
    receiver's latest event, built on the state the receiver serves for it."""
    [(pdu, event_id)] = chained_pdus(servers, room, [body], key=key)
    return pdu, event_id


def chained_pdus(
    servers: Servers, room: SharedRoom, bodies: list[str], *, key: Any = None
) -> list[tuple[dict[str, Any], str]]:
    """Messages of the guest, each citing the one before, the first after the
    receiver's latest event (as :func:`next_pdu`)."""
    latest = room.host.call("GET", room_path(room.room_id, "messages") + "?dir=b&limit=1")
    [last] = latest["chunk"]
    answer = read(
        servers,
        f"/_matrix/federation/v1/state/{quote(room.room_id, safe='')}"
        f"?event_id={quote(last['event_id'], safe='')}",
    )
    assert answer.status == 200, answer.body
    state_pdus = answer.json()["pdus"]
    create = next(p for p in state_pdus if p["type"] == "m.room.create")
    room_version = get_room_version(create["content"].get("room_version", "1"))
    state = {}
    for pdu in state_pdus:
        state[(pdu["type"], pdu["state_key"])] = event_from_pdu(pdu, room_version).event_id
    if "state_key" in last:
        state[(last["type"], last["state_key"])] = last["event_id"]
    last_pdu = read(servers, f"/_matrix/federation/v1/event/{quote(last['event_id'], safe='')}")
    assert last_pdu.status == 200, last_pdu.body
    prev_id, depth = last["event_id"], last_pdu.json()["pdus"][0]["depth"]
    built = []
    for body in bodies:
        event = build_local_event(
            room_version,
            EventDraft(
                room.room_id,
                "m.room.message",
                room.guest.user_id,
                {"msgtype": "m.text", "body": body},
            ),
            RoomPosition(prev_event_ids=[prev_id], max_prev_depth=depth, state_before=state),
            server_name=servers.sender.server_name,
            signing_key=key or servers.sender.signing_key(),
            origin_server_ts=int(time.time() * 1000),
        )
        built.append((json.loads(json.dumps(event.pdu)), event.event_id))
        prev_id, depth = event.event_id, event.depth
    return built


def messages_of(room: SharedRoom) -> list[str]:
    chunk = room.host.call("GET", room_path(room.room_id, "messages") + "?dir=b&limit=50")["chunk"]
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


def test_pdu_is_stored_once_however_often_its_transaction_comes(
    servers: Servers, shared_room: SharedRoom
) -> None:
    pdu, event_id = next_pdu(servers, shared_room, "once")
    txn_id = new_txn_id()
    first = send(servers, txn_id, transaction(servers, [pdu]))
    assert (first.status, first.json()) == (200, {"pdus": {event_id: {}}})
    again = send(servers, txn_id, transaction(servers, [pdu]))
    assert (again.status, again.json()) == (200, first.json())
    assert messages_of(shared_room).count("once") == 1
    # Served back to the sender as stored.
    response = read(servers, f"/_matrix/federation/v1/event/{quote(event_id, safe='')}")
    assert response.status == 200, response.body
    assert response.json()["pdus"][0]["content"]["body"] == "once"


def test_pdu_with_a_forged_signature_is_refused(servers: Servers, shared_room: SharedRoom) -> None:
    pdu, event_id = next_pdu(servers, shared_room, "forged", key=generate_signing_key("x"))
    response = send(servers, new_txn_id(), transaction(servers, [pdu]))
    assert response.status == 200, response.body
    assert "signature" in response.json()["pdus"][event_id]["error"]
    assert "forged" not in messages_of(shared_room)


def test_graph_reads_over_https(servers: Servers, shared_room: SharedRoom) -> None:
    first = send_text_as_host(shared_room, "first")
    middle = send_text_as_host(shared_room, "middle")
    last = send_text_as_host(shared_room, "last")
    room = quote(shared_room.room_id, safe="")

    state_ids = read(
        servers, f"/_matrix/federation/v1/state_ids/{room}?event_id={quote(last, safe='')}"
    )
    assert state_ids.status == 200, state_ids.body
    assert state_ids.json()["pdu_ids"] and state_ids.json()["auth_chain_ids"]

    auth = read(servers, f"/_matrix/federation/v1/event_auth/{room}/{quote(last, safe='')}")
    assert auth.status == 200, auth.body
    assert "m.room.create" in {p["type"] for p in auth.json()["auth_chain"]}

    missing = federation_request(
        servers.ca,
        servers.receiver,
        "POST",
        f"/_matrix/federation/v1/get_missing_events/{room}",
        body={"earliest_events": [first], "latest_events": [last], "limit": 10},
        origin=servers.sender.server_name,
        signing_key=servers.sender.signing_key(),
    )
    assert missing.status == 200, missing.body
    assert [p["content"]["body"] for p in missing.json()["events"]] == ["middle"]
    assert middle


def send_text_as_host(room: SharedRoom, body: str) -> str:
    path = room_path(room.room_id, "send", "m.room.message", new_txn_id())
    event_id: str = room.host.call("PUT", path, {"msgtype": "m.text", "body": body})["event_id"]
    return event_id


def test_pdus_from_a_server_the_acl_denies_are_refused(servers: Servers) -> None:
    """Ports do not count: denying ``localhost`` denies the sender ``localhost:<port>``
    (and the receiver too, which is why this room is the test's own)."""
    room = make_shared_room(servers)
    # Built first: once denied, the sender cannot read the state to build on.
    pdu, event_id = next_pdu(servers, room, "denied")
    acl_path = room_path(room.room_id, "state", "m.room.server_acl", "")
    room.host.call("PUT", acl_path, {"allow": ["*"], "deny": ["localhost"]})
    response = send(servers, new_txn_id(), transaction(servers, [pdu]))
    assert response.status == 200, response.body
    assert "ACL" in response.json()["pdus"][event_id]["error"]
    assert "denied" not in messages_of(room)
    room_id = quote(room.room_id, safe="")
    refused = read(servers, f"/_matrix/federation/v1/state_ids/{room_id}?event_id=%24x")
    assert (refused.status, refused.json()["errcode"]) == (403, "M_FORBIDDEN")


def test_a_gap_is_filled_from_the_server_that_sent_the_event(
    servers: Servers, shared_room: SharedRoom
) -> None:
    """The sender holds three messages; only the last reaches the receiver, which
    fetches the two before it from the sender (``/get_missing_events``) and shows all.

    The three are the guest's, put on the sender's server by a transaction relayed
    "from" the receiver (the test holds its key): the sender stores them but, not
    having created them, does not pass them on itself.
    """
    chain = chained_pdus(servers, shared_room, ["gap 1", "gap 2", "gap 3"])
    relayed = federation_request(
        servers.ca,
        servers.sender,
        "PUT",
        f"/_matrix/federation/v1/send/{new_txn_id()}",
        body={
            "origin": servers.receiver.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": [pdu for pdu, _ in chain],
        },
        origin=servers.receiver.server_name,
        signing_key=servers.receiver.signing_key(),
    )
    assert relayed.status == 200, relayed.body
    assert relayed.json() == {"pdus": {event_id: {} for _, event_id in chain}}

    last_pdu, last_id = chain[-1]
    response = send(servers, new_txn_id(), transaction(servers, [last_pdu]))
    assert (response.status, response.json()) == (200, {"pdus": {last_id: {}}})
    assert messages_of(shared_room)[:3] == ["gap 3", "gap 2", "gap 1"]
