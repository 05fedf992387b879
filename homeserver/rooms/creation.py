"""``/createRoom``: the events a new room starts with, in the spec's order.

1. ``m.room.create``; 2. the creator's join; 3. power levels (defaults merged with
``power_level_content_override``); 4. ``m.room.canonical_alias`` for
``room_alias_name``; 5. the preset's join rules, history visibility and guest
access; 6. ``initial_state`` in order, then ``m.room.encryption`` when the server
encrypts such rooms by default; 7. name and topic; 8. invites.  All of them
are built and auth-checked before any is stored, then stored together: a request
whose own events the auth rules refuse (say, an override that leaves the creator
without power to set the name or to invite) fails with ``M_INVALID_ROOM_STATE`` and
leaves no room behind.

Invites of users of other servers are the exception: the invitee's server must
countersign each one before it is stored, so they are checked with the batch but
sent after it, one by one, exactly as ``POST /invite`` sends them (as Synapse does,
and only remote invitees: local ones stay in the batch).  One that fails (the
invitee's server unreachable, or refusing) is logged and the room is still created
and returned: the creator can see who is not invited and try again, where an error
would hide a room that exists.  (Synapse answers that invite's error instead, with the
room created all the same and later invitees skipped.)

spec: client-server-api/_index.md#creation, data/api/client-server/create_room.yaml,
server-server-api.md#inviting-to-a-room
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Protocol

import attrs

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.auth import AuthError
from homeserver.events.errors import EventTooLargeError, InvalidEventError
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.identifiers import UserID, is_valid_room_alias
from homeserver.profile.handler import ProfileHandler
from homeserver.rooms.membership import MembershipHandler
from homeserver.rooms.pipeline import EventPipeline, InitialEvent, InitialEventRefused

logger = logging.getLogger(__name__)

PRESETS = ("private_chat", "trusted_private_chat", "public_chat")

#: The presets ``encryption_enabled_by_default_for_room_type: invite`` encrypts.
PRIVATE_PRESETS = frozenset({"private_chat", "trusted_private_chat"})

#: The one room encryption algorithm of the spec.
#: spec: client-server-api/modules/end_to_end_encryption.md#mroomencryption
MEGOLM_ALGORITHM = "m.megolm.v1.aes-sha2"

_PRESET_STATE: dict[str, tuple[str, str, str]] = {
    # preset: (join_rule, history_visibility, guest_access)
    "private_chat": ("invite", "shared", "can_join"),
    "trusted_private_chat": ("invite", "shared", "can_join"),
    "public_chat": ("public", "shared", "forbidden"),
}


class RoomDirectory(Protocol):
    """What room creation needs of the alias directory.

    A protocol so that ``rooms`` never imports ``directory`` (which builds on room
    state): ``homeserver.directory.handler.DirectoryHandler`` satisfies it.
    """

    async def create_alias(
        self,
        requester_user_id: str,
        alias: str,
        room_id: str,
        *,
        check_can_create: bool = True,
    ) -> None: ...

    async def resolve_alias(self, alias: str) -> tuple[str, list[str]]: ...

    async def set_visibility(self, room_id: str, visibility: str) -> None: ...


@attrs.frozen
class RoomCreationRequest:
    """A validated ``/createRoom`` body."""

    preset: str | None = None
    visibility: str = "private"
    room_version: str | None = None
    name: str | None = None
    topic: str | None = None
    room_alias_name: str | None = None
    creation_content: dict[str, Any] = attrs.field(factory=dict)
    initial_state: list[tuple[str, str, dict[str, Any]]] = attrs.field(factory=list)
    invite: list[str] = attrs.field(factory=list)
    is_direct: bool = False
    power_level_content_override: dict[str, Any] | None = None


class RoomCreationHandler:
    def __init__(
        self,
        *,
        server_name: str,
        default_room_version: str,
        pipeline: EventPipeline,
        membership: MembershipHandler,
        profiles: ProfileHandler,
        directory: RoomDirectory,
        encryption_by_default: str = "off",
    ) -> None:
        """``directory``: claims ``room_alias_name`` and publishes public rooms.
        ``encryption_by_default``: ``encryption_enabled_by_default_for_room_type``."""
        self._server_name = server_name
        self._encryption_by_default = encryption_by_default
        self._default_room_version = default_room_version
        self._pipeline = pipeline
        self._membership = membership
        self._directory = directory
        self._profiles = profiles

    async def create_room(self, requester: Requester, request: RoomCreationRequest) -> str:
        creator = requester.user_id
        version_id = request.room_version or self._default_room_version
        room_version = KNOWN_ROOM_VERSIONS.get(version_id)
        if room_version is None:
            raise errors.MatrixError(
                400,
                errors.Codes.UNSUPPORTED_ROOM_VERSION,
                f"This server does not support room version {version_id!r}",
            )
        preset = request.preset or (
            "public_chat" if request.visibility == "public" else "private_chat"
        )
        alias = None
        if request.room_alias_name is not None:
            alias = f"#{request.room_alias_name}:{self._server_name}"
            if not is_valid_room_alias(alias) or ":" in request.room_alias_name:
                raise errors.invalid_param("room_alias_name is not a valid alias localpart")
            await self._check_alias_free(alias)
        create_content = copy.deepcopy(request.creation_content)
        if preset == "trusted_private_chat" and room_version.hydra and request.invite:
            # spec v1.16: trusted invitees become additional creators in v12+ rooms.
            existing = create_content.get("additional_creators", [])
            if not isinstance(existing, list):
                raise errors.bad_json("additional_creators must be a list of user IDs")
            create_content["additional_creators"] = list(
                dict.fromkeys([*existing, *request.invite])
            )
        create_content.pop("room_version", None)
        if creator in request.invite:
            raise errors.invalid_param("You cannot invite yourself to your own room")
        initial = await self._initial_events(room_version, creator, preset, alias, request)
        remote_invitees = [user for user in request.invite if not self._is_local(user)]
        remote_invites = await self._invite_events(creator, remote_invitees, request.is_direct)

        async def claim_alias(room_id: str) -> None:
            if alias is not None:
                await self._directory.create_alias(creator, alias, room_id, check_can_create=False)

        try:
            sent = await self._pipeline.create_room(
                version_id,
                creator,
                create_content,
                initial,
                before_persist=claim_alias,
                checked_after=remote_invites,
            )
        except (AuthError, InvalidEventError) as invalid:
            raise errors.bad_json(f"Invalid creation_content: {invalid}") from None
        except InitialEventRefused as refused:
            raise _refusal_error(refused) from None
        room_id = sent[0].event.room_id
        if request.visibility == "public":
            await self._directory.set_visibility(room_id, "public")
        await self._invite_remote_users(requester, room_id, remote_invitees, request.is_direct)
        return room_id

    async def _invite_remote_users(
        self, requester: Requester, room_id: str, invitees: list[str], is_direct: bool
    ) -> None:
        """Invite users of other servers into the new room, one after the other (each
        invite builds on the one before), through the invitee's server like any
        invite; a failure is logged, not raised (see the module's docstring).
        Not rate limited: the request's invites are part of creating the room."""
        for invitee in invitees:
            try:
                await self._membership.update_membership(
                    requester, room_id, invitee, "invite", is_direct=is_direct, ratelimit=False
                )
            except errors.MatrixError as failed:
                logger.warning(
                    "createRoom %s: could not invite %s: %s %s",
                    room_id,
                    invitee,
                    failed.errcode,
                    failed.message,
                )

    async def _initial_events(
        self,
        room_version: RoomVersion,
        creator: str,
        preset: str,
        alias: str | None,
        request: RoomCreationRequest,
    ) -> list[InitialEvent]:
        """Everything after ``m.room.create``, in the spec's order."""

        def state(event_type: str, state_key: str, content: dict[str, Any]) -> InitialEvent:
            return InitialEvent(event_type, creator, content, state_key)

        events = [
            state("m.room.member", creator, await self._join(creator)),
            state(
                "m.room.power_levels",
                "",
                self._power_levels(room_version, creator, preset, request),
            ),
        ]
        if alias is not None:
            events.append(state("m.room.canonical_alias", "", {"alias": alias}))
        join_rule, history_visibility, guest_access = _PRESET_STATE[preset]
        preset_state = {
            ("m.room.join_rules", ""): {"join_rule": join_rule},
            ("m.room.history_visibility", ""): {"history_visibility": history_visibility},
            ("m.room.guest_access", ""): {"guest_access": guest_access},
        }
        initial = {(t, k): c for t, k, c in request.initial_state}
        for (event_type, state_key), content in preset_state.items():
            # initial_state wins over the preset for the same key.
            if (event_type, state_key) not in initial:
                events.append(state(event_type, state_key, content))
        for event_type, state_key, content in request.initial_state:
            if (event_type, state_key) in (("m.room.name", ""), ("m.room.topic", "")) and (
                (event_type == "m.room.name" and request.name is not None)
                or (event_type == "m.room.topic" and request.topic is not None)
            ):
                continue  # overwritten by `name` / `topic` below
            events.append(state(event_type, state_key, content))
        supplied = initial.get(("m.room.encryption", ""), {})
        if self._encrypts_by_default(preset) and not isinstance(supplied.get("algorithm"), str):
            # Right after initial_state, as Synapse does: a client that sets its own
            # m.room.encryption (other rotation settings, say) keeps it, but one
            # without an algorithm (`{}`) cannot switch the default off: ours follows
            # it and is the room's state.
            events.append(state("m.room.encryption", "", {"algorithm": MEGOLM_ALGORITHM}))
        if request.name is not None:
            events.append(state("m.room.name", "", {"name": request.name}))
        if request.topic is not None:
            topic_content = {
                "topic": request.topic,
                "m.topic": {"m.text": [{"body": request.topic, "mimetype": "text/plain"}]},
            }
            events.append(state("m.room.topic", "", topic_content))
        # Local invitees' invites go in the same batch; remote ones after it.
        local_invitees = [user for user in request.invite if self._is_local(user)]
        events += await self._invite_events(creator, local_invitees, request.is_direct)
        return events

    async def _invite_events(
        self, creator: str, invitees: list[str], is_direct: bool
    ) -> list[InitialEvent]:
        """The creator's invites of ``invitees``."""
        return [
            InitialEvent(
                "m.room.member",
                creator,
                await self._membership.invite_content(invitee, is_direct=is_direct),
                invitee,
            )
            for invitee in invitees
        ]

    def _is_local(self, user_id: str) -> bool:
        return UserID.parse(user_id).domain == self._server_name

    def _encrypts_by_default(self, preset: str) -> bool:
        """Whether a new room with this (effective) preset starts encrypted."""
        if self._encryption_by_default == "all":
            return True
        return self._encryption_by_default == "invite" and preset in PRIVATE_PRESETS

    async def _check_alias_free(self, alias: str) -> None:
        try:
            await self._directory.resolve_alias(alias)
        except errors.MatrixError as error:
            if error.status == 404:
                return
            raise
        raise errors.MatrixError(400, errors.Codes.ROOM_IN_USE, f"{alias} is already taken")

    async def _join(self, user_id: str) -> dict[str, Any]:
        return {"membership": "join", **await self._profiles.member_content(user_id)}

    def _power_levels(
        self,
        room_version: RoomVersion,
        creator: str,
        preset: str,
        request: RoomCreationRequest,
    ) -> dict[str, Any]:
        """The default power levels of the spec and deployed servers, then the override.

        In v12+ creators have infinite power and must not be listed in ``users``.
        """
        users: dict[str, int] = {} if room_version.hydra else {creator: 100}
        if preset == "trusted_private_chat" and not room_version.hydra:
            for invitee in request.invite:
                users[invitee] = 100
        content: dict[str, Any] = {
            "users": users,
            "users_default": 0,
            "events": {
                "m.room.name": 50,
                "m.room.avatar": 50,
                "m.room.topic": 50,
                "m.room.canonical_alias": 50,
                "m.room.power_levels": 100,
                "m.room.history_visibility": 100,
                "m.room.encryption": 100,
                "m.room.server_acl": 100,
                "m.room.tombstone": 150 if room_version.hydra else 100,
            },
            "events_default": 0,
            "state_default": 50,
            "ban": 50,
            "kick": 50,
            "redact": 50,
            "invite": 50 if preset == "public_chat" else 0,
            "notifications": {"room": 50},
        }
        override = request.power_level_content_override
        if override:
            content.update(copy.deepcopy(override))
        return content


def _refusal_error(refused: InitialEventRefused) -> errors.MatrixError:
    """The client error for a new room's event that is invalid or refused."""
    event_type, cause = refused.initial.event_type, refused.cause
    if isinstance(cause, EventTooLargeError):
        return errors.MatrixError(413, errors.Codes.TOO_LARGE, cause.reason)
    reason = cause.reason if isinstance(cause, (AuthError, InvalidEventError)) else str(cause)
    if event_type == "m.room.member" and refused.initial.state_key != refused.initial.sender:
        what = f"the invite of {refused.initial.state_key}"
    else:
        what = event_type
    return errors.MatrixError(
        400,
        errors.Codes.INVALID_ROOM_STATE,
        f"The initial state is invalid: {what} refused ({reason})",
    )
