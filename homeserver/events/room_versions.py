"""Room versions as data: every behaviour that differs between versions is a flag here.

Code elsewhere asks ``room_version.<flag>`` instead of comparing version strings, so
adding a version means adding one entry below.

spec: rooms/_index.md and rooms/v1.md .. rooms/v12.md
"""

from __future__ import annotations

import enum

import attrs


class EventFormat(enum.Enum):
    """How event IDs are made and how ``prev_events``/``auth_events`` are shaped."""

    #: v1, v2: ``$localpart:server`` IDs carried in the event; references are
    #: ``[event_id, {hashes}]`` pairs.  spec: rooms/fragments/v1-event-ids.md
    V1 = 1
    #: v3: the ID is the reference hash in standard unpadded base64; references are
    #: plain ID strings.  spec: rooms/v3.md
    V2 = 2
    #: v4+: as V2 but URL-safe base64.  spec: rooms/fragments/v4-event-ids.md
    V3 = 3


class StateResAlgorithm(enum.Enum):
    V1 = 1  # spec: rooms/v1.md#state-resolution
    V2 = 2  # spec: rooms/fragments/v2-state-res.md
    #: v12's iteration of v2: iterative auth checks start from the empty state and the
    #: conflicted state subgraph is included.  spec: rooms/v12.md#state-resolution
    V2_1 = 3


class RedactionRules(enum.Enum):
    V1 = 1  # spec: rooms/fragments/v1-redactions.md
    V6 = 6  # m.room.aliases loses its content.  spec: rooms/fragments/v6-redactions.md
    V8 = 8  # join_rules keeps ``allow``.  spec: rooms/v8.md#redactions
    V9 = 9  # member keeps ``join_authorised_via_users_server``.  spec: rooms/fragments/v9-redactions.md
    V11 = 11  # spec: rooms/fragments/v11-redactions.md


@attrs.frozen
class RoomVersion:
    identifier: str
    event_format: EventFormat
    state_res: StateResAlgorithm
    redaction_rules: RedactionRules
    #: Signing keys must be valid (``valid_until_ts``) at the event's origin_server_ts.
    #: spec: rooms/fragments/v5-signing-requirements.md
    enforce_key_validity: bool
    #: m.room.aliases is exempt from the usual state-event rules (v1-v5).
    special_case_aliases_auth: bool
    #: Integers outside [-2**53+1, 2**53-1] and floats are rejected.  spec: v6 canonical JSON
    strict_canonicaljson: bool
    #: ``notifications`` keys of power levels are subject to the power level checks (v6+).
    limit_notifications_power_levels: bool
    #: join_rule ``knock`` and membership ``knock`` exist (v7+).
    knock_join_rule: bool
    #: join_rule ``restricted`` exists (v8+).
    restricted_join_rule: bool
    #: The restricted join fix of v9 (redaction of join_authorised_via_users_server).
    restricted_join_rule_fix: bool
    #: join_rule ``knock_restricted`` exists (v10+).
    knock_restricted_join_rule: bool
    #: Power level values must be integers, not strings (v10+).
    enforce_int_power_levels: bool
    #: The room creator is the create event's ``sender``, not ``content.creator`` (v11+);
    #: ``redacts`` moves into ``content``.
    implicit_room_creator: bool
    #: v12: room ID is the create event's reference hash (no domain), create events carry
    #: no room_id, creators (sender + ``additional_creators``) have infinite power.
    hydra: bool

    @property
    def redacts_in_content(self) -> bool:
        """From v11 ``redacts`` is a content key of m.room.redaction (spec: rooms/v11.md)."""
        return self.redaction_rules is RedactionRules.V11


def _version(identifier: str, **overrides: object) -> RoomVersion:
    base: dict[str, object] = {
        "event_format": EventFormat.V1,
        "state_res": StateResAlgorithm.V1,
        "redaction_rules": RedactionRules.V1,
        "enforce_key_validity": False,
        "special_case_aliases_auth": True,
        "strict_canonicaljson": False,
        "limit_notifications_power_levels": False,
        "knock_join_rule": False,
        "restricted_join_rule": False,
        "restricted_join_rule_fix": False,
        "knock_restricted_join_rule": False,
        "enforce_int_power_levels": False,
        "implicit_room_creator": False,
        "hydra": False,
    }
    base.update(overrides)
    return RoomVersion(identifier=identifier, **base)  # type: ignore[arg-type]


def _build_versions() -> dict[str, RoomVersion]:
    # Each version is the previous one plus what its spec page changes.
    changes: list[tuple[str, dict[str, object]]] = [
        ("1", {}),
        ("2", {"state_res": StateResAlgorithm.V2}),
        ("3", {"event_format": EventFormat.V2}),
        ("4", {"event_format": EventFormat.V3}),
        ("5", {"enforce_key_validity": True}),
        (
            "6",
            {
                "special_case_aliases_auth": False,
                "strict_canonicaljson": True,
                "limit_notifications_power_levels": True,
                "redaction_rules": RedactionRules.V6,
            },
        ),
        ("7", {"knock_join_rule": True}),
        ("8", {"restricted_join_rule": True, "redaction_rules": RedactionRules.V8}),
        ("9", {"restricted_join_rule_fix": True, "redaction_rules": RedactionRules.V9}),
        ("10", {"knock_restricted_join_rule": True, "enforce_int_power_levels": True}),
        ("11", {"implicit_room_creator": True, "redaction_rules": RedactionRules.V11}),
        ("12", {"hydra": True, "state_res": StateResAlgorithm.V2_1}),
    ]
    versions: dict[str, RoomVersion] = {}
    flags: dict[str, object] = {}
    for identifier, delta in changes:
        flags.update(delta)
        versions[identifier] = _version(identifier, **flags)
    return versions


KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = _build_versions()

#: Room versions the spec marks stable.  All of ours are; none is unstable.
STABLE_ROOM_VERSIONS: frozenset[str] = frozenset(KNOWN_ROOM_VERSIONS)

DEFAULT_ROOM_VERSION = "12"


def get_room_version(identifier: str) -> RoomVersion:
    """The room version for ``identifier``; raises ``KeyError`` for unknown versions."""
    return KNOWN_ROOM_VERSIONS[identifier]
