"""Shared data of the push rule tests: the spec's predefined rules transcribed from
push.md ("Predefined Rules"), and small editing helpers."""

from __future__ import annotations

from typing import Any

from homeserver.push.rules import (
    Customisations,
    add_or_replace,
    resolve,
)

ME = "@alice:example.org"
ROOM = "!room:example.org"
OTHER_ROOM = "!other:example.org"

# --- the spec's predefined rules, transcribed from push.md ("Predefined Rules") ------

SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
HIGHLIGHT = {"set_tweak": "highlight"}

SPEC_OVERRIDE: list[dict[str, Any]] = [
    {
        "rule_id": ".m.rule.master",
        "default": True,
        "enabled": False,
        "conditions": [],
        "actions": [],
    },
    {
        "rule_id": ".m.rule.suppress_notices",
        "default": True,
        "enabled": True,
        "conditions": [{"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}],
        "actions": [],
    },
    {
        "rule_id": ".m.rule.invite_for_me",
        "default": True,
        "enabled": True,
        "conditions": [
            {"key": "type", "kind": "event_match", "pattern": "m.room.member"},
            {"key": "content.membership", "kind": "event_match", "pattern": "invite"},
            {"key": "state_key", "kind": "event_match", "pattern": ME},
        ],
        "actions": ["notify", SOUND_DEFAULT],
    },
    {
        "rule_id": ".m.rule.member_event",
        "default": True,
        "enabled": True,
        "conditions": [{"key": "type", "kind": "event_match", "pattern": "m.room.member"}],
        "actions": [],
    },
    {
        "rule_id": ".m.rule.is_user_mention",
        "default": True,
        "enabled": True,
        "conditions": [
            {
                "kind": "event_property_contains",
                "key": "content.m\\.mentions.user_ids",
                "value": ME,
            }
        ],
        "actions": ["notify", SOUND_DEFAULT, HIGHLIGHT],
    },
    {
        "rule_id": ".m.rule.is_room_mention",
        "default": True,
        "enabled": True,
        "conditions": [
            {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        "actions": ["notify", HIGHLIGHT],
    },
    {
        "rule_id": ".m.rule.tombstone",
        "default": True,
        "enabled": True,
        "conditions": [
            {"kind": "event_match", "key": "type", "pattern": "m.room.tombstone"},
            {"kind": "event_match", "key": "state_key", "pattern": ""},
        ],
        "actions": ["notify", HIGHLIGHT],
    },
    {
        "rule_id": ".m.rule.reaction",
        "default": True,
        "enabled": True,
        "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.reaction"}],
        "actions": [],
    },
    {
        "rule_id": ".m.rule.room.server_acl",
        "default": True,
        "enabled": True,
        "conditions": [
            {"kind": "event_match", "key": "type", "pattern": "m.room.server_acl"},
            {"kind": "event_match", "key": "state_key", "pattern": ""},
        ],
        "actions": [],
    },
    {
        "rule_id": ".m.rule.suppress_edits",
        "default": True,
        "enabled": True,
        "conditions": [
            {
                "kind": "event_property_is",
                "key": "content.m\\.relates_to.rel_type",
                "value": "m.replace",
            }
        ],
        "actions": [],
    },
]

SPEC_UNDERRIDE: list[dict[str, Any]] = [
    {
        "rule_id": ".m.rule.call",
        "default": True,
        "enabled": True,
        "conditions": [{"key": "type", "kind": "event_match", "pattern": "m.call.invite"}],
        "actions": ["notify", {"set_tweak": "sound", "value": "ring"}],
    },
    {
        "rule_id": ".m.rule.encrypted_room_one_to_one",
        "default": True,
        "enabled": True,
        "conditions": [
            {"kind": "room_member_count", "is": "2"},
            {"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"},
        ],
        "actions": ["notify", SOUND_DEFAULT],
    },
    {
        "rule_id": ".m.rule.room_one_to_one",
        "default": True,
        "enabled": True,
        "conditions": [
            {"kind": "room_member_count", "is": "2"},
            {"kind": "event_match", "key": "type", "pattern": "m.room.message"},
        ],
        "actions": ["notify", SOUND_DEFAULT],
    },
    {
        "rule_id": ".m.rule.message",
        "default": True,
        "enabled": True,
        "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
        "actions": ["notify"],
    },
    {
        "rule_id": ".m.rule.encrypted",
        "default": True,
        "enabled": True,
        "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}],
        "actions": ["notify"],
    },
]


def put(
    customisations: Customisations,
    kind: str,
    rule_id: str,
    body: object,
    *,
    before: str | None = None,
    after: str | None = None,
) -> Customisations:
    return add_or_replace(customisations, ME, kind, rule_id, body, before=before, after=after)


def ids(customisations: Customisations, kind: str) -> list[str]:
    return [rule.rule_id for rule in resolve(ME, customisations).rules_by_kind[kind]]
