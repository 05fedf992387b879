"""Reading event rows back into events, and what an event's relation is: helpers of
``storage.events`` (SQL and row shapes only)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from homeserver.events.event import Event, InternalMetadata
from homeserver.events.room_versions import get_room_version
from homeserver.storage.event_json import stored_event_json
from homeserver.storage.state import chunks
from homeserver.storage.transaction import Transaction


def relation_of(event: Event) -> tuple[str, str, str | None] | None:
    """``(relates_to event ID, rel_type, reaction key)`` of an event's ``m.relates_to``.

    spec: client-server-api/_index.md#forming-relationships-between-events
    """
    relates_to = event.content.get("m.relates_to")
    if not isinstance(relates_to, dict):
        return None
    parent, rel_type = relates_to.get("event_id"), relates_to.get("rel_type")
    if not isinstance(parent, str) or not isinstance(rel_type, str):
        return None
    key = relates_to.get("key") if rel_type == "m.annotation" else None
    return parent, rel_type, key if isinstance(key, str) else None


def load_events_txn(txn: Transaction, event_ids: Sequence[str]) -> list[Event]:
    events = []
    for part in chunks(list(event_ids)):
        marks = ",".join("?" * len(part))
        txn.execute(
            "SELECT e.event_id, e.json, e.pdu, r.room_version, e.rejected_reason, e.soft_failed,"
            " e.outlier, e.txn_id, e.txn_device_id, e.stream_ordering, e.replaces_state,"
            " e.state_group_before"
            " FROM events e JOIN rooms r ON r.room_nid = e.room_nid"
            f" WHERE e.event_id IN ({marks})",
            part,
        )
        for (
            event_id,
            text,
            compressed,
            version,
            rejected,
            soft_failed,
            outlier,
            txn_id,
            device,
            stream_ordering,
            replaces_state,
            group_before,
        ) in txn.fetchall():
            internal = InternalMetadata(
                rejected_reason=rejected,
                soft_failed=bool(soft_failed),
                outlier=bool(outlier),
                txn_id=txn_id,
                device_id=device,
                stream_ordering=None if stream_ordering is None else int(stream_ordering),
                replaces_state=replaces_state,
                state_group_before=None if group_before is None else int(group_before),
                stored=True,
            )
            # Stored as written: already the canonical encoding.
            canonical_json = stored_event_json(text, compressed)
            events.append(
                Event(
                    json.loads(canonical_json),
                    get_room_version(version),
                    event_id,
                    internal,
                    canonical_json=canonical_json,
                )
            )
    return events
