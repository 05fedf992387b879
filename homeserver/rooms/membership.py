"""Joining, leaving, inviting, knocking, kicking, banning and unbanning.

Each action becomes one ``m.room.member`` event through the event pipeline, so the
auth rules of the room version decide; this module adds what the rules cannot
know: the joiner's profile in the content, the restricted-join authoriser, rate
limits (``rc_joins``, ``rc_invites``), and refusals with a clear message where the
rules would accept something pointless (kicking a non-member, unbanning someone not
banned).

Rooms this server is not in (no local member joined, or only an invite or knock held
for one of our users) are joined, left and knocked on through another server, and
invites of users of other servers are countersigned by their server first: both go
through a :class:`RemoteMembership`, which federation implements (none: the server
does not federate, and such requests are refused as before).

spec: client-server-api/_index.md#room-membership, #joining-rooms, #leaving-rooms,
#banning-users-in-a-room, #knocking-on-rooms, #restricted-rooms;
server-server-api.md#joining-rooms, #knocking-rooms, #inviting-to-a-room,
#leaving-rooms-rejecting-invites
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.auth import AuthError, PowerLevels
from homeserver.events.errors import InvalidEventError
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion, get_room_version
from homeserver.identifiers import UserID
from homeserver.profile.fields import Profile
from homeserver.profile.handler import ProfileHandler
from homeserver.ratelimit import RateLimiter
from homeserver.rooms.builder import EventDraft
from homeserver.rooms.pipeline import EventPipeline, SentEvent, UnknownRoomError
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.stripped_state import stripped_state_events
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


#: Member events read at a time when looking for a local member joined to a room.
_MEMBERS_PER_READ = 50


class RemoteMembership(Protocol):
    """Membership changes another server must take part in (federation implements it).

    ``join``/``leave``/``knock`` change the membership of a local user in a room this
    server is not in, through one of ``servers`` (tried in order); ``content`` is the
    member event's content as decided here (profile, reason...).  They raise
    MatrixError when every server failed or refused.
    spec: server-server-api.md#joining-rooms, #leaving-rooms-rejecting-invites,
    #knocking-rooms
    """

    async def join(
        self, room_id: str, user_id: str, servers: Sequence[str], content: Mapping[str, Any]
    ) -> SentEvent: ...

    async def leave(
        self,
        room_id: str,
        user_id: str,
        servers: Sequence[str],
        content: Mapping[str, Any],
        *,
        held: Event | None = None,
    ) -> SentEvent:
        """``held``: the invite or knock being given up, rejected here alone if no
        server takes the leave."""
        ...

    async def knock(
        self, room_id: str, user_id: str, servers: Sequence[str], content: Mapping[str, Any]
    ) -> SentEvent: ...

    async def invite(
        self, room_version: RoomVersion, invite_event: Event, invite_room_state: Sequence[Event]
    ) -> Event:
        """``invite_event`` (built and signed here) countersigned by the invitee's server;
        MatrixError (403 with its reason) when that server refuses.
        spec: server-server-api.md#inviting-to-a-room"""
        ...


