"""The resident server's side of the membership handshakes: other servers ask us for
a join, leave or knock template (``make_*``), send back the event their user signed
(``send_*``), or ask us to countersign an invite of one of our users (``invite``).

Every answer is about a room this server is in (it holds the room's current state
and one of its users is joined), except invites, which usually concern rooms we
have never seen.  Remote servers are hostile: the events they send are checked for
shape before anything else (a resident must never countersign or store another
kind of event through these endpoints), then for format and signatures
(``PduCheck``), then by the event path's auth rules like any received event.

spec: server-server-api.md#joining-rooms, #restricted-rooms, #knocking-rooms,
#inviting-to-a-room, #leaving-rooms-rejecting-invites
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Literal, Protocol

from federation.inbound.pdu_checks import InvalidPdu
from federation.membership.pdus import (
    INCOMPATIBLE_ROOM_VERSION,
    UNABLE_TO_AUTHORISE_JOIN,
    UNABLE_TO_GRANT_JOIN,
    PduCheck,
    checked_room_state,
    countersign,
    federation_pdu,
    member_event_problem,
    pdus_of,
)
from federation.protocols import ServerAclCheck, server_of
from homeserver import errors
from homeserver.events.auth import AuthError
from homeserver.events.auth.membership import AUTHORISING_USER
from homeserver.events.errors import InvalidEventError
from homeserver.events.event import Event, StateKey
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, get_room_version
from homeserver.events.signing import SigningKey
from homeserver.events.validation import validate_pdu
from homeserver.rooms.builder import EventDraft
from homeserver.rooms.event_path import PathResult, UnknownRoomError
from homeserver.rooms.membership import RestrictedJoinRefused
from homeserver.rooms.pipeline import EventPipeline
from homeserver.rooms.remote_events import InvalidRemoteState
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.stripped_state import stripped_state_events
from homeserver.storage.event_graph import AuthChainTooLarge
from homeserver.storage.events import EventStore, RoomRecord
from homeserver.storage.timeline import RoomMemberSummary

logger = logging.getLogger(__name__)

Handshake = Literal["join", "leave", "knock"]

_AUTHORISER = AUTHORISING_USER

#: As many heroes as the client-server ``m.heroes`` lists.
#: spec: data/api/client-server/sync.yaml (``m.heroes``: "the first 5 members")
_HEROES = 5

#: The answer of a partially joined resident to the handshakes that need the whole
#: member list: Synapse's, which makes the joining server try the next candidate.
_NOT_FULLY_JOINED = "This server is not fully joined to the room yet; try another server"


async def never_partial(room_id: str) -> bool:
    """The default ``partial_state``: every room we are in is fully joined."""
    return False


class ResidentMembership(Protocol):
    """What the local membership rules offer (``homeserver.rooms.membership``)."""

    async def server_in_room(self, room: RoomRecord) -> bool: ...

    async def choose_join_authoriser(
        self, room: RoomRecord, current: Mapping[StateKey, Event], user_id: str
    ) -> str | None: ...


class MembershipForwarder(Protocol):
    """Passes a remote membership event made through us on to the room's other
    servers (``federation.sender.FederationSender``)."""

    async def send_on_behalf_of(self, event_id: str, origin: str) -> None: ...


class InviteStore(Protocol):
    """Where an invite to a room we are not in is kept (``EventPath.persist_outlier``)."""

    async def persist_outlier(
        self, room_id: str, room_version: str, event: Event
    ) -> PathResult: ...


class AuthChains(Protocol):
    """``homeserver.storage.event_graph.EventGraphStore``: auth chains in one walk."""

    async def get_auth_chain_ids(
        self, event_ids: Collection[str], *, include_given: bool = False
    ) -> set[str]: ...


class RoomSummaries(Protocol):
    """``homeserver.storage.timeline.TimelineStore``: what /sync's ``m.heroes`` reads."""

    async def get_room_summaries(
        self, room_nids: Collection[int], *, exclude_user: str, heroes: int = 5
    ) -> dict[int, RoomMemberSummary]: ...


