"""Every stable room version, rooms v1/v2 included, over HTTP against the real server.

Rooms v1/v2 use the V1 event format: event IDs are ``$opaque:server`` chosen by the
sending server and carried in the event, references are ``[event_id, {"sha256":
reference hash}]`` pairs, and v1 resolves state with the v1 algorithm.  The tests use
each room like any other (create, invite, join, send, state, redact, relations,
/sync, /messages, /context, /event) and then check the stored PDUs themselves.

spec: rooms/v1.md, rooms/v2.md, rooms/fragments/v1-event-ids.md,
data/api/server-server/definitions/pdu_v1.yaml, client-server-api/_index.md#capabilities-negotiation
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from signedjson.key import get_verify_key

from homeserver.crypto.keys import read_signing_key
from homeserver.events.hashing import check_content_hash, compute_event_id, reference_hashes
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, EventFormat
from homeserver.events.signing import VerifyKeyWithExpiry, verify_event_signatures
from homeserver.events.validation import validate_pdu
from homeserver.storage.event_json import stored_event_json
from tests.support.database import run_sql
from tests.support.http import Response
from tests.support.matrix import auth, call, register
from tests.support.server_process import ServerProcess

#: What an event ID looks like in each event format (spec: appendices.md#event-ids).
EVENT_ID_PATTERNS = {
    EventFormat.V1: r"\$[^:]+:localhost",
    EventFormat.V2: r"\$[A-Za-z0-9+/]{43}",
    EventFormat.V3: r"\$[A-Za-z0-9_-]{43}",
}


def ok(response: Response) -> Any:
    assert response.status == 200, response.body
    return response.json()


def q(identifier: str) -> str:
    """An ID as one path segment (v3 event IDs may contain ``/`` and ``+``)."""
    return quote(identifier, safe="")


def send(server: ServerProcess, token: str, room_id: str, txn: str, content: Any) -> str:
    path = f"/rooms/{q(room_id)}/send/m.room.message/{txn}"
    event_id: str = ok(call(server, "PUT", path, token=token, body=content))["event_id"]
    return event_id


def stored_pdus(database_config: dict[str, Any], room_id: str) -> dict[str, dict[str, Any]]:
    """event ID (the column) -> the PDU as stored, for every event of ``room_id``."""
    rows = run_sql(database_config, "SELECT event_id, json, pdu FROM events ORDER BY event_nid")
    pdus = {
        event_id: json.loads(stored_event_json(text, compressed))
        for event_id, text, compressed in rows
    }
    return {event_id: pdu for event_id, pdu in pdus.items() if pdu.get("room_id") == room_id}


def assert_stored_events_are_valid(
    server: ServerProcess, database_config: dict[str, Any], room_id: str, version: str
) -> dict[str, dict[str, Any]]:
    """Each stored PDU is valid for ``version``, hashed, signed by us, identified as the
    version says, and references its prev/auth events in the version's format."""
    room_version = KNOWN_ROOM_VERSIONS[version]
    pdus = stored_pdus(database_config, room_id)
    assert pdus
    key = read_signing_key(server.tmp_path / "localhost.signing.key")
    keys = {"localhost": {f"ed25519:{key.version}": VerifyKeyWithExpiry(get_verify_key(key))}}
    for event_id, pdu in pdus.items():
        validate_pdu(pdu, room_version)
        assert check_content_hash(pdu), event_id
        verify_event_signatures(pdu, room_version, keys)
        assert compute_event_id(pdu, room_version) == event_id
        for field in ("prev_events", "auth_events"):
            for reference in pdu[field]:
                if room_version.event_format is EventFormat.V1:
                    # spec: pdu_v1.yaml -- [event_id, {"sha256": reference hash}]
                    referenced_id, hashes = reference
                    referenced = pdus[referenced_id]
                    assert hashes == reference_hashes(referenced, room_version)
                else:
                    assert isinstance(reference, str) and reference in pdus
        if room_version.event_format is EventFormat.V1:
            assert pdu["event_id"] == event_id
            assert pdu["origin"] == "localhost"
        else:
            assert "event_id" not in pdu
    return pdus


