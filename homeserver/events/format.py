"""Turning a received PDU dict into an :class:`Event`.

spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu (step 1),
rooms/*.md "Event IDs"
"""

from __future__ import annotations

from typing import Any

from homeserver.events.event import Event
from homeserver.events.hashing import compute_event_id
from homeserver.events.room_versions import RoomVersion
from homeserver.events.validation import validate_pdu


def event_from_pdu(pdu: dict[str, Any], room_version: RoomVersion) -> Event:
    """Validate ``pdu`` for ``room_version`` and wrap it with its event ID.

    The event ID is computed here, once (in v3+ it is the reference hash).  Signatures
    and the content hash are *not* checked; see ``homeserver.events.signing``.
    Raises :class:`~homeserver.events.errors.InvalidEventError` for a malformed PDU.

    spec: server-server-api.md#checks-performed-on-receipt-of-a-pdu
    """
    canonical_json = validate_pdu(pdu, room_version)
    return Event(
        pdu, room_version, compute_event_id(pdu, room_version), canonical_json=canonical_json
    )
