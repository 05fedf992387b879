"""Remote servers made in a test: their keys, the PDUs they sign, and a key verifier
that knows exactly their keys (a stand-in for the keyring's lookups, with the same
``verify_json_for_server`` contract: a key is usable only if valid at the time asked).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import attrs
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import SignatureVerifyException, verify_signed_json
from signedjson.types import SigningKey

from federation.keys.errors import KeyVerificationError
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import sign_event, sign_event_and_compute_id

_counter = itertools.count()


@attrs.define
class TestServer:
    """A server with one signing key, valid until ``valid_until_ts`` (None: always)."""

    name: str
    key: SigningKey = attrs.field(factory=lambda: generate_signing_key(f"k{next(_counter)}"))
    valid_until_ts: int | None = None

    __test__ = False

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.key.version}"

    def pdu(
        self,
        room_version: RoomVersion,
        room_id: str,
        *,
        sender_localpart: str = "rita",
        event_type: str = "m.room.message",
        content: dict[str, Any] | None = None,
        origin_server_ts: int = 1_700_000_000_000,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], str]:
        """A signed PDU of this server (format-valid, citing nothing) and its ID."""
        pdu: dict[str, Any] = {
            "room_id": room_id,
            "sender": f"@{sender_localpart}:{self.name}",
            "type": event_type,
            "content": {"msgtype": "m.text", "body": "hi"} if content is None else content,
            "depth": 5,
            "prev_events": [],
            "auth_events": [],
            "origin_server_ts": origin_server_ts,
            **(extra or {}),
        }
        if room_version.identifier in ("1", "2"):
            pdu["event_id"] = f"${next(_counter)}:{self.name}"
            pdu["origin"] = self.name
        event_id = sign_event_and_compute_id(pdu, self.name, self.key, room_version)
        return pdu, event_id

    def cosign(self, pdu: dict[str, Any], room_version: RoomVersion) -> None:
        """Add this server's signature to ``pdu`` (keeps the content hash)."""
        hashes = pdu["hashes"]
        sign_event(pdu, self.name, self.key, room_version)
        assert pdu["hashes"] == hashes


class TestKeyring:
    """Verifies signatures with the keys of the given servers only."""

    __test__ = False

    def __init__(self, *servers: TestServer) -> None:
        self._servers = {server.name: server for server in servers}
        self.asked: list[tuple[str, int]] = []

    async def verify_json_for_server(
        self, server_name: str, json_object: Mapping[str, Any], valid_at_ts: int
    ) -> None:
        self.asked.append((server_name, valid_at_ts))
        server = self._servers.get(server_name)
        if server is None:
            raise KeyVerificationError(server_name, "no keys known")
        signatures = json_object.get("signatures", {}).get(server_name, {})
        if server.key_id not in signatures:
            raise KeyVerificationError(server_name, "not signed with a known key")
        if server.valid_until_ts is not None and server.valid_until_ts < valid_at_ts:
            raise KeyVerificationError(server_name, "key expired at the time asked")
        try:
            verify_signed_json(dict(json_object), server_name, get_verify_key(server.key))
        except SignatureVerifyException as exc:
            raise KeyVerificationError(server_name, str(exc)) from None
