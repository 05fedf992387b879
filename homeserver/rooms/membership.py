"""Joining, leaving, inviting, knocking, kicking, banning and unbanning.

Each action becomes one ``m.room.member`` event through the event pipeline, so the
auth rules of the room version decide; this module adds what the rules cannot
know: the joiner's profile in the content, the restricted-join authoriser, rate
limits (``rc_joins``, ``rc_invites``), and refusals with a clear message where the
rules would accept something pointless (kicking a non-member, unbanning someone not
banned).

spec: client-server-api/_index.md#room-membership, #joining-rooms, #leaving-rooms,
#banning-users-in-a-room, #knocking-on-rooms, #restricted-rooms
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.auth import AuthError, PowerLevels
from homeserver.events.errors import InvalidEventError
from homeserver.events.event import Event
from homeserver.events.room_versions import get_room_version
from homeserver.profile.fields import Profile
from homeserver.profile.handler import ProfileHandler
from homeserver.ratelimit import RateLimiter
from homeserver.rooms.builder import EventDraft
from homeserver.rooms.pipeline import EventPipeline, SentEvent, UnknownRoomError
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.events import RoomRecord
from homeserver.storage.timeline import TimelineStore

logger = logging.getLogger(__name__)

MembershipAction = Literal["join", "invite", "leave", "kick", "ban", "unban", "knock"]

_ACTION_MEMBERSHIP: dict[MembershipAction, str] = {
    "join": "join",
    "invite": "invite",
    "leave": "leave",
    "kick": "leave",
    "ban": "ban",
    "unban": "leave",
    "knock": "knock",
}


#: Member-event content keys a client cannot choose: ``membership`` is the action's,
#: ``join_authorised_via_users_server`` is this server's word that a member vouched for
#: a restricted join (Synapse strips it from client content too), and
#: ``third_party_signed`` is a request parameter of ``/join``, not event content.
_SERVER_SET_CONTENT = frozenset(
    {"membership", "join_authorised_via_users_server", "third_party_signed"}
)


class MembershipHandler:
    def __init__(
        self,
        *,
        server_name: str,
        pipeline: EventPipeline,
        state: RoomStateReader,
        timeline: TimelineStore,
        profiles: ProfileHandler,
        joins_limiter: RateLimiter,
        invites_per_room: RateLimiter,
        invites_per_user: RateLimiter,
        invites_per_issuer: RateLimiter,
    ) -> None:
        self._server_name = server_name
        self._pipeline = pipeline
        self._state = state
        self._timeline = timeline
        self._profiles = profiles
        self._joins_limiter = joins_limiter
        self._invites_per_room = invites_per_room
        self._invites_per_user = invites_per_user
        self._invites_per_issuer = invites_per_issuer

    async def update_membership(
        self,
        requester: Requester,
        room_id: str,
        target: str,
        action: MembershipAction,
        *,
        reason: str | None = None,
        extra_content: dict[str, Any] | None = None,
        is_direct: bool = False,
        ratelimit: bool = True,
    ) -> SentEvent:
        """Send the membership event for ``action``; raises MatrixError when refused."""
        room = await self._state.room(room_id)
        if room is None:
            raise self._unknown_room(room_id, action)
        current = await self._state.current_state(room)
        existing = current.get(("m.room.member", target))
        existing_membership = existing.membership if existing is not None else None
        self._check_sensible(action, requester.user_id, target, existing_membership)
        if action == "join" and requester.is_guest:
            _check_guest_may_join(current)
        if ratelimit:
            self._ratelimit(requester, room_id, target, action)
        content: dict[str, Any] = {
            key: value
            for key, value in (extra_content or {}).items()
            if key not in _SERVER_SET_CONTENT
        }
        content["membership"] = _ACTION_MEMBERSHIP[action]
        if reason is not None:
            content["reason"] = reason
        if action in ("join", "invite", "knock"):
            await self._add_profile(content, target)
        if action == "invite" and is_direct:
            content["is_direct"] = True
        if action == "join" and existing_membership not in ("join", "invite"):
            await self._authorise_restricted_join(room, current, target, content)
        if (
            action == "join"
            and existing is not None
            and existing_membership == "join"
            and existing.content == content
        ):
            # Re-joining with nothing changed sends nothing.
            return SentEvent(existing, existing.internal.stream_ordering or 0)
        return await self.send_member_event(room_id, requester.user_id, target, content)

    async def invite_content(self, target: str, *, is_direct: bool) -> dict[str, Any]:
        """The content of an invite of ``target`` (for a new room's initial invites)."""
        content: dict[str, Any] = {"membership": "invite"}
        await self._add_profile(content, target)
        if is_direct:
            content["is_direct"] = True
        return content

    async def send_member_event(
        self, room_id: str, sender: str, target: str, content: dict[str, Any]
    ) -> SentEvent:
        try:
            return await self._pipeline.send(
                EventDraft(room_id, "m.room.member", sender, content, state_key=target)
            )
        except AuthError as refused:
            raise errors.forbidden(f"You cannot do that here: {refused.reason}") from None
        except InvalidEventError as invalid:
            raise errors.bad_json(f"Invalid membership event: {invalid}") from None
        except UnknownRoomError:
            raise errors.not_found("Unknown room") from None

    async def forget(self, requester: Requester, room_id: str) -> None:
        """spec: client-server-api/_index.md#post_matrixclientv3roomsroomidforget"""
        room = await self._state.room_or_404(room_id)
        membership = await self._state.membership(room, requester.user_id)
        if membership is None:
            raise errors.not_found("You have never been in this room")
        if membership.membership in ("join", "invite", "knock"):
            raise errors.MatrixError(
                400, errors.Codes.UNKNOWN, "Leave the room before forgetting it"
            )
        await self._timeline.forget_room(requester.user_id, room.room_nid, membership.event_id)

    async def joined_rooms(self, user_id: str) -> list[str]:
        """The IDs of the rooms ``user_id`` is joined to, sorted (``/joined_rooms``)."""
        rows = await self._timeline.get_memberships_for_user(user_id)
        return sorted(row.room_id for row in rows if row.membership == "join")

    async def update_profile_in_rooms(self, user_id: str, profile: Profile) -> None:
        """Re-send the user's join events with their new display name and avatar."""
        for row in await self._timeline.get_memberships_for_user(user_id):
            if row.membership != "join":
                continue
            room = await self._state.room(row.room_id)
            if room is None:
                continue
            current = (await self._state.current_state(room, [("m.room.member", user_id)])).get(
                ("m.room.member", user_id)
            )
            if current is None or current.membership != "join":
                continue
            content = {
                key: value
                for key, value in current.content.items()
                if key not in ("displayname", "avatar_url")
            }
            content.update(profile.member_content())
            if content == current.content:
                continue
            try:
                await self.send_member_event(row.room_id, user_id, user_id, content)
            except errors.MatrixError as refused:
                # One room refusing (e.g. muted from changing state) must not stop the rest.
                logger.info("profile update in %s refused: %s", row.room_id, refused.message)

    async def leave_all_rooms(self, user_id: str) -> None:
        """On deactivation: leave every joined room, reject invites, rescind knocks."""
        for row in await self._timeline.get_memberships_for_user(user_id):
            if row.membership not in ("join", "invite", "knock"):
                continue
            try:
                await self.send_member_event(row.room_id, user_id, user_id, {"membership": "leave"})
            except errors.MatrixError as refused:
                logger.warning("could not leave %s on deactivation: %s", row.room_id, refused)

    def _unknown_room(self, room_id: str, action: MembershipAction) -> errors.MatrixError:
        if action in ("join", "knock"):
            # Without federation there is no server to join a room we do not have through.
            return errors.not_found("No known servers for this room")
        return errors.not_found("Unknown room")

    def _check_sensible(
        self, action: MembershipAction, sender: str, target: str, existing: str | None
    ) -> None:
        if action in ("join", "leave", "knock") and target != sender:
            raise errors.forbidden("You can only change your own membership this way")
        if action == "kick" and existing not in ("join", "invite", "knock"):
            raise errors.forbidden(f"{target} is not in the room")
        if action == "unban" and existing != "ban":
            raise errors.forbidden(f"{target} is not banned")
        if action == "invite" and existing == "join":
            raise errors.forbidden(f"{target} is already in the room")
        if action == "invite" and existing == "ban":
            raise errors.forbidden(f"{target} is banned from the room")

    def _ratelimit(
        self, requester: Requester, room_id: str, target: str, action: MembershipAction
    ) -> None:
        if action == "join":
            self._joins_limiter.ratelimit(requester.user_id)
        elif action == "invite":
            self._invites_per_room.ratelimit(room_id)
            self._invites_per_user.ratelimit(target)
            self._invites_per_issuer.ratelimit(requester.user_id)

    async def _add_profile(self, content: dict[str, Any], user_id: str) -> None:
        if "displayname" in content or "avatar_url" in content:
            return
        content.update(await self._profiles.member_content(user_id))

    async def _authorise_restricted_join(
        self,
        room: RoomRecord,
        current: dict[tuple[str, str], Event],
        user_id: str,
        content: dict[str, Any],
    ) -> None:
        """Pick a local member who may invite to vouch for a restricted join.

        spec: client-server-api/_index.md#restricted-rooms
        """
        join_rules = current.get(("m.room.join_rules", ""))
        rule = join_rules.content.get("join_rule") if join_rules is not None else None
        if rule not in ("restricted", "knock_restricted") or join_rules is None:
            return
        allow = join_rules.content.get("allow")
        allowed_rooms = [
            entry.get("room_id")
            for entry in (allow if isinstance(allow, list) else [])
            if isinstance(entry, dict) and entry.get("type") == "m.room_membership"
        ]
        in_allowed_room = False
        for allowed in allowed_rooms:
            if not isinstance(allowed, str):
                continue
            other = await self._state.room(allowed)
            if other is None:
                continue
            membership = await self._state.membership(other, user_id)
            if membership is not None and membership.membership == "join":
                in_allowed_room = True
                break
        if not in_allowed_room:
            if rule == "knock_restricted":
                raise errors.forbidden("You need an invite, or to knock first")
            raise errors.forbidden("You are not a member of a room that grants access")
        room_version = get_room_version(room.room_version)
        levels = PowerLevels.from_state(room_version, current)
        invite_level = levels.named_level("invite")
        for (event_type, member), event in sorted(current.items()):
            if event_type != "m.room.member" or event.membership != "join":
                continue
            if member.endswith(":" + self._server_name) and (
                levels.user_level(member) >= invite_level
            ):
                content["join_authorised_via_users_server"] = member
                return
        raise errors.forbidden("No member of this server can authorise your join")


def _check_guest_may_join(current: dict[tuple[str, str], Event]) -> None:
    """Guests join only rooms whose ``m.room.guest_access`` is ``can_join``; the auth
    rules do not look at it (servers enforce it for their own guests).  403
    ``M_FORBIDDEN`` as Synapse answers.  spec: modules/guest_access.md#server-behaviour
    """
    guest_access = current.get(("m.room.guest_access", ""))
    if guest_access is None or guest_access.content.get("guest_access") != "can_join":
        raise errors.forbidden("Guest access is not allowed in this room")