@pytest.mark.parametrize("version", ["1", "2", "3", "11"])
def test_room_version_room_can_be_created_joined_and_used(
    open_server: ServerProcess, database_config: dict[str, Any], version: str
) -> None:
    server = open_server
    id_pattern = EVENT_ID_PATTERNS[KNOWN_ROOM_VERSIONS[version].event_format]
    alice = register(server, "alice")["access_token"]
    bob = register(server, "bob")["access_token"]
    carol = register(server, "carol")["access_token"]
    room_id = ok(
        call(
            server,
            "POST",
            "/createRoom",
            token=alice,
            body={"room_version": version, "preset": "public_chat", "name": "Before"},
        )
    )["room_id"]
    assert room_id.endswith(":localhost")
    room = f"/rooms/{q(room_id)}"
    create = ok(call(server, "GET", f"{room}/state/m.room.create", token=alice))
    assert create["room_version"] == version

    # A second user joins (public room); a third is invited, then joins.
    assert ok(call(server, "POST", f"/join/{q(room_id)}", token=bob, body={})) == {
        "room_id": room_id
    }
    ok(call(server, "POST", f"{room}/invite", token=alice, body={"user_id": "@carol:localhost"}))
    ok(call(server, "POST", f"{room}/join", token=carol, body={}))

    # Both talk; a state change; Alice (power 100) redacts Bob's second message.
    hello = send(server, alice, room_id, "a1", {"msgtype": "m.text", "body": "hello"})
    reply = send(server, bob, room_id, "b1", {"msgtype": "m.text", "body": "hi alice"})
    doomed = send(server, bob, room_id, "b2", {"msgtype": "m.text", "body": "oops"})
    name_id = ok(
        call(server, "PUT", f"{room}/state/m.room.name", token=alice, body={"name": "After"})
    )["event_id"]
    redaction_id = ok(
        call(server, "PUT", f"{room}/redact/{q(doomed)}/r1", token=alice, body={"reason": "x"})
    )["event_id"]
    thumbs = ok(
        call(
            server,
            "PUT",
            f"{room}/send/m.reaction/c1",
            token=carol,
            body={"m.relates_to": {"rel_type": "m.annotation", "event_id": hello, "key": "+1"}},
        )
    )["event_id"]
    sent = [hello, reply, doomed, name_id, redaction_id, thumbs]
    for event_id in sent:
        assert re.fullmatch(id_pattern, event_id), event_id
    assert len(set(sent)) == len(sent)

    # /event fetches by ID; the redacted message has lost its content.
    fetched = ok(call(server, "GET", f"{room}/event/{q(reply)}", token=carol))
    assert (fetched["event_id"], fetched["content"]["body"]) == (reply, "hi alice")
    gone = ok(call(server, "GET", f"{room}/event/{q(doomed)}", token=carol))
    assert gone["content"] == {}
    assert gone["unsigned"]["redacted_because"]["event_id"] == redaction_id
    name = ok(call(server, "GET", f"{room}/state/m.room.name", token=bob))
    assert name == {"name": "After"}
    members = ok(call(server, "GET", f"{room}/joined_members", token=bob))
    assert sorted(members["joined"]) == [f"@{u}:localhost" for u in ("alice", "bob", "carol")]

    # /sync shows the timeline with the IDs the sends returned.
    sync_filter = quote(json.dumps({"room": {"timeline": {"limit": 50}}}))
    synced = ok(call(server, "GET", f"/sync?filter={sync_filter}", token=bob))
    timeline = synced["rooms"]["join"][room_id]["timeline"]["events"]
    timeline_ids = [e["event_id"] for e in timeline]
    assert timeline_ids[-len(sent) :] == sent
    assert all(re.fullmatch(id_pattern, event_id) for event_id in timeline_ids)
    assert timeline[0]["type"] == "m.room.create"

    # /messages pages backwards through the same events, in reverse.
    paged: list[str] = []
    token = None
    while True:
        path = f"{room}/messages?dir=b&limit=3" + (f"&from={token}" if token else "")
        page = ok(call(server, "GET", path, token=bob))
        paged.extend(e["event_id"] for e in page["chunk"])
        if "end" not in page:
            break
        token = page["end"]
    assert paged == list(reversed(timeline_ids))

    # /context around Bob's reply.
    context = ok(call(server, "GET", f"{room}/context/{q(reply)}?limit=2", token=alice))
    assert context["event"]["event_id"] == reply
    assert [e["event_id"] for e in context["events_before"]] == [hello]
    assert [e["event_id"] for e in context["events_after"]] == [doomed]

    # Relations: Carol's reaction to Alice's message.
    relations = server.request(
        "GET",
        f"/_matrix/client/v1{room}/relations/{q(hello)}/m.annotation",
        headers=auth(alice),
    )
    assert [e["event_id"] for e in ok(relations)["chunk"]] == [thumbs]

    # The stored events have the version's shape, hashes and our signatures.
    pdus = assert_stored_events_are_valid(server, database_config, room_id, version)
    assert set(timeline_ids) <= set(pdus)


def test_capabilities_list_every_known_room_version_as_stable_and_each_can_be_created(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    caps = ok(call(open_server, "GET", "/capabilities", token=alice))["capabilities"]
    versions = caps["m.room_versions"]
    assert versions["available"] == {version: "stable" for version in KNOWN_ROOM_VERSIONS}
    assert versions["default"] in KNOWN_ROOM_VERSIONS
    for version in versions["available"]:
        created = call(
            open_server, "POST", "/createRoom", token=alice, body={"room_version": version}
        )
        room_id = ok(created)["room_id"]
        create = ok(
            call(open_server, "GET", f"/rooms/{q(room_id)}/state/m.room.create", token=alice)
        )
        assert create["room_version"] == version
        sent = send(open_server, alice, room_id, f"t{version}", {"msgtype": "m.text", "body": "x"})
        pattern = EVENT_ID_PATTERNS[KNOWN_ROOM_VERSIONS[version].event_format]
        assert re.fullmatch(pattern, sent), (version, sent)
