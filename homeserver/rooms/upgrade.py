"""Room upgrades: replace a room with a new one in another room version.

The spec's six steps, in Synapse's order where the spec gives none:

1. the upgrader must be joined and able to send ``m.room.tombstone`` (403);
2. the new room: ``m.room.create`` with ``predecessor`` (``room_id``, plus
   ``event_id`` of the old room's latest event — the spec's "last known event",
   which v12 lets us omit but still asks for "where possible"), the old room's
   ``type`` and, as Synapse, ``m.federate: false`` if the old room had it;
   ``additional_creators`` only as the request gives them (spec v1.16: never
   copied);
3. the transferable state — Synapse's list, which is the spec's recommended one:
   join rules, history visibility, guest access, name, topic, avatar, encryption,
   server ACLs, power levels, plus a space's children — and, as Synapse, the old
   room's bans; no other membership moves (people join themselves);
4. local aliases re-pointed, the canonical alias moved (local ``alias`` and
   ``alt_aliases`` leave the old room's event and form the new room's), and a
   published room's directory entry swapped for the new room's;
5. ``m.room.tombstone`` ``{body, replacement_room}`` in the old room;
6. the old room's ``events_default`` and ``invite`` raised to
   ``max(50, users_default + 1)`` so ordinary members can no longer talk there.

Power levels in the new room are the old room's (stringy levels of old versions
made integers).  Where that leaves the upgrader short of what cloning needs (the
highest of ``state_default``, ``ban`` and the per-type levels) the new room starts
with the upgrader raised to it, and the original levels are restored last, as in
Synapse.  Creators: into a v12+ room the upgrader and ``additional_creators`` are
creators and so leave the ``users`` map; out of a v12+ room into an older version
creators would lose their unbounded power, so the upgrader and the old room's
creators are listed at the room's highest level (at least 100) — Synapse leaves
them at ``users_default`` there, which strands the room without an admin.

Concurrency and retries (the spec is silent): upgrades of one room run one at a
time.  An upgrade of a room whose tombstone already names a room we hold that
names it as predecessor returns that room when it has the requested version (a
retry, or two admins at once) and is ``400 M_BAD_STATE`` otherwise; Synapse would
create yet another successor, splitting the room's members.

spec: client-server-api/modules/room_upgrades.md, data/api/client-server/room_upgrades.yaml,
event-schemas m.room.tombstone, m.room.create ``predecessor``
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.auth import (
    AuthError,
    PowerLevels,
    get_room_creators,
    membership_in,
    parse_power_level,
)
from homeserver.events.errors import InvalidEventError
from homeserver.events.event import Event, StateKey
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, get_room_version
from homeserver.profile.handler import ProfileHandler
from homeserver.rooms.builder import EventDraft
from homeserver.rooms.pipeline import EventPipeline, InitialEvent, InitialEventRefused
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import EventStore, RoomRecord
from homeserver.util.linearizer import Linearizer

logger = logging.getLogger(__name__)

TOMBSTONE_BODY = "This room has been replaced"

_CREATE: StateKey = ("m.room.create", "")
_POWER_LEVELS: StateKey = ("m.room.power_levels", "")
_CANONICAL_ALIAS: StateKey = ("m.room.canonical_alias", "")
_TOMBSTONE: StateKey = ("m.room.tombstone", "")

#: Copied as they are.  spec: room_upgrades.md step 3; Synapse ``clone_existing_room``.
_TRANSFERABLE = (
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.server_acl",
)
#: What a room without them gets: the ``private_chat`` preset, as Synapse.
_PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "m.room.join_rules": {"join_rule": "invite"},
    "m.room.history_visibility": {"history_visibility": "shared"},
    "m.room.guest_access": {"guest_access": "can_join"},
}
_NAMED_LEVELS = (
    "ban",
    "events_default",
    "invite",
    "kick",
    "redact",
    "state_default",
    "users_default",
)
_LEVEL_MAPS = ("events", "users", "notifications")


class SuccessorDirectory(Protocol):
    """What an upgrade needs of the alias directory."""

    async def transfer_to_successor(self, old_room_id: str, new_room_id: str) -> list[str]: ...


class RoomUpgradeHandler:
    def __init__(
        self,
        *,
        server_name: str,
        pipeline: EventPipeline,
        state: RoomStateReader,
        events: EventStore,
        profiles: ProfileHandler,
        directory: SuccessorDirectory,
    ) -> None:
        self._server_name = server_name
        self._pipeline = pipeline
        self._state = state
        self._events = events
        self._profiles = profiles
        self._directory = directory
        self._linearizer = Linearizer()

    async def upgrade_room(
        self,
        requester: Requester,
        room_id: str,
        new_version_id: str,
        additional_creators: Sequence[str] = (),
    ) -> str:
        """Replace ``room_id`` with a new room of ``new_version_id``; its room ID."""
        new_version = KNOWN_ROOM_VERSIONS.get(new_version_id)
        if new_version is None:
            raise errors.MatrixError(
                400,
                errors.Codes.UNSUPPORTED_ROOM_VERSION,
                f"This server does not support room version {new_version_id!r}",
            )
        user_id = requester.user_id
        async with self._linearizer.queue(room_id):
            # 404 for an unknown room, as Synapse (the spec lists only 400 and 403).
            room = await self._state.room_or_404(room_id)
            old_version = get_room_version(room.room_version)
            state = await self._state.current_state(room)
            _check_may_upgrade(old_version, user_id, state)
            existing = await self._existing_successor(room_id, state)
            if existing is not None:
                if existing.room_version == new_version_id:
                    return existing.room_id
                raise errors.MatrixError(
                    400,
                    errors.Codes.BAD_STATE,
                    f"This room has already been replaced by {existing.room_id}",
                )
            new_room_id = await self._create_successor(
                room, old_version, new_version, user_id, state, list(additional_creators)
            )
            await self._send_tombstone(room_id, user_id, new_room_id)
            await self._move_aliases(room_id, new_room_id, user_id, state.get(_CANONICAL_ALIAS))
            await self._mute_old_room(room_id, user_id, old_version, state.get(_POWER_LEVELS))
            return new_room_id

    async def _existing_successor(
        self, room_id: str, state: Mapping[StateKey, Event]
    ) -> RoomRecord | None:
        tombstone = state.get(_TOMBSTONE)
        replacement = tombstone.content.get("replacement_room") if tombstone else None
        if not isinstance(replacement, str):
            return None
        successor = await self._state.room(replacement)
        if successor is None:
            return None  # a tombstone a client wrote by hand, naming nothing here
        create = (await self._state.current_state(successor, [_CREATE])).get(_CREATE)
        predecessor = create.content.get("predecessor") if create is not None else None
        if isinstance(predecessor, dict) and predecessor.get("room_id") == room_id:
            return successor
        return None

    async def _create_successor(
        self,
        room: RoomRecord,
        old_version: RoomVersion,
        new_version: RoomVersion,
        user_id: str,
        state: Mapping[StateKey, Event],
        additional_creators: list[str],
    ) -> str:
        old_create = state[_CREATE]
        create_content: dict[str, Any] = {"predecessor": await self._predecessor(room)}
        room_type = old_create.content.get("type")
        if isinstance(room_type, str):
            create_content["type"] = room_type
        if old_create.content.get("m.federate") is False:
            create_content["m.federate"] = False
        new_creators = {user_id}
        additional_creators = [other for other in additional_creators if other != user_id]
        if new_version.hydra:
            if additional_creators:
                create_content["additional_creators"] = additional_creators
            new_creators.update(additional_creators)
        final_levels = _final_power_levels(
            old_version,
            new_version,
            state.get(_POWER_LEVELS),
            upgrader=user_id,
            old_creators=get_room_creators(old_version, old_create),
            new_creators=new_creators,
        )
        initial_levels, upgrader_level = _levels_while_cloning(new_version, final_levels, user_id)
        initial = [
            InitialEvent("m.room.member", user_id, await self._join_content(user_id), user_id),
            InitialEvent("m.room.power_levels", user_id, initial_levels, ""),
        ]
        for event_type in _TRANSFERABLE:
            event = state.get((event_type, ""))
            content = event.content if event is not None else _PRESET_DEFAULTS.get(event_type)
            if content is not None:
                initial.append(InitialEvent(event_type, user_id, copy.deepcopy(content), ""))
        if room_type == "m.space":
            # Synapse copies a space's children; an empty one was removed from it.
            for (event_type, state_key), event in sorted(state.items()):
                if event_type == "m.space.child" and event.content:
                    initial.append(
                        InitialEvent(event_type, user_id, copy.deepcopy(event.content), state_key)
                    )
        initial.extend(
            _bans_to_copy(state, user_id, new_creators, new_version, initial_levels, upgrader_level)
        )
        try:
            sent = await self._pipeline.create_room(
                new_version.identifier, user_id, create_content, initial
            )
        except (AuthError, InvalidEventError) as invalid:
            raise errors.bad_json(f"Cannot create the new room: {invalid}") from None
        except InitialEventRefused as refused:
            raise errors.MatrixError(
                400,
                errors.Codes.INVALID_ROOM_STATE,
                f"The old room's {refused.initial.event_type} cannot be copied: {refused.cause}",
            ) from None
        new_room_id = sent[0].event.room_id
        if initial_levels != final_levels:
            await self._send(new_room_id, user_id, "m.room.power_levels", final_levels)
        return new_room_id

    async def _predecessor(self, room: RoomRecord) -> dict[str, str]:
        predecessor = {"room_id": room.room_id}
        extremities = await self._events.get_events(
            await self._events.get_forward_extremities(room.room_nid)
        )
        if extremities:
            latest = max(extremities.values(), key=lambda event: (event.depth, event.event_id))
            predecessor["event_id"] = latest.event_id
        return predecessor

    async def _join_content(self, user_id: str) -> dict[str, Any]:
        return {"membership": "join", **await self._profiles.member_content(user_id)}

    async def _send_tombstone(self, room_id: str, user_id: str, new_room_id: str) -> None:
        content = {"body": TOMBSTONE_BODY, "replacement_room": new_room_id}
        try:
            await self._pipeline.send(
                EventDraft(room_id, "m.room.tombstone", user_id, content, state_key="")
            )
        except AuthError as refused:
            # Power lost between the check and now: the new room stays, unannounced.
            raise errors.forbidden(f"You cannot upgrade this room: {refused.reason}") from None

    async def _move_aliases(
        self, room_id: str, new_room_id: str, user_id: str, canonical: Event | None
    ) -> None:
        await self._directory.transfer_to_successor(room_id, new_room_id)
        if canonical is None:
            return
        old_content = dict(canonical.content)
        new_content: dict[str, Any] = {}
        alias = old_content.get("alias")
        if isinstance(alias, str) and self._is_local(alias):
            new_content["alias"] = alias
            del old_content["alias"]
        alt_aliases = old_content.get("alt_aliases")
        if isinstance(alt_aliases, list):
            moving = [a for a in alt_aliases if isinstance(a, str) and self._is_local(a)]
            staying = [a for a in alt_aliases if a not in moving]
            if moving:
                new_content["alt_aliases"] = moving
            if staying:
                old_content["alt_aliases"] = staying
            else:
                old_content.pop("alt_aliases")
        if not new_content:
            return
        # As Synapse: failures here are logged, the upgrade itself has happened.
        for target, content in ((room_id, old_content), (new_room_id, new_content)):
            try:
                await self._send(target, user_id, "m.room.canonical_alias", content)
            except errors.MatrixError as refused:
                logger.warning("canonical alias of %s not updated: %s", target, refused.message)

    async def _mute_old_room(
        self, room_id: str, user_id: str, version: RoomVersion, power_levels: Event | None
    ) -> None:
        if power_levels is None:
            return  # nothing to raise: without the event only creators may act
        content = _normalised_levels(version, power_levels.content)
        levels = PowerLevels(version, power_levels, frozenset())
        restricted = max(50, levels.named_level("users_default") + 1)
        changed = False
        for key in ("events_default", "invite"):
            if levels.named_level(key) < restricted:
                content[key] = restricted
                changed = True
        if not changed:
            return
        try:
            await self._send(room_id, user_id, "m.room.power_levels", content)
        except errors.MatrixError as refused:
            logger.warning("could not mute the replaced room %s: %s", room_id, refused.message)

    async def _send(
        self, room_id: str, user_id: str, event_type: str, content: dict[str, Any]
    ) -> None:
        try:
            await self._pipeline.send(
                EventDraft(room_id, event_type, user_id, content, state_key="")
            )
        except AuthError as refused:
            raise errors.forbidden(f"{event_type} refused: {refused.reason}") from None
        except InvalidEventError as invalid:
            raise errors.bad_json(f"{event_type} is invalid: {invalid}") from None

    def _is_local(self, alias: str) -> bool:
        return alias.partition(":")[2] == self._server_name


def _check_may_upgrade(version: RoomVersion, user_id: str, state: Mapping[StateKey, Event]) -> None:
    """403 unless ``user_id`` is joined and may send ``m.room.tombstone`` — the same
    judgement the auth rules make on the tombstone, made before anything is built."""
    if membership_in(state, user_id) != "join":
        raise errors.forbidden("You are not in this room")
    levels = PowerLevels.from_state(version, state)
    if levels.user_level(user_id) < levels.send_level("m.room.tombstone", True):
        raise errors.forbidden("You need the power to send m.room.tombstone to upgrade this room")


def _normalised_levels(version: RoomVersion, content: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of power levels content with every level an integer, as every room
    version accepts (old versions allow strings; v10+ refuse them); values that are
    no level at all are dropped, as the auth rules ignore them.  Synapse does the
    same (``copy_and_fixup_power_levels_contents``)."""
    result: dict[str, Any] = {}
    for key, value in content.items():
        if key in _NAMED_LEVELS:
            level = parse_power_level(value, version)
            if level is not None:
                result[key] = level
        elif key in _LEVEL_MAPS:
            if isinstance(value, dict):
                parsed = {name: parse_power_level(v, version) for name, v in value.items()}
                result[key] = {name: level for name, level in parsed.items() if level is not None}
        else:
            result[key] = copy.deepcopy(value)
    return result


