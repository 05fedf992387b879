"""The asking side of the membership handshakes (implements
``homeserver.rooms.membership.RemoteMembership``).

A local user joining, leaving (rejecting an invite) or knocking on a room this
server is not in asks a resident server for a template (``make_*``), completes and
signs it, and sends it back (``send_*``); candidate servers are tried in order
until one succeeds or one gives an answer that settles it (a refusal the others
would repeat).  What comes back is hostile input: every PDU goes through the same
checks as any received event before the event path stores anything.

An invite of another server's user is countersigned by that server
(``PUT /v2/invite``) before we store and send it.

spec: server-server-api.md#joining-rooms, #restricted-rooms, #knocking-rooms,
#inviting-to-a-room, #leaving-rooms-rejecting-invites
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from federation.client.errors import FederationRequestError, FederationUnreachable
from federation.inbound.pdu_checks import InvalidPdu
from federation.keys.errors import KeyVerificationError
from federation.membership.pdus import (
    INCOMPATIBLE_ROOM_VERSION,
    UNABLE_TO_AUTHORISE_JOIN,
    UNABLE_TO_GRANT_JOIN,
    PduCheck,
    checked_room_state,
    federation_pdu,
    member_event_problem,
    pdus_of,
)
from federation.protocols import SignatureVerifier, server_of
from federation.yielding import default_reactor, yield_to_reactor
from homeserver import errors
from homeserver.clock import Clock
from homeserver.events.auth.membership import AUTHORISING_USER
from homeserver.events.errors import InvalidEventError
from homeserver.events.event import Event
from homeserver.events.hashing import reference_hashes
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import (
    KNOWN_ROOM_VERSIONS,
    EventFormat,
    RoomVersion,
)
from homeserver.events.signing import SigningKey, sign_event_and_compute_id
from homeserver.events.validation import validate_pdu
from homeserver.identifiers import is_valid_server_name
from homeserver.rooms.builder import MAX_DEPTH, new_v1_event_id
from homeserver.rooms.event_path import PathResult
from homeserver.rooms.pipeline import SentEvent
from homeserver.rooms.remote_events import InvalidRemoteState, RemoteState
from homeserver.storage.partial_state import PartialStateRoom

logger = logging.getLogger(__name__)

_V1 = "/_matrix/federation/v1"
_V2 = "/_matrix/federation/v2"
_AUTHORISER = AUTHORISING_USER
#: PDUs of a ``send_join`` answer checked at once (signatures: keyring lookups).
_CHECK_CONCURRENCY = 50
#: A ``send_join`` answer may be large (the whole state of a big room).
_SEND_JOIN_MAX_BYTES = 512 * 1024 * 1024
#: A ``make_*`` answer: one event template (64 KiB at most) and the room version.
_MAKE_MAX_BYTES = 256 * 1024
#: The answers that settle a handshake: other servers would refuse the same way.
#: 404 (room unknown there), 5xx and the restricted-join "ask someone else" codes
#: move on to the next server instead, as Synapse does.
_TRY_NEXT_CODES = frozenset({UNABLE_TO_AUTHORISE_JOIN, UNABLE_TO_GRANT_JOIN})

T = TypeVar("T")


class FederationJsonClient(Protocol):
    """``federation.client.http.FederationHttpClient``."""

    async def get_json(
        self,
        destination: str,
        path: str,
        *,
        args: Mapping[str, str | Sequence[str]] | None = None,
        max_size: int = ...,
    ) -> Any: ...

    async def put_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        args: Mapping[str, str | Sequence[str]] | None = None,
        max_size: int = ...,
    ) -> Any: ...


class RemoteRoomStore(Protocol):
    """The event path's entries for rooms joined or touched through another server
    (``homeserver.rooms.event_path.EventPath``)."""

    async def persist_joined_room(
        self,
        room_id: str,
        room_version: str,
        join_event: Event,
        state: RemoteState,
        *,
        partial: PartialStateRoom | None = None,
    ) -> PathResult: ...

    async def persist_outlier(
        self, room_id: str, room_version: str, event: Event
    ) -> PathResult: ...


class BadResponse(Exception):
    """A server's answer cannot be used (malformed, or not what was asked for)."""


