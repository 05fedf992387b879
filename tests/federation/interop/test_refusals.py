"""Forged and replayed federation traffic is refused.

The test plays the joiner's server itself: it holds that server's signing key file,
so it can send transactions exactly as that server would, then tamper with them.
A control (the same traffic, untampered) is accepted each time, so every refusal
observed is the tampering's doing.  ``target`` is the server receiving the traffic:
ours, or the other one (our second server, or Synapse: how the reference behaves).

spec: server-server-api.md#request-authentication,
server-server-api.md#validating-hashes-and-signatures-on-received-events,
server-server-api.md#transactions
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from signedjson.key import generate_signing_key
from signedjson.types import SigningKey

from homeserver.events.room_versions import get_room_version
from homeserver.events.signing import sign_event_and_compute_id
from tests.federation.interop.clients import (
    Conversation,
    ServerPair,
    User,
    has_event_id,
    room_path,
    start_conversation,
)
from tests.support.federation import FederatedServer, federation_request
from tests.support.http import Response

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-interop-refusals")]

ROOM_VERSION = "10"


@attrs.frozen
class Impersonation:
    """Traffic from ``origin`` (whose key the test holds) to ``target``, in a room
    ``target``'s ``local_user`` created and ``remote_user`` of ``origin`` joined."""

    servers: ServerPair
    target: FederatedServer
    origin: FederatedServer
    conversation: Conversation

    @property
    def local_user(self) -> User:
        return self.conversation.creator

    @property
    def remote_user(self) -> User:
        return self.conversation.joiner

    def send_transaction(
        self, txn_id: str, pdus: list[dict[str, Any]], *, signing_key: SigningKey | None = None
    ) -> Response:
        body = {
            "origin": self.origin.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": pdus,
            "edus": [],
        }
        return federation_request(
            self.servers.ca,
            self.target,
            "PUT",
            f"/_matrix/federation/v1/send/{quote(txn_id, safe='')}",
            body=body,
            origin=self.origin.server_name,
            signing_key=signing_key or self.origin.signing_key(),
        )

    def message_pdu(
        self, body: str, *, signing_key: SigningKey | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A message from the remote user, built and signed as its server would;
        ``signing_key`` (under the real key's ID) forges the signature."""
        room_id = self.conversation.room_id
        state = self.local_user.call("GET", room_path(room_id, "state"))
        auth_events = [
            event["event_id"]
            for event in state
            if (event["type"], event["state_key"])
            in {
                ("m.room.create", ""),
                ("m.room.power_levels", ""),
                ("m.room.member", self.remote_user.user_id),
            }
        ]
        latest = self.local_user.call("GET", room_path(room_id, "messages") + "?dir=b&limit=1")
        real_key = self.origin.signing_key()
        key = signing_key or real_key
        key.version = real_key.version  # a forger claims the real key's ID
        pdu: dict[str, Any] = {
            "room_id": room_id,
            "sender": self.remote_user.user_id,
            "origin_server_ts": int(time.time() * 1000),
            "type": "m.room.message",
            "content": {"msgtype": "m.text", "body": body},
            "auth_events": auth_events,
            "prev_events": [latest["chunk"][0]["event_id"]],
            # Above any depth of this short room: depth orders, it authorises nothing.
            "depth": 1000 + int(time.time()) % 1000,
        }
        event_id = sign_event_and_compute_id(
            pdu, self.origin.server_name, key, get_room_version(ROOM_VERSION)
        )
        return event_id, pdu

    def local_user_sees(self, event_id: str) -> bool:
        response = self.local_user.server.process.request(
            "GET",
            "/_matrix/client/v3" + room_path(self.conversation.room_id, "event", event_id),
            headers={"Authorization": f"Bearer {self.local_user.access_token}"},
        )
        return response.status == 200


@pytest.fixture(scope="module", params=["ours", "other"])
def impersonation(request: pytest.FixtureRequest, servers: ServerPair) -> Impersonation:
    target, origin = (
        (servers.ours, servers.other) if request.param == "ours" else (servers.other, servers.ours)
    )
    conversation = start_conversation(target, origin, room_version=ROOM_VERSION)
    return Impersonation(servers, target, origin, conversation)


def forger_key() -> SigningKey:
    return generate_signing_key("forged")


def test_a_request_signed_with_a_forged_key_is_refused(impersonation: Impersonation) -> None:
    _, pdu = impersonation.message_pdu("signed by the server, but the request is forged")
    forged = impersonation.send_transaction(
        f"forged-{secrets.token_hex(4)}", [pdu], signing_key=_with_real_id(impersonation)
    )
    assert forged.status == 401, (forged.status, forged.body)
    assert forged.json()["errcode"] == "M_UNAUTHORIZED"


def test_an_unsigned_request_is_refused(impersonation: Impersonation) -> None:
    response = federation_request(
        impersonation.servers.ca,
        impersonation.target,
        "PUT",
        f"/_matrix/federation/v1/send/unsigned-{secrets.token_hex(4)}",
        body={"origin": impersonation.origin.server_name, "origin_server_ts": 0, "pdus": []},
    )
    assert response.status == 401, (response.status, response.body)


def test_an_event_with_a_forged_signature_is_refused(impersonation: Impersonation) -> None:
    forged_id, forged = impersonation.message_pdu("forged", signing_key=forger_key())
    genuine_id, genuine = impersonation.message_pdu("genuine")
    response = impersonation.send_transaction(f"mixed-{secrets.token_hex(4)}", [forged, genuine])
    assert response.status == 200, (response.status, response.body)
    results = response.json()["pdus"]
    assert "error" in results.get(forged_id, {}), results
    assert "error" not in results.get(genuine_id, {}), results
    impersonation.conversation.creator_sync.wait_for_event(
        impersonation.conversation.room_id, has_event_id(genuine_id), what="the genuine event"
    )
    assert not impersonation.local_user_sees(forged_id)


def test_a_replayed_transaction_is_not_processed_again(impersonation: Impersonation) -> None:
    """The receiver answers a transaction ID it has seen from that origin with its
    first answer, and does not process what the replay carries."""
    txn_id = f"replayed-{secrets.token_hex(4)}"
    first_id, first = impersonation.message_pdu("first")
    original = impersonation.send_transaction(txn_id, [first])
    assert original.status == 200, (original.status, original.body)
    sync = impersonation.conversation.creator_sync
    sync.wait_for_event(impersonation.conversation.room_id, has_event_id(first_id))

    smuggled_id, smuggled = impersonation.message_pdu("smuggled in a replay")
    replay = impersonation.send_transaction(txn_id, [smuggled])
    assert replay.status == 200, (replay.status, replay.body)
    assert replay.json() == original.json()

    # A later transaction is processed: by then the replay's content would have been.
    later_id, later = impersonation.message_pdu("later")
    assert impersonation.send_transaction(f"later-{secrets.token_hex(4)}", [later]).status == 200
    sync.wait_for_event(impersonation.conversation.room_id, has_event_id(later_id))
    assert not impersonation.local_user_sees(smuggled_id)


def _with_real_id(impersonation: Impersonation) -> SigningKey:
    key = forger_key()
    key.version = impersonation.origin.signing_key().version
    return key
