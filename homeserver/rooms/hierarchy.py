"""The space hierarchy: a space's rooms, its subspaces and theirs, for one user.

The walk starts at the requested room and goes depth first through the valid
``m.space.child`` state events of each space (a ``via`` list of server names makes
a child valid), children in the spec's order: those with a valid ``order`` first,
by ``order``, then by the child event's ``origin_server_ts``, then by room ID.  When
a child is itself a space, its own children come right after it, before its next
sibling (only spaces have children here).  Each room is listed once even when
several spaces hold it, which also breaks loops; ``max_depth`` bounds how far from
the root the walk goes.

A room is listed when the requester may see it: they are joined or invited, or the
room is public, knockable, world readable, or restricted to members of a room they
are joined to.  Rooms they may not see are left out along with everything below
them.  The root itself must be visible, or the answer is 403 (also for rooms this
server does not know, so room IDs cannot be probed).

Pagination is stateless: ``next_batch`` holds the request's room, ``suggested_only``
and ``max_depth`` (a token used with others is refused with 400 ``M_INVALID_PARAM``)
and how many listed rooms came before; the next page walks again and skips those.
If the tree changes between pages a room may be skipped or repeated, as the spec
allows for a tree that changes.

Rooms this server does not know are skipped: their details would come from another
server over federation (``GET /_matrix/federation/v1/hierarchy``), which is not built
yet.

spec: client-server-api/modules/spaces.md (#discovering-rooms-within-spaces,
#ordering-of-children-within-a-space, #mspacechild),
data/api/client-server/space_hierarchy.yaml, definitions/room_summary.yaml
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.auth import join_rule_in
from homeserver.events.event import Event, StateKey
from homeserver.events.room_versions import RoomVersion, get_room_version
from homeserver.identifiers import is_valid_room_id
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.summary import SUMMARY_STATE, summarise_room
from homeserver.storage.events import RoomRecord
from homeserver.storage.timeline import TimelineStore
from homeserver.util.opaque_tokens import decode_array, encode_array, invalid_token

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
#: Default and ceiling of ``max_depth``.
MAX_DEPTH = 50

SPACE_CHILD = "m.space.child"
SPACE_ROOM_TYPE = "m.space"
_ENCRYPTION = ("m.room.encryption", "")
_RESTRICTED_RULES = frozenset({"restricted", "knock_restricted"})
#: A valid ``order``: 1-50 characters from \x20 (space) to \x7E (~).
_ORDER_RE = re.compile(r"[\x20-\x7E]{1,50}")
_MAX_OFFSET = 2**31 - 1


@attrs.frozen
class HierarchyToken:
    """Where a page of the walk starts, and the request it belongs to."""

    room_id: str
    suggested_only: bool
    max_depth: int
    #: How many listed rooms the earlier pages held.
    offset: int


def encode_token(token: HierarchyToken) -> str:
    return encode_array([token.room_id, token.suggested_only, token.max_depth, token.offset])


def decode_token(token: str) -> HierarchyToken:
    """The token's contents; 400 ``M_INVALID_PARAM`` if it is not one of ours."""
    invalid = invalid_token()
    payload = decode_array(token, 4)
    room_id, suggested_only, max_depth, offset = payload
    if (
        not isinstance(room_id, str)
        or type(suggested_only) is not bool
        or type(max_depth) is not int
        or type(offset) is not int
        or not 0 <= max_depth <= MAX_DEPTH
        or not 0 < offset <= _MAX_OFFSET
    ):
        raise invalid
    return HierarchyToken(room_id, suggested_only, max_depth, offset)


@attrs.frozen
class _RoomView:
    """What the walk needs of one local room's current state."""

    record: RoomRecord
    version: RoomVersion
    #: The summary state, the encryption event and the requester's member event.
    state: dict[StateKey, Event]
    #: Valid children in the spec's order (only for spaces; suggested only if asked).
    children: list[Event]

    @property
    def is_space(self) -> bool:
        create = self.state.get(("m.room.create", ""))
        return create is not None and create.content.get("type") == SPACE_ROOM_TYPE