class RemoteMembershipClient:
    def __init__(
        self,
        *,
        server_name: str,
        signing_key: SigningKey,
        clock: Clock,
        client: FederationJsonClient,
        pdus: PduCheck,
        keyring: SignatureVerifier,
        rooms: RemoteRoomStore,
        reactor: IReactorTime | None = None,
        partial_state_joins: bool = False,
    ) -> None:
        """``partial_state_joins``: ask for the state without its membership events
        (``omit_members``); ``on_partial_join`` callbacks then hear each room joined
        so, to fetch the rest."""
        self._reactor = default_reactor() if reactor is None else reactor
        self._partial_state_joins = partial_state_joins
        self.on_partial_join: list[Callable[[PartialStateRoom], None]] = []
        self._server_name = server_name
        self._signing_key = signing_key
        self._clock = clock
        self._client = client
        self._pdus = pdus
        self._keyring = keyring
        self._rooms = rooms

    # --- RemoteMembership ----------------------------------------------------------

    async def join(
        self, room_id: str, user_id: str, servers: Sequence[str], content: Mapping[str, Any]
    ) -> SentEvent:
        """spec: server-server-api.md#joining-rooms, data/api/server-server/joins-v2.yaml

        With partial-state joins on, the resident may answer without the room's
        membership events (``members_omitted``): the room is stored as partial, the
        join returns, and ``on_partial_join`` callbacks fetch the rest."""

        async def through(server: str) -> SentEvent:
            template, room_version = await self._make(server, "join", room_id, user_id)
            event = self._complete(template, room_version, "join", content)
            response = await self._client.put_json(
                server,
                f"{_V2}/send_join/{_q(room_id)}/{_q(event.event_id)}",
                federation_pdu(event),
                args={"omit_members": "true"} if self._partial_state_joins else None,
                max_size=_SEND_JOIN_MAX_BYTES,
            )
            join_event, state = await self._send_join_answer(server, room_version, event, response)
            partial = self._partial_join(server, join_event, response)
            result = await self._rooms.persist_joined_room(
                room_id, room_version.identifier, join_event, state, partial=partial
            )
            if partial is not None and not result.duplicate:
                for callback in self.on_partial_join:
                    callback(partial)
            return _sent(result)

        return await self._through_any(self._candidates(room_id, servers), "join", through)

    async def leave(
        self,
        room_id: str,
        user_id: str,
        servers: Sequence[str],
        content: Mapping[str, Any],
        *,
        held: Event | None = None,
    ) -> SentEvent:
        """Reject an invite (or retract a knock) of a room we are not in.

        When no server takes the rejection (the inviter's server is gone, say), the
        invite or knock ``held`` is rejected here only: a leave of our own citing it,
        kept like it, so the user is rid of it (as Synapse does); the room's servers
        never hear of it.
        spec: server-server-api.md#leaving-rooms-rejecting-invites
        """
        try:
            return await self._leave_through(room_id, user_id, servers, content)
        except errors.MatrixError as failed:
            if held is None:
                raise
            logger.info("rejecting %s in %s here only: %s", held.event_id, room_id, failed)
        event = self._out_of_band_leave(held, content)
        return _sent(
            await self._rooms.persist_outlier(room_id, held.room_version.identifier, event)
        )

    async def _leave_through(
        self, room_id: str, user_id: str, servers: Sequence[str], content: Mapping[str, Any]
    ) -> SentEvent:

        async def through(server: str) -> SentEvent:
            template, room_version = await self._make(server, "leave", room_id, user_id)
            event = self._complete(template, room_version, "leave", content)
            await self._client.put_json(
                server,
                f"{_V2}/send_leave/{_q(room_id)}/{_q(event.event_id)}",
                federation_pdu(event),
            )
            return _sent(await self._rooms.persist_outlier(room_id, room_version.identifier, event))

        return await self._through_any(self._candidates(room_id, servers), "leave", through)

    async def knock(
        self, room_id: str, user_id: str, servers: Sequence[str], content: Mapping[str, Any]
    ) -> SentEvent:
        """spec: server-server-api.md#knocking-rooms, data/api/server-server/knocks.yaml"""

        async def through(server: str) -> SentEvent:
            template, room_version = await self._make(server, "knock", room_id, user_id)
            event = self._complete(template, room_version, "knock", content)
            response = await self._client.put_json(
                server,
                f"{_V1}/send_knock/{_q(room_id)}/{_q(event.event_id)}",
                federation_pdu(event),
            )
            if not isinstance(response, dict):
                raise BadResponse("send_knock answer is not an object")
            knock_room_state = await checked_room_state(
                self._pdus,
                room_version,
                room_id,
                response.get("knock_room_state"),
                origin=server,
                # As for invites (serving.py): full PDUs are required from v12 on.
                strict=room_version.hydra,
            )
            kept = Event(
                {**event.pdu, "unsigned": {"knock_room_state": knock_room_state}},
                room_version,
                event.event_id,
            )
            return _sent(await self._rooms.persist_outlier(room_id, room_version.identifier, kept))

        return await self._through_any(self._candidates(room_id, servers), "knock", through)

    async def invite(
        self, room_version: RoomVersion, invite_event: Event, invite_room_state: Sequence[Event]
    ) -> Event:
        """``invite_event`` with the invitee's server's signature added.

        spec: server-server-api.md#inviting-to-a-room, data/api/server-server/invites-v2.yaml
        """
        invitee = invite_event.state_key or ""
        destination = server_of(invitee)
        if destination is None:
            raise errors.invalid_param(f"{invitee!r} is not a user ID")
        body = {
            "room_version": room_version.identifier,
            "event": federation_pdu(invite_event),
            "invite_room_state": pdus_of(invite_room_state),
        }
        path = f"{_V2}/invite/{_q(invite_event.room_id)}/{_q(invite_event.event_id)}"
        try:
            try:
                response = await self._client.put_json(destination, path, body)
            except FederationRequestError as refused:
                if not _v1_invite_applies(room_version, refused):
                    raise
                try:
                    response = await self._invite_v1(destination, invite_event, invite_room_state)
                except BadResponse as bad:
                    raise _unreachable(
                        f"{destination} answered the invite wrongly: {bad}"
                    ) from None
        except FederationRequestError as refused:
            reason = refused.error or refused.errcode or f"status {refused.status}"
            raise errors.forbidden(f"{destination} refused the invite: {reason}") from None
        except FederationUnreachable as unreachable:
            raise _unreachable(f"Could not reach {destination}: {unreachable.reason}") from None
        try:
            return await self._countersigned(destination, room_version, invite_event, response)
        except BadResponse as bad:
            raise _unreachable(f"{destination} answered the invite wrongly: {bad}") from None

    async def _invite_v1(
        self, destination: str, invite_event: Event, invite_room_state: Sequence[Event]
    ) -> object:
        """``PUT /v1/invite`` for a server without v2, which serves only room versions
        1 and 2: the event carries the stripped state in ``unsigned``; the answer is
        ``[200, {"event": ...}]``.  spec: data/api/server-server/invites-v1.yaml"""
        pdu = federation_pdu(invite_event)
        pdu["unsigned"] = {
            **pdu.get("unsigned", {}),
            "invite_room_state": pdus_of(invite_room_state),
        }
        path = f"{_V1}/invite/{_q(invite_event.room_id)}/{_q(invite_event.event_id)}"
        answer = await self._client.put_json(destination, path, pdu)
        if not isinstance(answer, list) or len(answer) != 2 or not isinstance(answer[1], dict):
            raise BadResponse("the v1 invite answer is not [200, {...}]")
        return answer[1]

    # --- the steps -------------------------------------------------------------------

    def _out_of_band_leave(self, held: Event, content: Mapping[str, Any]) -> Event:
        """Our leave citing ``held`` (an invite or knock of ours): its prev event and,
        with held's own auth events, its auth events."""
        room_version = held.room_version
        user_id = held.state_key or ""
        pdu: dict[str, Any] = {
            "type": "m.room.member",
            "room_id": held.room_id,
            "sender": user_id,
            "state_key": user_id,
            "content": {**content, "membership": "leave"},
            "depth": min(held.depth + 1, MAX_DEPTH),
            "origin_server_ts": self._clock.time_msec(),
        }
        if room_version.event_format is EventFormat.V1:
            itself = [held.event_id, reference_hashes(held.pdu, room_version)]
            pdu["prev_events"] = [itself]
            pdu["auth_events"] = [*held.pdu.get("auth_events", []), itself]
            pdu["event_id"] = new_v1_event_id(self._server_name)
            pdu["origin"] = self._server_name
        else:
            pdu["prev_events"] = [held.event_id]
            pdu["auth_events"] = [*held.auth_event_ids, held.event_id]
        event_id = sign_event_and_compute_id(
            pdu, self._server_name, self._signing_key, room_version
        )
        return Event(pdu, room_version, event_id, canonical_json=validate_pdu(pdu, room_version))

    def _candidates(self, room_id: str, servers: Sequence[str]) -> list[str]:
        """``servers``, then the room ID's server (rooms before v12 name the server that
        created them, often still in the room); never ourselves."""
        candidates = list(servers)
        _, colon, room_server = room_id.partition(":")
        if colon and room_server:
            candidates.append(room_server)
        return [s for s in dict.fromkeys(candidates) if s and s != self._server_name]

    async def _through_any(
        self, candidates: Sequence[str], handshake: str, attempt: Callable[[str], Awaitable[T]]
    ) -> T:
        """``attempt`` through each candidate until one succeeds; the client's error
        when one refuses for good or all fail."""
        if not candidates:
            raise errors.not_found("No known servers for this room")
        failures: list[str] = []
        last_refusal: FederationRequestError | None = None
        for server in candidates:
            try:
                return await attempt(server)
            except FederationRequestError as refused:
                if _settles(refused):
                    raise _client_error(handshake, refused) from None
                last_refusal = refused
                failures.append(str(refused))
            except FederationUnreachable as unreachable:
                failures.append(str(unreachable))
            except (BadResponse, InvalidRemoteState) as bad:
                failures.append(f"{server}: {bad}")
            logger.info("%s through %s failed: %s", handshake, server, failures[-1])
        if last_refusal is not None and last_refusal.status == 404:
            raise errors.not_found(f"No server could {handshake} this room: {'; '.join(failures)}")
        raise _unreachable(f"Could not {handshake} through any server: {'; '.join(failures)}")

    async def _make(
        self, server: str, handshake: str, room_id: str, user_id: str
    ) -> tuple[dict[str, Any], RoomVersion]:
        """The template ``server`` offers and the room's version."""
        args = {"ver": sorted(KNOWN_ROOM_VERSIONS)} if handshake != "leave" else None
        response = await self._client.get_json(
            server,
            f"{_V1}/make_{handshake}/{_q(room_id)}/{_q(user_id)}",
            args=args,
            max_size=_MAKE_MAX_BYTES,
        )
        if not isinstance(response, dict) or not isinstance(response.get("event"), dict):
            raise BadResponse(f"make_{handshake} answer has no event")
        # joins-v1.yaml: without room_version, the room is of version 1 or 2 (same format).
        version_id = response.get("room_version", "1")
        room_version = KNOWN_ROOM_VERSIONS.get(version_id) if isinstance(version_id, str) else None
        if room_version is None:
            raise BadResponse(f"make_{handshake} answer names an unknown room version")
        template: dict[str, Any] = response["event"]
        problem = member_event_problem(
            template, room_id=room_id, membership=handshake, sender_server=self._server_name
        )
        if problem is None and template.get("sender") != user_id:
            problem = "the event is for another user"
        if problem is not None:
            raise BadResponse(f"make_{handshake} template refused: {problem}")
        return template, room_version

    def _complete(
        self,
        template: Mapping[str, Any],
        room_version: RoomVersion,
        handshake: str,
        content: Mapping[str, Any],
    ) -> Event:
        """Our event from ``template``: its graph position, our content, timestamp and
        (v1/v2) event ID; hashed and signed.  spec: server-server-api.md#joining-rooms
        ("add or replace the origin, origin_server_ts, and event_id")"""
        pdu: dict[str, Any] = {
            key: template[key]
            for key in (
                "type",
                "room_id",
                "sender",
                "state_key",
                "prev_events",
                "auth_events",
                "depth",
            )
            if key in template
        }
        event_content = {**content, "membership": handshake}
        event_content.pop(_AUTHORISER, None)
        authoriser = template["content"].get(_AUTHORISER)
        if handshake == "join" and isinstance(authoriser, str):
            # The resident chose who vouches for a restricted join; it signs for it.
            event_content[_AUTHORISER] = authoriser
        pdu["content"] = event_content
        pdu["origin_server_ts"] = self._clock.time_msec()
        if room_version.event_format is EventFormat.V1:
            pdu["event_id"] = new_v1_event_id(self._server_name)
            pdu["origin"] = self._server_name
        try:
            event_id = sign_event_and_compute_id(
                pdu, self._server_name, self._signing_key, room_version
            )
            canonical_json = validate_pdu(pdu, room_version)
        except InvalidEventError as invalid:
            raise BadResponse(f"the template does not make a valid event: {invalid}") from None
        return Event(pdu, room_version, event_id, canonical_json=canonical_json)

    async def _send_join_answer(
        self, server: str, room_version: RoomVersion, ours: Event, response: object
    ) -> tuple[Event, RemoteState]:
        """The join to store (the resident's countersigned copy when it sent one) and
        the room state before it, every PDU checked (bad ones are dropped: the event
        path refuses the state if what remains is not enough)."""
        if not isinstance(response, dict):
            raise BadResponse("send_join answer is not an object")
        state_pdus, chain_pdus = response.get("state"), response.get("auth_chain")
        if not isinstance(state_pdus, list) or not isinstance(chain_pdus, list):
            raise BadResponse("send_join answer lacks state or auth_chain")
        state = await self._checked(server, room_version, state_pdus)
        auth_chain = await self._checked(server, room_version, chain_pdus)
        join_event = ours
        returned = response.get("event")
        if isinstance(returned, dict):
            try:
                checked = await self._pdus.check(room_version, returned, origin=server)
            except InvalidPdu as invalid:
                raise BadResponse(f"the join it returned is invalid: {invalid.reason}") from None
            if checked.event_id != ours.event_id or _unsigned_part(checked.pdu) != _unsigned_part(
                ours.pdu
            ):
                raise BadResponse("the join it returned is not ours")
            join_event = checked
        return join_event, RemoteState(state=state, auth_chain=auth_chain)

    def _partial_join(
        self, server: str, join_event: Event, response: Any
    ) -> PartialStateRoom | None:
        """The partial-state record of a join whose answer left members out; None
        when the state is whole.  ``servers_in_room`` is required then: without it
        our events would reach only the servers of the members we were shown.
        spec: data/api/server-server/joins-v2.yaml (members_omitted, servers_in_room)"""
        if response.get("members_omitted") is not True:
            return None
        listed = response.get("servers_in_room")
        if not isinstance(listed, list):
            raise BadResponse("members were omitted but servers_in_room is missing")
        servers = {s for s in listed if isinstance(s, str) and is_valid_server_name(s)}
        servers.add(server)
        servers.discard(self._server_name)
        return PartialStateRoom(
            room_id=join_event.room_id,
            join_event_id=join_event.event_id,
            joined_via=server,
            servers_in_room=frozenset(servers),
        )

    async def _checked(
        self, server: str, room_version: RoomVersion, pdus: Sequence[object]
    ) -> list[Event]:
        """The valid events among ``pdus`` (checked ``_CHECK_CONCURRENCY`` at a time)."""
        valid: list[Event] = []
        for start in range(0, len(pdus), _CHECK_CONCURRENCY):
            batch = [
                defer.ensureDeferred(self._check_one(server, room_version, pdu))
                for pdu in pdus[start : start + _CHECK_CONCURRENCY]
            ]
            for checked in await defer.gatherResults(batch, consumeErrors=True):
                if checked is not None:
                    valid.append(checked)
            # With cached keys a batch completes without waiting: let others run.
            await yield_to_reactor(self._reactor)
        return valid

    async def _check_one(self, server: str, room_version: RoomVersion, pdu: object) -> Event | None:
        if not isinstance(pdu, dict):
            return None
        try:
            return await self._pdus.check(room_version, pdu, origin=server)
        except InvalidPdu as invalid:
            logger.info("dropped an event %s sent at a join: %s", server, invalid.reason)
            return None
        except defer.CancelledError:
            raise
        except Exception:
            # Not the event's fault (the keyring or the database failed): unusable now,
            # and the state check decides whether the rest is enough.
            logger.exception("checking an event %s sent at a join failed", server)
            return None

    async def _countersigned(
        self, destination: str, room_version: RoomVersion, ours: Event, response: object
    ) -> Event:
        """Our invite with ``destination``'s signature from ``response`` added, once we
        know it signed exactly our event."""
        returned = response.get("event") if isinstance(response, dict) else None
        if not isinstance(returned, dict):
            raise BadResponse("no event in the answer")
        if _unsigned_part(returned) != _unsigned_part(ours.pdu):
            raise BadResponse("the event it signed is not ours")
        signatures = returned.get("signatures")
        theirs = signatures.get(destination) if isinstance(signatures, dict) else None
        if not isinstance(theirs, dict) or not theirs:
            raise BadResponse("the event is not signed by it")
        pdu = {**ours.pdu, "signatures": {**ours.pdu.get("signatures", {}), destination: theirs}}
        pdu.pop("unsigned", None)
        valid_at = ours.origin_server_ts if room_version.enforce_key_validity else 0
        try:
            await self._keyring.verify_json_for_server(
                destination, prune_event_dict(pdu, room_version), valid_at
            )
        except KeyVerificationError as error:
            raise BadResponse(f"its signature does not verify: {error.reason}") from None
        try:
            canonical_json = validate_pdu(pdu, room_version)
        except InvalidEventError as invalid:
            raise BadResponse(f"the signed event is invalid: {invalid}") from None
        return Event(pdu, room_version, ours.event_id, canonical_json=canonical_json)


