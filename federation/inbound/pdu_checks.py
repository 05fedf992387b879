"""Steps 1-3 of the checks on receipt of a PDU: format, signatures, content hash.

Everything that hands a PDU from another server to the event path goes through
:class:`PduChecker` first (transactions, fetched missing events, joins), so the path
only ever sees events that are well-formed and signed by the servers that must sign
them.  Steps 4-6 (the auth rules) are the event path's.

The event library does the pure work (``homeserver.events``: validation, the
servers that must sign, redaction, the content hash); this module adds the keys,
which are I/O: each required server's signature is checked by the keyring, over the
*redacted* event, as the spec says.

spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu (steps 1-3),
server-server-api.md#validating-hashes-and-signatures-on-received-events,
rooms/fragments/v5-signing-requirements.md
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from federation.keys.errors import KeyVerificationError
from federation.protocols import SignatureVerifier as SignatureVerifier  # re-exported
from homeserver.events.auth.ids import domain_of
from homeserver.events.errors import InvalidEventError
from homeserver.events.event import Event
from homeserver.events.format import event_from_pdu
from homeserver.events.hashing import check_content_hash
from homeserver.events.redaction import prune_event, prune_event_dict
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import required_signature_servers

logger = logging.getLogger(__name__)


class InvalidPdu(Exception):
    """The PDU must be dropped: malformed, or a required signature missing or bad."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PduChecker:
    def __init__(self, keyring: SignatureVerifier) -> None:
        self._keyring = keyring

    async def check(
        self, room_version: RoomVersion, pdu: Mapping[str, Any], *, origin: str | None
    ) -> Event:
        """The event for ``pdu``: checked for format and signatures (else
        :class:`InvalidPdu`), redacted if its content hash does not match.

        ``origin`` is the server that handed it to us (for logs; it need not be
        the sender's server: events are relayed).
        """
        if not isinstance(pdu, Mapping):
            raise InvalidPdu("a PDU must be a JSON object")
        received = _without_unsigned(pdu)
        try:
            event = event_from_pdu(received, room_version)
            servers = required_signature_servers(received, room_version)
        except InvalidEventError as exc:
            raise InvalidPdu(exc.reason) from None
        if _is_third_party_invite(received):
            # spec: "If the event is a 3rd party invite, the sender must already match
            # the 3rd party invite, and the server which actually sends the event may
            # be a different server": the sender's server need not sign it (the auth
            # rules check the invite's own signed token instead), as Synapse.
            servers.discard(domain_of(event.sender) or "")

        # Signatures cover the redacted event (without ``unsigned``); the keyring
        # removes ``signatures`` itself before checking them.
        signed = prune_event_dict(received, room_version)
        # Rooms v1-v4 predate key validity: any key the server ever had will do.
        valid_at_ts = event.origin_server_ts if room_version.enforce_key_validity else 0
        # One after the other: nearly every event needs one server's signature (two
        # for restricted joins and v1/v2 events), and keys are usually cached.
        for server in sorted(servers):
            try:
                await self._keyring.verify_json_for_server(server, signed, valid_at_ts)
            except KeyVerificationError as exc:
                raise InvalidPdu(f"bad signature from {server}: {exc.reason}") from None

        if check_content_hash(received):
            return event
        # spec: a hash mismatch means the event is processed in its redacted form.
        logger.info(
            "content hash of %s (from %s) does not match: using the redacted event",
            event.event_id,
            origin,
        )
        return prune_event(event)


def _is_third_party_invite(pdu: Mapping[str, Any]) -> bool:
    content = pdu.get("content")
    return (
        pdu.get("type") == "m.room.member"
        and isinstance(content, Mapping)
        and content.get("membership") == "invite"
        and "third_party_invite" in content
    )


def _without_unsigned(pdu: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``pdu`` without ``unsigned``.

    ``unsigned`` is covered by neither hashes, signatures nor (v3+) the event ID: all
    of it is the sending server's own word (``redacted_because``, ``m.relations``,
    even an invite's stripped state, which would be a spoofed room preview).  The
    /invite and send_knock paths attach stripped state they checked themselves
    (``federation.membership.pdus.checked_room_state``).
    """
    received = dict(pdu)
    received.pop("unsigned", None)
    return received