class SpaceHierarchyHandler:
    def __init__(self, *, state: RoomStateReader, timeline: TimelineStore) -> None:
        self._state = state
        self._timeline = timeline

    async def hierarchy(
        self,
        requester: Requester,
        room_id: str,
        *,
        suggested_only: bool = False,
        max_depth: int | None = None,
        limit: int | None = None,
        from_token: str | None = None,
    ) -> dict[str, Any]:
        """A page of the tree under ``room_id``.  spec: #get_matrixclientv1roomsroomidhierarchy"""
        if limit is not None and limit < 1:
            raise errors.invalid_param("'limit' must be at least 1")
        if max_depth is not None and max_depth < 0:
            raise errors.invalid_param("'max_depth' must not be negative")
        page_size = min(limit if limit is not None else DEFAULT_LIMIT, MAX_LIMIT)
        depth_limit = min(max_depth if max_depth is not None else MAX_DEPTH, MAX_DEPTH)
        offset = 0
        if from_token is not None:
            token = decode_token(from_token)
            if (token.room_id, token.suggested_only, token.max_depth) != (
                room_id,
                suggested_only,
                depth_limit,
            ):
                raise errors.invalid_param(
                    "suggested_only and max_depth cannot change on paginated requests"
                )
            offset = token.offset
        user_id = requester.user_id
        # Depth first: a stack of (room ID, depth), children pushed in reverse order.
        stack: list[tuple[str, int]] = [(room_id, 0)]
        seen: set[str] = set()
        listed = 0
        rooms: list[dict[str, Any]] = []
        body: dict[str, Any] = {"rooms": rooms}
        while stack:
            current, depth = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            view = await self._view(current, user_id, suggested_only)
            if view is None or not await self._may_see(view, user_id):
                if current == room_id:
                    raise errors.forbidden("You are not allowed to view this room")
                continue
            if listed == offset + page_size:
                # A room beyond this page exists: say where the next page starts.
                body["next_batch"] = encode_token(
                    HierarchyToken(room_id, suggested_only, depth_limit, listed)
                )
                break
            if listed >= offset:
                rooms.append(await self._entry(view))
            listed += 1
            if view.is_space and depth < depth_limit:
                stack.extend(
                    (child.state_key or "", depth + 1) for child in reversed(view.children)
                )
        return body

    async def _view(self, room_id: str, user_id: str, suggested_only: bool) -> _RoomView | None:
        """The room's current state as far as the walk needs it; None if unknown here."""
        record = await self._state.room(room_id)
        if record is None:
            return None
        state_ids = await self._state.current_state_ids(record)
        if not state_ids:
            return None
        member = ("m.room.member", user_id)
        child_keys = [key for key in state_ids if key[0] == SPACE_CHILD]
        loaded = await self._state.events_for_state(
            state_ids, [*SUMMARY_STATE, _ENCRYPTION, member, *child_keys]
        )
        state = {key: event for key, event in loaded.items() if key[0] != SPACE_CHILD}
        view = _RoomView(record, get_room_version(record.room_version), state, [])
        if not view.is_space:
            return view
        children = [
            event
            for key, event in loaded.items()
            if key[0] == SPACE_CHILD
            and _is_valid_child(event)
            and (not suggested_only or event.content.get("suggested") is True)
        ]
        return attrs.evolve(view, children=sorted(children, key=_child_order))

    async def _may_see(self, view: _RoomView, user_id: str) -> bool:
        """spec: space_hierarchy.yaml (``rooms``: which rooms the server should return)"""
        member = view.state.get(("m.room.member", user_id))
        if member is not None and member.membership in ("join", "invite"):
            return True
        join_rule = join_rule_in(view.state)
        version = view.version
        if (
            join_rule == "public"
            or (join_rule == "knock" and version.knock_join_rule)
            or (join_rule == "knock_restricted" and version.knock_restricted_join_rule)
        ):
            return True
        if join_rule == "restricted" and version.restricted_join_rule:
            for allowed in _allowed_room_ids(view):
                record = await self._state.room(allowed)
                membership = (
                    None if record is None else await self._state.membership(record, user_id)
                )
                if membership is not None and membership.membership == "join":
                    return True
        return _history_visibility(view) == "world_readable"

    async def _entry(self, view: _RoomView) -> dict[str, Any]:
        """The room's summary plus its children (spec: SpaceHierarchyRoomsChunk)."""
        room_id = view.record.room_id
        joined = await self._timeline.count_joined_members(view.record.room_nid)
        summary = summarise_room(room_id, view.state, joined)
        entry: dict[str, Any] = {
            "room_id": room_id,
            "num_joined_members": joined,
            "world_readable": summary.history_visibility == "world_readable",
            "guest_can_join": summary.guest_access == "can_join",
            "join_rule": summary.join_rule,
            "room_version": view.record.room_version,
        }
        optional = {
            "name": summary.name,
            "topic": summary.topic,
            "avatar_url": summary.avatar_url,
            "canonical_alias": summary.canonical_alias,
            "room_type": summary.room_type,
        }
        entry.update({key: value for key, value in optional.items() if value is not None})
        encryption = view.state.get(_ENCRYPTION)
        algorithm = encryption.content.get("algorithm") if encryption is not None else None
        if isinstance(algorithm, str):
            entry["encryption"] = algorithm
        if summary.join_rule in _RESTRICTED_RULES:
            entry["allowed_room_ids"] = _allowed_room_ids(view)
        entry["children_state"] = [
            {
                "type": child.type,
                "state_key": child.state_key,
                "content": child.content,
                "sender": child.sender,
                "origin_server_ts": child.origin_server_ts,
            }
            for child in view.children
        ]
        return entry


def _is_valid_child(event: Event) -> bool:
    """A child needs a room ID state key and a non-empty ``via`` of server names."""
    via = event.content.get("via")
    return (
        event.state_key is not None
        and is_valid_room_id(event.state_key)
        and isinstance(via, list)
        and bool(via)
        and all(isinstance(server, str) for server in via)
    )


def _child_order(event: Event) -> tuple[int, str, int, str]:
    """spec: modules/spaces.md#ordering-of-children-within-a-space"""
    order = event.content.get("order")
    valid = isinstance(order, str) and _ORDER_RE.fullmatch(order) is not None
    return (
        0 if valid else 1,
        order if valid and isinstance(order, str) else "",
        event.origin_server_ts,
        event.state_key or "",
    )


def _history_visibility(view: _RoomView) -> str | None:
    event = view.state.get(("m.room.history_visibility", ""))
    value = event.content.get("history_visibility") if event is not None else None
    return value if isinstance(value, str) else None


def _allowed_room_ids(view: _RoomView) -> list[str]:
    """The rooms whose members may join (``m.room_membership`` conditions of ``allow``).

    spec: client-server-api/_index.md#restricted-rooms
    """
    event = view.state.get(("m.room.join_rules", ""))
    allow = event.content.get("allow") if event is not None else None
    rooms: list[str] = []
    for condition in allow if isinstance(allow, list) else []:
        if (
            isinstance(condition, dict)
            and condition.get("type") == "m.room_membership"
            and isinstance(condition.get("room_id"), str)
            and condition["room_id"] not in rooms
        ):
            rooms.append(condition["room_id"])
    return rooms