def _v1_invite_applies(room_version: RoomVersion, refused: FederationRequestError) -> bool:
    """Whether a refused ``/v2/invite`` may be retried as v1: the server does not know
    the endpoint, and the room is of a version a v1-only server can hold (1 or 2).
    spec: data/api/server-server/invites-v1.yaml"""
    unknown_endpoint = refused.status == 404 or (
        refused.status in (400, 405) and refused.errcode == errors.Codes.UNRECOGNIZED
    )
    return unknown_endpoint and room_version.identifier in ("1", "2")


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _unsigned_part(pdu: Mapping[str, Any]) -> dict[str, Any]:
    """What the signatures cover and more: everything but signatures and unsigned."""
    return {key: value for key, value in pdu.items() if key not in ("signatures", "unsigned")}


def _sent(result: PathResult) -> SentEvent:
    return SentEvent(result.event, result.stream_ordering or 0)


def _settles(refused: FederationRequestError) -> bool:
    """Whether a refusal ends the handshake (Synapse's rule: client errors do, except
    "try elsewhere" ones; a 404 says only that this server does not know the room)."""
    if refused.status == 404 or refused.status == 429:
        return False
    if refused.errcode in _TRY_NEXT_CODES:
        return False
    return 400 <= refused.status < 500


def _client_error(handshake: str, refused: FederationRequestError) -> errors.MatrixError:
    """A remote refusal as the client's answer: its status and reason, except for
    M_INVALID_PARAM/M_MISSING_PARAM, which mean the servers disagree (not the
    client's fault).  spec: data/api/server-server/joins-v2.yaml (400)"""
    reason = refused.error or refused.errcode or f"status {refused.status}"
    message = f"{refused.destination} refused the {handshake}: {reason}"
    if refused.errcode in (errors.Codes.INVALID_PARAM, errors.Codes.MISSING_PARAM):
        return _unreachable(message)
    extra: dict[str, Any] = {}
    body = refused.body
    if refused.errcode == INCOMPATIBLE_ROOM_VERSION and isinstance(body, dict):
        version = body.get("room_version")
        if isinstance(version, str):
            extra["room_version"] = version
    return errors.MatrixError(
        refused.status, refused.errcode or errors.Codes.FORBIDDEN, message, **extra
    )


def _unreachable(message: str) -> errors.MatrixError:
    return errors.MatrixError(502, errors.Codes.UNKNOWN, message)