class MembershipServing:
    def __init__(
        self,
        *,
        server_name: str,
        signing_key: SigningKey,
        pipeline: EventPipeline,
        state: RoomStateReader,
        events: EventStore,
        graph: AuthChains,
        membership: ResidentMembership,
        pdus: PduCheck,
        acl: ServerAclCheck,
        invites: InviteStore,
        forwarder: MembershipForwarder | None = None,
        summaries: RoomSummaries | None = None,
        partial_state: Callable[[str], Awaitable[bool]] = never_partial,
    ) -> None:
        """``forwarder``: None when nothing sends to other servers (tests, or a
        process without the sender).  ``summaries`` picks the heroes of a
        partial-state join as /sync does; without it they are the first joined or
        invited members by depth.  ``partial_state(room_id)`` is true while we are
        still fetching the room's member list after our own partial-state join."""
        self._server_name = server_name
        self._signing_key = signing_key
        self._pipeline = pipeline
        self._state = state
        self._events = events
        self._graph = graph
        self._membership = membership
        self._pdus = pdus
        self._acl = acl
        self._invites = invites
        self._forwarder = forwarder
        self._summaries = summaries
        self._partial_state = partial_state

    # --- make_join, make_leave, make_knock -----------------------------------------

    async def make(
        self,
        origin: str,
        handshake: Handshake,
        room_id: str,
        user_id: str,
        supported_versions: Sequence[str] | None,
    ) -> dict[str, Any]:
        """A template of ``user_id``'s ``handshake`` event: ``{"event", "room_version"}``.

        ``supported_versions`` is ``ver`` (joins and knocks; absent means ["1"]).  The
        template has ``prev_events``, ``auth_events`` and ``depth`` filled and no
        hashes or signatures: the asking server completes and signs it.
        spec: data/api/server-server/joins-v1.yaml, leaving-v1.yaml, knocks.yaml
        """
        if server_of(user_id) != origin:
            raise errors.forbidden(f"{user_id} is not a user of {origin}")
        room = await self._resident_room(room_id, fully_joined=handshake != "leave")
        await self._acl.check(origin, room_id)
        room_version = get_room_version(room.room_version)
        if handshake != "leave":
            _check_version_supported(room_version, supported_versions or ["1"])
        if handshake == "knock" and not room_version.knock_join_rule:
            raise _incompatible(room_version, "This room's version does not allow knocking")
        content: dict[str, Any] = {"membership": handshake}
        if handshake == "join":
            current = await self._state.current_state(room)
            authoriser = await self._authoriser(room, current, user_id)
            if authoriser is not None:
                content[_AUTHORISER] = authoriser
        draft = EventDraft(room_id, "m.room.member", user_id, content, state_key=user_id)
        try:
            # Built and checked like a local event (our signature lets the auth rules
            # see the authoriser's server signed); the template leaves signatures out.
            event = await self._pipeline.build(draft)
        except AuthError as refused:
            raise errors.forbidden(f"You cannot {handshake} this room: {refused.reason}") from None
        except InvalidEventError as invalid:
            raise errors.bad_json(f"Invalid membership event: {invalid}") from None
        except UnknownRoomError:
            raise errors.not_found("Unknown room") from None
        template = {
            key: value
            for key, value in event.pdu.items()
            if key not in ("hashes", "signatures", "unsigned")
        }
        template.setdefault("origin", self._server_name)
        return {"event": template, "room_version": room_version.identifier}

    # --- send_join, send_leave, send_knock -----------------------------------------

    async def send_join(
        self,
        origin: str,
        room_id: str,
        event_id: str,
        pdu: object,
        *,
        omit_members: bool = False,
    ) -> dict[str, Any]:
        """Accept ``origin``'s join into the room: the state before it and its auth
        chain as PDUs, the servers with joined members, and the event when we
        countersigned it (restricted joins).

        ``omit_members`` (a partial-state join, v2 only): ``state`` leaves out the
        ``m.room.member`` events but the joiner's own and, when the room has no name
        nor canonical alias, the heroes' (the joining server names the room from
        them); ``auth_chain`` leaves out the events already in ``state``, as the
        spec allows.
        spec: data/api/server-server/joins-v2.yaml (``omit_members``,
        ``members_omitted``, ``servers_in_room``)
        """
        room, room_version, checked_pdu = await self._incoming(origin, "join", room_id, pdu)
        signed_by_us = False
        content = checked_pdu["content"]
        authoriser = content.get(_AUTHORISER)
        if authoriser is not None and room_version.restricted_join_rule:
            checked_pdu = await self._countersign_join(room, room_version, checked_pdu)
            signed_by_us = True
        event = await self._accept(origin, room, room_version, checked_pdu, event_id)
        stored = (await self._events.get_events([event.event_id])).get(event.event_id, event)
        state_ids = await self._state.state_before(stored)
        state_events = list((await self._events.get_events(list(state_ids.values()))).values())
        servers = self._servers_in_room(state_events)
        if omit_members:
            state_events = await self._partial_join_state(room, stored, state_events)
        auth_chain = await self._auth_chain([*state_events, stored])
        if omit_members:
            returned = {state_event.event_id for state_event in state_events}
            auth_chain = [link for link in auth_chain if link.event_id not in returned]
        response: dict[str, Any] = {
            "origin": self._server_name,
            "state": pdus_of(state_events),
            "auth_chain": pdus_of(auth_chain),
            "members_omitted": omit_members,
            # Required only with members omitted; always sent, as Synapse does, so a
            # joiner can start its sending to the room without reading the members.
            "servers_in_room": servers,
        }
        if signed_by_us:
            response["event"] = federation_pdu(stored)
        return response

    async def send_leave(self, origin: str, room_id: str, event_id: str, pdu: object) -> None:
        """spec: data/api/server-server/leaving-v2.yaml"""
        room, room_version, checked_pdu = await self._incoming(origin, "leave", room_id, pdu)
        await self._accept(origin, room, room_version, checked_pdu, event_id)

    async def send_knock(
        self, origin: str, room_id: str, event_id: str, pdu: object
    ) -> dict[str, Any]:
        """The knock accepted: the room's stripped state as PDUs (``knock_room_state``).
        spec: data/api/server-server/knocks.yaml"""
        room, room_version, checked_pdu = await self._incoming(origin, "knock", room_id, pdu)
        if not room_version.knock_join_rule:
            raise _incompatible(room_version, "This room's version does not allow knocking")
        await self._accept(origin, room, room_version, checked_pdu, event_id)
        return {"knock_room_state": pdus_of(await stripped_state_events(self._state, room))}

    # --- invite --------------------------------------------------------------------

    async def invite(
        self, origin: str, room_id: str, event_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Countersign an invite of one of our users and keep it for their /sync.

        spec: data/api/server-server/invites-v2.yaml
        """
        version_id = body.get("room_version")
        if not isinstance(version_id, str):
            raise errors.missing_param("room_version")
        room_version = KNOWN_ROOM_VERSIONS.get(version_id)
        if room_version is None:
            raise errors.MatrixError(
                400,
                INCOMPATIBLE_ROOM_VERSION,
                "This server does not support that room version",
                room_version=version_id,
            )
        pdu = body.get("event")
        if not isinstance(pdu, dict):
            raise errors.missing_param("event")
        problem = _invite_problem(pdu, room_id, origin, self._server_name)
        if problem is not None:
            raise errors.invalid_param(f"Not an invite this server can accept: {problem}")
        await self._acl.check(origin, room_id)
        room = await self._state.room(room_id)
        if room is not None and room.room_version != version_id:
            # The event would be parsed and checked under rules the room does not
            # follow: refuse it as Synapse does.
            raise errors.MatrixError(
                400,
                INCOMPATIBLE_ROOM_VERSION,
                f"This server holds the room as version {room.room_version}",
                room_version=room.room_version,
            )
        invite_room_state = await checked_room_state(
            self._pdus,
            room_version,
            room_id,
            body.get("invite_room_state"),
            origin=origin,
            strict=room_version.hydra,
        )
        event = await self._check_pdu(room_version, pdu, origin, event_id)
        signed_pdu = countersign(event.pdu, self._server_name, self._signing_key, room_version)
        signed = Event(
            signed_pdu,
            room_version,
            event.event_id,
            canonical_json=validate_pdu(signed_pdu, room_version),
        )
        if (
            room is not None
            and room.current_state_group is not None
            and (await self._membership.server_in_room(room))
        ):
            results = await self._pipeline.path.receive(room_id, [signed], origin=origin)
            _raise_unless_accepted(results[0] if results else None)
        else:
            kept_pdu = {**signed_pdu, "unsigned": {"invite_room_state": invite_room_state}}
            kept = Event(kept_pdu, room_version, event.event_id)
            try:
                await self._invites.persist_outlier(room_id, version_id, kept)
            except InvalidRemoteState as invalid:
                # E.g. the room record changed version meanwhile: the sender's
                # mistake (or a race), never a 500.
                raise errors.bad_json(f"The invite cannot be kept: {invalid}") from None
        return {"event": signed_pdu}

    # --- the steps ---------------------------------------------------------------------

    async def _resident_room(self, room_id: str, *, fully_joined: bool) -> RoomRecord:
        """The room, if this server is in it (else 404: ask a server that is).

        ``fully_joined``: also 404 while our own join is partial (joins and knocks,
        whose answers need the member list we do not have yet); the joining server
        moves on to its next candidate, as with Synapse (the spec says nothing of a
        resident that is itself partially joined).
        spec: server-server-api.md#joining-rooms
        """
        room = await self._state.room(room_id)
        if (
            room is None
            or room.current_state_group is None
            or not await self._membership.server_in_room(room)
        ):
            raise errors.not_found("Unknown room")
        if fully_joined and await self._partial_state(room_id):
            raise errors.not_found(_NOT_FULLY_JOINED)
        return room

    def _servers_in_room(self, state_events: Sequence[Event]) -> list[str]:
        """The servers with joined members in ``state_events``, ours included (we
        answer as a resident), sorted.
        spec: data/api/server-server/joins-v2.yaml (``servers_in_room``)"""
        servers = {self._server_name}
        for state_event in state_events:
            if state_event.type != "m.room.member" or state_event.membership != "join":
                continue
            server = server_of(state_event.state_key or "")
            if server is not None:
                servers.add(server)
        return sorted(servers)

    async def _partial_join_state(
        self, room: RoomRecord, join: Event, state_events: Sequence[Event]
    ) -> list[Event]:
        """``state_events`` (the state before ``join``) without the member events a
        partial-state joiner can do without.

        Kept: the joiner's own membership (an invite or knock the join follows;
        Synapse keeps it too) and, in a room without a name or canonical alias,
        the heroes' memberships, so the joining server names the room as /sync
        would before it has the member list.
        spec: data/api/server-server/joins-v2.yaml (``omit_members``),
        data/api/client-server/sync.yaml (``m.heroes``)
        """
        joiner = join.state_key
        members = {
            state_event.state_key: state_event
            for state_event in state_events
            if state_event.type == "m.room.member" and isinstance(state_event.state_key, str)
        }
        kept = {joiner} if isinstance(joiner, str) else set()
        if not _is_named(state_events) and isinstance(joiner, str):
            kept.update(await self._heroes(room, joiner, members))
        return [
            state_event
            for state_event in state_events
            if state_event.type != "m.room.member" or state_event.state_key in kept
        ]

    async def _heroes(
        self, room: RoomRecord, joiner: str, members: Mapping[str, Event]
    ) -> list[str]:
        """Up to five joined or invited members other than ``joiner``: the room's
        ``m.heroes`` by /sync's rule (first by stream order) when we have its store.
        spec: data/api/client-server/sync.yaml (``m.heroes``)"""
        if self._summaries is not None:
            summaries = await self._summaries.get_room_summaries(
                [room.room_nid], exclude_user=joiner, heroes=_HEROES
            )
            summary = summaries.get(room.room_nid)
            return [] if summary is None else list(summary.heroes)
        candidates = [
            member
            for user_id, member in members.items()
            if user_id != joiner and member.membership in ("join", "invite")
        ]
        candidates.sort(key=lambda member: (member.depth, member.state_key or ""))
        return [member.state_key for member in candidates[:_HEROES] if member.state_key]

    async def _authoriser(
        self, room: RoomRecord, current: Mapping[StateKey, Event], user_id: str
    ) -> str | None:
        """Our member vouching for a restricted join, None when none is needed.
        spec: server-server-api.md#restricted-rooms"""
        existing = current.get(("m.room.member", user_id))
        if existing is not None and existing.membership in ("join", "invite"):
            return None
        try:
            return await self._membership.choose_join_authoriser(room, current, user_id)
        except RestrictedJoinRefused as refused:
            if refused.why == "no_authoriser":
                raise errors.MatrixError(
                    400, UNABLE_TO_GRANT_JOIN, "No user of this server can let you in"
                ) from None
            if refused.why == "rooms_unknown":
                raise errors.MatrixError(
                    400,
                    UNABLE_TO_AUTHORISE_JOIN,
                    "This server is in none of the rooms that grant access",
                ) from None
            raise errors.forbidden("You are not a member of a room that grants access") from None

    async def _incoming(
        self, origin: str, handshake: Handshake, room_id: str, pdu: object
    ) -> tuple[RoomRecord, RoomVersion, dict[str, Any]]:
        """The room, its version and the event sent to ``send_<handshake>``, once its
        shape is right (400 ``M_INVALID_PARAM`` otherwise, before any other work)."""
        if not isinstance(pdu, dict):
            raise errors.bad_json("The request body must be the event")
        problem = member_event_problem(
            pdu, room_id=room_id, membership=handshake, sender_server=origin
        )
        if problem is not None:
            raise errors.invalid_param(f"Not a {handshake} this server can accept: {problem}")
        room = await self._resident_room(room_id, fully_joined=handshake != "leave")
        await self._acl.check(origin, room_id)
        return room, get_room_version(room.room_version), pdu

    async def _countersign_join(
        self, room: RoomRecord, room_version: RoomVersion, pdu: dict[str, Any]
    ) -> dict[str, Any]:
        """Sign a restricted join our member vouches for, once we are sure the joiner
        meets the room's conditions (the auth rules only check the authoriser's
        power, so signing blindly would let anyone in through our members).
        spec: server-server-api.md#restricted-rooms"""
        authoriser = pdu["content"][_AUTHORISER]
        if not isinstance(authoriser, str) or server_of(authoriser) != self._server_name:
            raise errors.invalid_param("The join's authorising user is not a user of this server")
        # Raises unless the joiner meets the conditions; an invited (or joined) user
        # needs none, but a join naming an authoriser must carry our signature all
        # the same (auth rule 4.2), e.g. when the invite came after make_join.
        await self._authoriser(room, await self._state.current_state(room), pdu["sender"])
        return countersign(pdu, self._server_name, self._signing_key, room_version)

    async def _accept(
        self,
        origin: str,
        room: RoomRecord,
        room_version: RoomVersion,
        pdu: dict[str, Any],
        event_id: str,
    ) -> Event:
        """Check ``pdu`` and hand it to the event path; 403 if the auth rules refuse it."""
        event = await self._check_pdu(room_version, pdu, origin, event_id)
        if self._forwarder is not None:
            # Before it is persisted, and stored: the other servers in the room hear of
            # it from us (spec: server-server-api.md#joining-rooms, "The resident
            # server will then send the event to other servers in the room"), even if
            # we restart before the sender reads it.
            await self._forwarder.send_on_behalf_of(event.event_id, origin)
        results = await self._pipeline.path.receive(room.room_id, [event], origin=origin)
        result = next((r for r in results if r.event_id == event.event_id), None)
        _raise_unless_accepted(result)
        assert result is not None
        return result.event

    async def _check_pdu(
        self, room_version: RoomVersion, pdu: dict[str, Any], origin: str, event_id: str
    ) -> Event:
        try:
            event = await self._pdus.check(room_version, pdu, origin=origin)
        except InvalidPdu as invalid:
            raise errors.invalid_param(f"Invalid event: {invalid.reason}") from None
        if event.event_id != event_id:
            raise errors.invalid_param("The event ID in the path is not the event's")
        return event

    async def _auth_chain(self, events: Sequence[Event]) -> list[Event]:
        """Every event reachable from ``events`` through ``auth_events`` (not the
        events themselves unless another cites them), oldest first."""
        try:
            chain_ids = await self._graph.get_auth_chain_ids([e.event_id for e in events])
        except AuthChainTooLarge:
            # As /state and /event_auth answer (event_reads.py): the same limit, one error.
            raise errors.MatrixError(
                413, errors.Codes.TOO_LARGE, "The auth chain is too large to serve"
            ) from None
        chain = await self._events.get_events(sorted(chain_ids))
        return sorted(chain.values(), key=lambda event: (event.depth, event.event_id))


