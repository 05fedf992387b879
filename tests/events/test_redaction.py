"""The redaction algorithm for every room version, table-driven.

Expectations are written per version number from the spec fragments
(rooms/fragments/v1-redactions.md, v6-, rooms/v8.md, v9-, v11-redactions.md), not
derived from ``RoomVersion.redaction_rules``, so a wrong flag fails here too.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from homeserver.events.event import Event, InternalMetadata
from homeserver.events.redaction import prune_event, prune_event_dict
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS

ALL_VERSIONS = [str(n) for n in range(1, 13)]


def versions(first: int, last: int = 12) -> set[str]:
    return {str(n) for n in range(first, last + 1)}


# --- top-level keys --------------------------------------------------------------------

FULL_TOP_LEVEL: dict[str, Any] = {
    "event_id": "$e:example.org",
    "type": "m.room.message",
    "room_id": "!r:example.org",
    "sender": "@u:example.org",
    "state_key": "",
    "content": {},
    "hashes": {"sha256": "abc"},
    "signatures": {"example.org": {"ed25519:1": "sig"}},
    "depth": 5,
    "prev_events": ["$p"],
    "prev_state": [],
    "auth_events": ["$a"],
    "origin": "example.org",
    "origin_server_ts": 1234,
    "membership": "join",
    "unsigned": {"age": 1, "age_ts": 2},
    "redacts": "$x",
    "age_ts": 3,
    "custom_key": True,
}
TOP_LEVEL_V1 = {
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
    "depth", "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts",
    "membership",
}  # fmt: skip
TOP_LEVEL_V11 = TOP_LEVEL_V1 - {"origin", "membership", "prev_state"}


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_top_level_keys_that_survive_redaction(version: str) -> None:
    expected = TOP_LEVEL_V11 if version in versions(11) else TOP_LEVEL_V1
    pruned = prune_event_dict(FULL_TOP_LEVEL, KNOWN_ROOM_VERSIONS[version])
    assert set(pruned) == expected
    assert {k: pruned[k] for k in expected - {"content"}} == {
        k: FULL_TOP_LEVEL[k] for k in expected - {"content"}
    }


# --- content keys, per event type ------------------------------------------------------

THIRD_PARTY_SIGNED = {"mxid": "@u:example.org", "token": "t", "signatures": {}}

CONTENT_CASES: list[tuple[str, dict[str, Any], list[tuple[set[str], dict[str, Any]]]]] = [
    (
        "m.room.member",
        {
            "membership": "join",
            "join_authorised_via_users_server": "@admin:example.org",
            "third_party_invite": {"display_name": "x", "signed": THIRD_PARTY_SIGNED},
            "displayname": "U",
            "avatar_url": "mxc://x/y",
        },
        [
            (versions(1, 8), {"membership": "join"}),
            (
                versions(9, 10),
                {"membership": "join", "join_authorised_via_users_server": "@admin:example.org"},
            ),
            (
                versions(11),
                {
                    "membership": "join",
                    "join_authorised_via_users_server": "@admin:example.org",
                    "third_party_invite": {"signed": THIRD_PARTY_SIGNED},
                },
            ),
        ],
    ),
    (
        "m.room.create",
        {
            "creator": "@u:example.org",
            "room_version": "9",
            "m.federate": False,
            "additional_creators": ["@v:example.org"],
            "predecessor": {"room_id": "!old:example.org"},
        },
        [
            (versions(1, 10), {"creator": "@u:example.org"}),
            (
                versions(11),
                {
                    "creator": "@u:example.org",
                    "room_version": "9",
                    "m.federate": False,
                    "additional_creators": ["@v:example.org"],
                    "predecessor": {"room_id": "!old:example.org"},
                },
            ),
        ],
    ),
    (
        "m.room.join_rules",
        {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "other": 1},
        [
            (versions(1, 7), {"join_rule": "restricted"}),
            (versions(8), {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}]}),
        ],
    ),
    (
        "m.room.power_levels",
        {
            "ban": 50,
            "events": {"m.room.name": 50},
            "events_default": 0,
            "kick": 50,
            "redact": 50,
            "state_default": 50,
            "users": {"@u:example.org": 100},
            "users_default": 0,
            "invite": 0,
            "notifications": {"room": 50},
            "historical": 100,
        },
        [
            (
                versions(1, 10),
                {
                    "ban": 50,
                    "events": {"m.room.name": 50},
                    "events_default": 0,
                    "kick": 50,
                    "redact": 50,
                    "state_default": 50,
                    "users": {"@u:example.org": 100},
                    "users_default": 0,
                },
            ),
            (
                versions(11),
                {
                    "ban": 50,
                    "events": {"m.room.name": 50},
                    "events_default": 0,
                    "kick": 50,
                    "redact": 50,
                    "state_default": 50,
                    "users": {"@u:example.org": 100},
                    "users_default": 0,
                    "invite": 0,
                },
            ),
        ],
    ),
    (
        "m.room.aliases",
        {"aliases": ["#a:example.org"], "other": 1},
        [(versions(1, 5), {"aliases": ["#a:example.org"]}), (versions(6), {})],
    ),
    (
        "m.room.history_visibility",
        {"history_visibility": "shared", "other": 1},
        [(versions(1), {"history_visibility": "shared"})],
    ),
    (
        "m.room.redaction",
        {"redacts": "$target", "reason": "spam"},
        [(versions(1, 10), {}), (versions(11), {"redacts": "$target"})],
    ),
    ("m.room.message", {"body": "hello", "msgtype": "m.text"}, [(versions(1), {})]),
    ("m.room.name", {"name": "Room"}, [(versions(1), {})]),
    ("m.room.guest_access", {"guest_access": "can_join"}, [(versions(1), {})]),
]

CONTENT_TABLE = [
    pytest.param(event_type, version, content, expected, id=f"{event_type}-v{version}")
    for event_type, content, rows in CONTENT_CASES
    for version_set, expected in rows
    for version in sorted(version_set, key=int)
]


def test_content_table_covers_every_version_for_every_type() -> None:
    for event_type, _, rows in CONTENT_CASES:
        covered = [v for version_set, _ in rows for v in version_set]
        assert sorted(covered, key=int) == ALL_VERSIONS, event_type


@pytest.mark.parametrize(("event_type", "version", "content", "expected"), CONTENT_TABLE)
def test_content_keys_that_survive_redaction(
    event_type: str, version: str, content: dict[str, Any], expected: dict[str, Any]
) -> None:
    pdu = {"type": event_type, "state_key": "", "content": content}
    pruned = prune_event_dict(pdu, KNOWN_ROOM_VERSIONS[version])
    assert pruned["content"] == expected


def test_v11_keeps_redacts_in_redaction_content_but_drops_top_level_redacts() -> None:
    pdu = {"type": "m.room.redaction", "redacts": "$t", "content": {"redacts": "$t"}}
    pruned = prune_event_dict(pdu, KNOWN_ROOM_VERSIONS["11"])
    assert pruned == {"type": "m.room.redaction", "content": {"redacts": "$t"}}


@pytest.mark.parametrize(
    "third_party_invite", [{"display_name": "x"}, "not an object", None], ids=str
)
def test_v11_member_drops_third_party_invite_without_signed(third_party_invite: object) -> None:
    pdu = {
        "type": "m.room.member",
        "content": {"membership": "invite", "third_party_invite": third_party_invite},
    }
    pruned = prune_event_dict(pdu, KNOWN_ROOM_VERSIONS["11"])
    assert pruned["content"] == {"membership": "invite"}


# --- robustness and copying -------------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_prune_does_not_modify_the_input_and_is_idempotent(version: str) -> None:
    room_version = KNOWN_ROOM_VERSIONS[version]
    pdu = copy.deepcopy(FULL_TOP_LEVEL) | {
        "type": "m.room.member",
        "content": {"membership": "join", "displayname": "U"},
    }
    before = copy.deepcopy(pdu)
    pruned = prune_event_dict(pdu, room_version)
    assert pdu == before
    assert pruned is not pdu and pruned["content"] is not pdu["content"]
    assert prune_event_dict(pruned, room_version) == pruned


@pytest.mark.parametrize("content", ["string", 5, None, ["list"]])
def test_non_object_content_becomes_empty_object(content: object) -> None:
    pruned = prune_event_dict(
        {"type": "m.room.member", "content": content}, KNOWN_ROOM_VERSIONS["9"]
    )
    assert pruned == {"type": "m.room.member", "content": {}}


@pytest.mark.parametrize("event_type", [["m.room.create"], {"a": 1}, None, 7])
def test_non_string_type_does_not_crash(event_type: object) -> None:
    pdu = {"type": event_type, "content": {"creator": "@u:x"}}
    assert prune_event_dict(pdu, KNOWN_ROOM_VERSIONS["11"])["content"] == {}


def test_missing_content_is_not_invented() -> None:
    assert prune_event_dict({"type": "m.room.message"}, KNOWN_ROOM_VERSIONS["1"]) == {
        "type": "m.room.message"
    }


def test_prune_event_keeps_event_id_and_copies_metadata() -> None:
    room_version = KNOWN_ROOM_VERSIONS["10"]
    pdu = {
        "type": "m.room.message",
        "sender": "@u:example.org",
        "content": {"body": "secret"},
        "unsigned": {"age": 5},
    }
    event = Event(pdu, room_version, "$id", InternalMetadata(outlier=True))
    pruned = prune_event(event)
    assert pruned.event_id == "$id"
    assert pruned.room_version is room_version
    assert pruned.content == {}
    assert pruned.unsigned == {}
    assert pruned.internal.outlier
    assert pruned.internal is not event.internal
    assert event.content == {"body": "secret"}