class RestrictedJoinRefused(Exception):
    """Nobody here can vouch for a restricted join; ``why`` says which condition failed:

    - ``not_allowed``: the user is in none of the rooms that grant access;
    - ``no_authoriser``: they are, but no member of this server may invite;
    - ``rooms_unknown``: this server holds none of the rooms that grant access.

    spec: server-server-api.md#restricted-rooms
    """

    def __init__(self, why: Literal["not_allowed", "no_authoriser", "rooms_unknown"]) -> None:
        super().__init__(why)
        self.why = why
        self.knock_restricted = False


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
        remote: RemoteMembership | None = None,
    ) -> None:
        self._server_name = server_name
        self._remote = remote
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
        servers: Sequence[str] = (),
    ) -> SentEvent:
        """Send the membership event for ``action``; raises MatrixError when refused.

        ``servers``: for a join or knock of a room this server is not in, the servers
        to go through (the request's ``via``/``server_name``, an alias's servers).
        """
        room = await self._state.room(room_id)
        if action in ("join", "knock", "leave") and await self._goes_remote(room, target):
            return await self._remote_own_membership(
                requester, room_id, room, target, action, reason, extra_content, servers, ratelimit
            )
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
        content = await self._content(action, target, reason, extra_content, is_direct=is_direct)
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
        if action == "invite" and not self._is_local(target) and self._remote is not None:
            return await self._invite_remote_user(room, requester.user_id, target, content)
        return await self.send_member_event(room_id, requester.user_id, target, content)

    async def _content(
        self,
        action: MembershipAction,
        target: str,
        reason: str | None,
        extra_content: dict[str, Any] | None,
        *,
        is_direct: bool = False,
    ) -> dict[str, Any]:
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
        return content

    def _is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self._server_name)

    async def _goes_remote(self, room: RoomRecord | None, user_id: str) -> bool:
        """Whether a join, knock or leave of ``user_id`` must go through another server:
        this server is not in the room (it holds no state of it, or only an invite or
        knock, or none of its users is joined any more) and federation is on."""
        if self._remote is None or not self._is_local(user_id):
            return False
        if room is None or room.current_state_group is None:
            return True
        row = await self._state.membership(room, user_id)
        if row is not None and row.membership == "join":
            return False  # the user's own join: we are in the room (the common case)
        return not await self.server_in_room(room)

    async def server_in_room(self, room: RoomRecord) -> bool:
        """Whether a user of this server is joined in the room's current state."""
        state_ids = await self._state.current_state_ids(room)
        ours = [
            (key, event_id)
            for key, event_id in state_ids.items()
            if key[0] == "m.room.member" and self._is_local(key[1])
        ]
        # A few at a time: in a big room the first members read are usually joined.
        for start in range(0, len(ours), _MEMBERS_PER_READ):
            members = await self._state.events_for_state(
                dict(ours[start : start + _MEMBERS_PER_READ])
            )
            if any(event.membership == "join" for event in members.values()):
                return True
        return False

    async def _remote_own_membership(
        self,
        requester: Requester,
        room_id: str,
        room: RoomRecord | None,
        target: str,
        action: MembershipAction,
        reason: str | None,
        extra_content: dict[str, Any] | None,
        servers: Sequence[str],
        ratelimit: bool,
    ) -> SentEvent:
        """A join, knock or leave through another server (we are not in the room).

        Candidate servers: the request's, then the server of whoever invited the user
        (it was in the room then).  spec: server-server-api.md#joining-rooms ("picking
        the origin server of that invite message as the join candidate")
        """
        assert self._remote is not None
        existing = await self._held_membership(room, target)
        existing_membership = existing.membership if existing is not None else None
        self._check_sensible(action, requester.user_id, target, existing_membership)
        if action == "join" and requester.is_guest:
            # Guest access is a property of the room's state, which we do not hold.
            raise errors.forbidden("Guests cannot join rooms on other servers")
        if action == "leave" and existing_membership not in ("invite", "knock"):
            # Without the room's state there is nothing to leave but an invite or knock.
            raise (
                errors.not_found("Unknown room")
                if room is None
                else errors.forbidden("You are not in this room")
            )
        if action == "join" and existing_membership == "ban":
            raise errors.forbidden("You are banned from this room")
        if ratelimit:
            self._ratelimit(requester, room_id, target, action)
        content = await self._content(action, target, reason, extra_content)
        candidates = self._candidates(servers, existing)
        if action == "join":
            return await self._remote.join(room_id, target, candidates, content)
        if action == "knock":
            return await self._remote.knock(room_id, target, candidates, content)
        return await self._remote.leave(room_id, target, candidates, content, held=existing)

    async def _remote_leave(
        self, room_id: str, room: RoomRecord | None, user_id: str, content: dict[str, Any]
    ) -> SentEvent:
        """Reject an invite or retract a knock of a room we are not in."""
        assert self._remote is not None
        existing = await self._held_membership(room, user_id)
        if existing is None or existing.membership not in ("invite", "knock"):
            raise errors.not_found("You are not invited to this room")
        return await self._remote.leave(
            room_id, user_id, self._candidates((), existing), content, held=existing
        )

    def _candidates(self, servers: Sequence[str], existing: Event | None) -> list[str]:
        """The servers to ask, in order: ``servers``, then for a held invite or knock
        the server of its sender (it was in the room then); never ourselves."""
        candidates = list(servers)
        if existing is not None and existing.membership in ("invite", "knock"):
            candidates.append(UserID.parse(existing.sender).domain)
        return [s for s in dict.fromkeys(candidates) if s != self._server_name]

    async def _held_membership(self, room: RoomRecord | None, user_id: str) -> Event | None:
        """The membership event of ``user_id`` this server holds for a room it may not be
        in (an invite or knock kept as an outlier, or the last state it saw)."""
        if room is None:
            return None
        row = await self._state.membership(room, user_id)
        if row is None:
            return None
        loaded = await self._state.events_for_state({("m.room.member", user_id): row.event_id})
        return loaded.get(("m.room.member", user_id))

    async def _invite_remote_user(
        self, room: RoomRecord, sender: str, target: str, content: dict[str, Any]
    ) -> SentEvent:
        """Build the invite, have the invitee's server countersign it, then store it.

        spec: server-server-api.md#inviting-to-a-room
        """
        assert self._remote is not None
        draft = EventDraft(room.room_id, "m.room.member", sender, content, state_key=target)
        try:
            event = await self._pipeline.build(draft)
        except AuthError as refused:
            raise errors.forbidden(f"You cannot do that here: {refused.reason}") from None
        except InvalidEventError as invalid:
            raise errors.bad_json(f"Invalid membership event: {invalid}") from None
        except UnknownRoomError:
            raise errors.not_found("Unknown room") from None
        invite_room_state = await stripped_state_events(self._state, room)
        signed = await self._remote.invite(
            get_room_version(room.room_version), event, invite_room_state
        )
        try:
            return await self._pipeline.send_built(signed)
        except AuthError as refused:
            raise errors.forbidden(f"You cannot do that here: {refused.reason}") from None
        except UnknownRoomError:
            raise errors.not_found("Unknown room") from None

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
                room = await self._state.room(row.room_id)
                if await self._goes_remote(room, user_id):
                    # An invite or knock of a room we are not in: rejected through
                    # the server that sent it (or the room's).
                    await self._remote_leave(row.room_id, room, user_id, {"membership": "leave"})
                else:
                    await self.send_member_event(
                        row.room_id, user_id, user_id, {"membership": "leave"}
                    )
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
        current: Mapping[tuple[str, str], Event],
        user_id: str,
        content: dict[str, Any],
    ) -> None:
        """Pick a local member who may invite to vouch for a restricted join.

        spec: client-server-api/_index.md#restricted-rooms
        """
        try:
            authoriser = await self.choose_join_authoriser(room, current, user_id)
        except RestrictedJoinRefused as refused:
            if refused.why == "no_authoriser":
                raise errors.forbidden("No member of this server can authorise your join") from None
            if refused.knock_restricted:
                raise errors.forbidden("You need an invite, or to knock first") from None
            raise errors.forbidden("You are not a member of a room that grants access") from None
        if authoriser is not None:
            content["join_authorised_via_users_server"] = authoriser

    async def choose_join_authoriser(
        self, room: RoomRecord, current: Mapping[tuple[str, str], Event], user_id: str
    ) -> str | None:
        """A local member who may invite, to vouch for ``user_id`` joining ``room`` (in
        the current state ``current``) under a restricted join rule; None when the
        rule is not restricted.  Raises :class:`RestrictedJoinRefused`.

        Used for local joins and for other servers' ``make_join``/``send_join``.
        spec: client-server-api/_index.md#restricted-rooms,
        server-server-api.md#restricted-rooms
        """
        join_rules = current.get(("m.room.join_rules", ""))
        rule = join_rules.content.get("join_rule") if join_rules is not None else None
        if rule not in ("restricted", "knock_restricted") or join_rules is None:
            return None
        allow = join_rules.content.get("allow")
        allowed_rooms = [
            entry.get("room_id")
            for entry in (allow if isinstance(allow, list) else [])
            if isinstance(entry, dict) and entry.get("type") == "m.room_membership"
        ]
        in_allowed_room = False
        known_rooms = 0
        for allowed in allowed_rooms:
            if not isinstance(allowed, str):
                continue
            other = await self._state.room(allowed)
            if other is None or not await self.server_in_room(other):
                continue
            known_rooms += 1
            membership = await self._state.membership(other, user_id)
            if membership is not None and membership.membership == "join":
                in_allowed_room = True
                break
        if not in_allowed_room:
            refused = RestrictedJoinRefused(
                "not_allowed" if known_rooms or not allowed_rooms else "rooms_unknown"
            )
            refused.knock_restricted = rule == "knock_restricted"
            raise refused
        room_version = get_room_version(room.room_version)
        levels = PowerLevels.from_state(room_version, current)
        invite_level = levels.named_level("invite")
        for (event_type, member), event in sorted(current.items()):
            if event_type != "m.room.member" or event.membership != "join":
                continue
            if self._is_local(member) and levels.user_level(member) >= invite_level:
                return member
        raise RestrictedJoinRefused("no_authoriser")


def _check_guest_may_join(current: Mapping[tuple[str, str], Event]) -> None:
    """Guests join only rooms whose ``m.room.guest_access`` is ``can_join``; the auth
    rules do not look at it (servers enforce it for their own guests).  403
    ``M_FORBIDDEN`` as Synapse answers.  spec: modules/guest_access.md#server-behaviour
    """
    guest_access = current.get(("m.room.guest_access", ""))
    if guest_access is None or guest_access.content.get("guest_access") != "can_join":
        raise errors.forbidden("Guest access is not allowed in this room")
