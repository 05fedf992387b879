"""The redaction algorithm: which parts of an event survive being redacted.

The redacted form is also what signatures and reference hashes (event IDs) cover,
so this module sits on the hashing/signing hot path.

spec: rooms/fragments/v1-redactions.md, v6-redactions.md, rooms/v8.md#redactions,
v9-redactions.md, v11-redactions.md; client-server-api#redactions
"""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.events.event import Event
from homeserver.events.room_versions import RedactionRules, RoomVersion

_TOP_LEVEL_KEYS_V1 = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "prev_state",
        "auth_events",
        "origin",
        "origin_server_ts",
        "membership",
    }
)
# v11 stops protecting origin, membership and prev_state.
_TOP_LEVEL_KEYS_V11 = _TOP_LEVEL_KEYS_V1 - {"origin", "membership", "prev_state"}

_POWER_LEVELS_V1 = frozenset(
    {"ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"}
)

_ContentRules = dict[str, frozenset[str]]

_CONTENT_KEYS_V1: _ContentRules = {
    "m.room.member": frozenset({"membership"}),
    "m.room.create": frozenset({"creator"}),
    "m.room.join_rules": frozenset({"join_rule"}),
    "m.room.power_levels": _POWER_LEVELS_V1,
    "m.room.aliases": frozenset({"aliases"}),
    "m.room.history_visibility": frozenset({"history_visibility"}),
}
# v6: m.room.aliases is no longer protected.
_CONTENT_KEYS_V6: _ContentRules = {
    k: v for k, v in _CONTENT_KEYS_V1.items() if k != "m.room.aliases"
}
# v8: join rules keep ``allow`` (restricted rooms).
_CONTENT_KEYS_V8: _ContentRules = {
    **_CONTENT_KEYS_V6,
    "m.room.join_rules": frozenset({"join_rule", "allow"}),
}
# v9: members keep ``join_authorised_via_users_server``.
_CONTENT_KEYS_V9: _ContentRules = {
    **_CONTENT_KEYS_V8,
    "m.room.member": frozenset({"membership", "join_authorised_via_users_server"}),
}
# v11: power levels keep ``invite``; redactions keep ``redacts``.  m.room.create (all
# keys) and m.room.member's ``third_party_invite.signed`` are special-cased below.
_CONTENT_KEYS_V11: _ContentRules = {
    **_CONTENT_KEYS_V9,
    "m.room.power_levels": _POWER_LEVELS_V1 | {"invite"},
    "m.room.redaction": frozenset({"redacts"}),
}
del _CONTENT_KEYS_V11["m.room.create"]

_RULES: dict[RedactionRules, tuple[frozenset[str], _ContentRules]] = {
    RedactionRules.V1: (_TOP_LEVEL_KEYS_V1, _CONTENT_KEYS_V1),
    RedactionRules.V6: (_TOP_LEVEL_KEYS_V1, _CONTENT_KEYS_V6),
    RedactionRules.V8: (_TOP_LEVEL_KEYS_V1, _CONTENT_KEYS_V8),
    RedactionRules.V9: (_TOP_LEVEL_KEYS_V1, _CONTENT_KEYS_V9),
    RedactionRules.V11: (_TOP_LEVEL_KEYS_V11, _CONTENT_KEYS_V11),
}


def prune_event_dict(pdu: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """A new PDU dict holding only what survives redaction under ``room_version``.

    ``unsigned`` is always dropped: nothing in it is covered by hashes or signatures,
    and callers that keep some of it for clients (e.g. ``redacted_because``) add it
    back themselves.  Nested values other than ``content`` are shared with ``pdu``;
    treat both as immutable.

    Never raises on malformed input: a non-object ``content`` becomes ``{}``.

    spec: rooms/fragments/v11-redactions.md (and the earlier versions' fragments)
    """
    return _prune(pdu, room_version, keep_signatures=True)


def redacted_for_signing(pdu: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """The redacted PDU without ``signatures``: exactly what signatures and the
    reference hash cover.

    spec: server-server-api.md#calculating-the-reference-hash-for-an-event,
    appendices.md#signing-details
    """
    return _prune(pdu, room_version, keep_signatures=False)


def _prune(
    pdu: dict[str, Any], room_version: RoomVersion, *, keep_signatures: bool
) -> dict[str, Any]:
    top_level_keys, content_rules = _RULES[room_version.redaction_rules]
    pruned = {key: value for key, value in pdu.items() if key in top_level_keys}
    if not keep_signatures:
        pruned.pop("signatures", None)
    if "content" in pruned:
        event_type = pdu.get("type")
        pruned["content"] = _prune_content(
            event_type if isinstance(event_type, str) else "",
            pruned["content"],
            content_rules,
            room_version.redaction_rules is RedactionRules.V11,
        )
    return pruned


def _prune_content(
    event_type: str, content: Any, content_rules: _ContentRules, v11: bool
) -> dict[str, Any]:
    if not isinstance(content, dict):
        return {}
    if v11:
        if event_type == "m.room.create":
            return dict(content)
        if event_type == "m.room.member":
            pruned = _keep(content, content_rules["m.room.member"])
            invite = content.get("third_party_invite")
            if isinstance(invite, dict) and "signed" in invite:
                pruned["third_party_invite"] = {"signed": invite["signed"]}
            return pruned
    allowed = content_rules.get(event_type)
    return _keep(content, allowed) if allowed else {}


def _keep(content: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in content.items() if key in allowed}


def prune_event(event: Event) -> Event:
    """A redacted copy of ``event`` with the same event ID and a copy of its metadata.

    spec: client-server-api#redactions
    """
    return Event(
        prune_event_dict(event.pdu, event.room_version),
        event.room_version,
        event.event_id,
        attrs.evolve(event.internal),
    )