def _is_named(state_events: Sequence[Event]) -> bool:
    """Whether the room has a (non-empty) ``m.room.name`` or ``m.room.canonical_alias``:
    then clients name it from those, and no heroes are needed.
    spec: data/api/client-server/sync.yaml (``m.heroes``: "unset or empty")"""
    for state_event in state_events:
        if state_event.state_key != "":
            continue
        field = {"m.room.name": "name", "m.room.canonical_alias": "alias"}.get(state_event.type)
        value = None if field is None else state_event.content.get(field)
        if isinstance(value, str) and value:
            return True
    return False


def _check_version_supported(room_version: RoomVersion, supported: Sequence[str]) -> None:
    if room_version.identifier not in supported:
        raise _incompatible(room_version, "Your server does not support this room's version")


def _incompatible(room_version: RoomVersion, message: str) -> errors.MatrixError:
    return errors.MatrixError(
        400, INCOMPATIBLE_ROOM_VERSION, message, room_version=room_version.identifier
    )


def _invite_problem(
    pdu: Mapping[str, Any], room_id: str, origin: str, server_name: str
) -> str | None:
    """Why ``pdu`` is not an invite by a user of ``origin`` of one of our users.
    spec: data/api/server-server/invites-v2.yaml (the checks before signing)"""
    if pdu.get("type") != "m.room.member":
        return "the event is not an m.room.member event"
    if pdu.get("room_id") != room_id:
        return "the event is not in this room"
    content = pdu.get("content")
    if not isinstance(content, dict) or content.get("membership") != "invite":
        return "the event's membership is not invite"
    sender = pdu.get("sender")
    if not isinstance(sender, str) or server_of(sender) != origin:
        return f"the sender is not a user of {origin}"
    invitee = pdu.get("state_key")
    if not isinstance(invitee, str) or server_of(invitee) != server_name:
        return "the invitee is not a user of this server"
    return None


def _raise_unless_accepted(result: PathResult | None) -> None:
    """403 with the reason when the event path did not accept the event."""
    if result is None or result.outcome is None:
        reason = result.error if result is not None and result.error else "it could not be placed"
        raise errors.forbidden(f"The event was refused: {reason}")
    if not result.outcome.is_accepted:
        raise errors.forbidden(f"The event was refused: {result.outcome.reason}")