def _final_power_levels(
    old_version: RoomVersion,
    new_version: RoomVersion,
    power_levels: Event | None,
    *,
    upgrader: str,
    old_creators: frozenset[str],
    new_creators: set[str],
) -> dict[str, Any]:
    """The power levels the new room ends with."""
    if power_levels is None:
        # Only a pre-v12 creator can upgrade such a room (level 100, implicitly).
        return {} if new_version.hydra else {"users": {upgrader: 100}}
    content = _normalised_levels(old_version, power_levels.content)
    users: dict[str, int] = dict(content.get("users", {}))
    if new_version.hydra:
        # v12: creators have unbounded power and must not be listed.
        for creator in new_creators:
            users.pop(creator, None)
    elif old_version.hydra:
        top = max([100, *_all_levels(content)])
        for creator in {upgrader, *old_creators}:
            users[creator] = max(users.get(creator, 0), top)
    content["users"] = users
    return content


def _all_levels(content: Mapping[str, Any]) -> list[int]:
    levels = [value for key, value in content.items() if key in _NAMED_LEVELS]
    for key in _LEVEL_MAPS:
        levels.extend(content.get(key, {}).values())
    return levels


def _levels_while_cloning(
    new_version: RoomVersion, final: dict[str, Any], upgrader: str
) -> tuple[dict[str, Any], int | float]:
    """The power levels the new room starts with, and the upgrader's level in them:
    ``final`` with the upgrader raised to what copying the state and bans needs."""
    if new_version.hydra:
        return final, float("inf")  # the upgrader is a creator
    events = final.get("events", {})
    needed = max(final.get("state_default", 50), final.get("ban", 50), *events.values(), 0)
    users = final.get("users", {})
    current = users.get(upgrader, final.get("users_default", 0))
    if current >= needed:
        return final, current
    return {**final, "users": {**users, upgrader: needed}}, needed


def _bans_to_copy(
    state: Mapping[StateKey, Event],
    upgrader: str,
    new_creators: set[str],
    new_version: RoomVersion,
    levels: Mapping[str, Any],
    upgrader_level: int | float,
) -> list[InitialEvent]:
    """The old room's bans, as Synapse copies them, less those the auth rules would
    refuse in the new room (a creator, or someone at the upgrader's level or above)."""
    users = levels.get("users", {})
    default = levels.get("users_default", 0)
    bans = []
    for (event_type, target), event in sorted(state.items()):
        if event_type != "m.room.member" or event.membership != "ban":
            continue
        if target == upgrader or target in new_creators:
            continue
        if not new_version.hydra and users.get(target, default) >= upgrader_level:
            continue
        bans.append(InitialEvent("m.room.member", upgrader, dict(event.content), target))
    return bans
