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

Rooms this server does not know (or holds no state of) are asked of other servers
through a :class:`RemoteHierarchy` (federation: ``GET /_matrix/federation/v1/
hierarchy``), handed over once federation is built: a child through the servers of
its ``via``, the requested room through the server its ID names.  One answer covers
a room and the summaries of its children, so a remote space costs one request; a
walk makes at most :data:`MAX_REMOTE_REQUESTS`, within an overall budget of time and
server attempts that the remote side keeps per walk (:meth:`RemoteHierarchy.walk`:
once spent, the rooms still unknown are skipped), so a page never waits on
unreachable servers for longer than that budget.  Remote rooms are listed when the
requester may see them by what the answer says: public, knockable or world
readable, or restricted to a room the requester is joined to here.  Without
federation such rooms are skipped.

Other servers ask this one the same (:meth:`SpaceHierarchyHandler.server_hierarchy`):
a room and its children that the asking server may see — open to everyone, or the
asking server has a member in the room or, for restricted rooms, in an allowed room.

spec: client-server-api/modules/spaces.md (#discovering-rooms-within-spaces,
#ordering-of-children-within-a-space, #mspacechild),
data/api/client-server/space_hierarchy.yaml, definitions/room_summary.yaml,
server-server-api.md#spaces (data/api/server-server/space_hierarchy.yaml)
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

import attrs

from homeserver import errors
from homeserver.auth.tokens import Requester
from homeserver.events.auth import join_rule_in
from homeserver.events.event import Event, StateKey
from homeserver.events.room_versions import RoomVersion, get_room_version
from homeserver.identifiers import is_valid_room_id, is_valid_server_name
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
#: Most requests to other servers one page of the walk makes.
MAX_REMOTE_REQUESTS = 50
#: Join rules that let anyone see a room's summary (with the room version allowing them).
_OPEN_RULES = frozenset({"public", "knock", "knock_restricted"})


@attrs.frozen
class RemoteSpace:
    """What another server said of a room and its children, already checked
    (federation/queries/hierarchy.py): each summary has the keys of the spec's
    ``SpaceHierarchyRoomsChunk`` with the right types (``children_state`` may be
    missing from the children's)."""

    room: dict[str, Any]
    #: Room ID -> summary, for the children the asked server may show us.
    children: dict[str, dict[str, Any]]
    inaccessible_children: frozenset[str]


class RemoteSpaceSource(Protocol):
    """Other servers asked during one walk, within that walk's budget."""

    async def get_remote_space(
        self, room_id: str, via: Sequence[str], *, suggested_only: bool
    ) -> RemoteSpace | None:
        """The room as one of the ``via`` servers tells it; None if none of them
        answers usefully (or the walk's budget is spent)."""


class RemoteHierarchy(Protocol):
    """Other servers' rooms (federation/queries: ``/hierarchy/{roomId}``)."""

    def walk(self) -> RemoteSpaceSource:
        """A source for one walk: its requests share one budget of time and server
        attempts, counted from now."""


class JoinedServers(Protocol):
    """The servers with members joined to a room."""

    async def get_joined_servers(self, room_id: str) -> Collection[str]: ...


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
        #: Rooms of other servers; None: this server does not federate.
        self._remote: RemoteHierarchy | None = None

    def use_remote_hierarchy(self, remote: RemoteHierarchy) -> None:
        """Ask other servers about rooms this one does not know, through ``remote``
        (federation is built after the homeserver's handlers: federation/assembly.py
        calls this)."""
        self._remote = remote

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
        # Depth first: a stack of (room ID, depth, via), children pushed in reverse order.
        stack: list[tuple[str, int, tuple[str, ...]]] = [(room_id, 0, _servers_named_by(room_id))]
        seen: set[str] = set()
        remote = _RemoteRooms(self._remote, suggested_only)
        listed = 0
        rooms: list[dict[str, Any]] = []
        body: dict[str, Any] = {"rooms": rooms}
        while stack:
            current, depth, via = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            view = await self._view(current, user_id, suggested_only)
            remote_entry = None
            if view is None:
                remote_entry = await remote.entry(current, via, want_children=depth < depth_limit)
            if (view is None or not await self._may_see(view, user_id)) and (
                remote_entry is None or not await self._may_see_remote(remote_entry, user_id)
            ):
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
                rooms.append(
                    await self._entry(view)
                    if view is not None
                    else {"children_state": [], **(remote_entry or {})}
                )
            listed += 1
            if depth >= depth_limit:
                continue
            if view is not None and view.is_space:
                children = [(child.state_key or "", _via(child.content)) for child in view.children]
            elif remote_entry is not None and remote_entry.get("room_type") == SPACE_ROOM_TYPE:
                children = _remote_children(remote_entry, suggested_only)
            else:
                children = []
            stack.extend((child, depth + 1, child_via) for child, child_via in reversed(children))
        return body

    async def server_hierarchy(
        self,
        origin: str,
        room_id: str,
        *,
        suggested_only: bool,
        joined_servers: JoinedServers,
    ) -> dict[str, Any]:
        """The room and its children as server ``origin`` may see them; 404
        ``M_NOT_FOUND`` if it may not see the room or it is unknown here.

        spec: server-server-api.md#get_matrixfederationv1hierarchyroomid
        """
        view = await self._view(room_id, "", suggested_only)
        if view is None or not await self._server_may_see(view, origin, joined_servers):
            raise errors.not_found("Unknown room")
        children: list[dict[str, Any]] = []
        inaccessible: list[str] = []
        for child in view.children if view.is_space else []:
            child_id = child.state_key or ""
            child_view = await self._view(child_id, "", False)
            if child_view is None:
                continue  # not ours to tell: the asking server asks its ``via``
            if await self._server_may_see(child_view, origin, joined_servers):
                children.append(await self._entry(child_view))
            else:
                inaccessible.append(child_id)
        return {
            "room": await self._entry(view),
            "children": children,
            "inaccessible_children": inaccessible,
        }

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
        if _open_to_all(view):
            return True
        if _is_restricted(view):
            for allowed in _allowed_room_ids(view):
                if await self._is_joined_here(allowed, user_id):
                    return True
        return False

    async def _may_see_remote(self, entry: Mapping[str, Any], user_id: str) -> bool:
        """Whether the requester may see a room of another server, by its summary."""
        if entry.get("world_readable") is True or entry.get("join_rule") in _OPEN_RULES:
            return True
        room_id = entry.get("room_id")
        record = await self._state.room(room_id) if isinstance(room_id, str) else None
        membership = None if record is None else await self._state.membership(record, user_id)
        if membership is not None and membership.membership in ("join", "invite"):
            return True
        if entry.get("join_rule") == "restricted":
            for allowed in entry.get("allowed_room_ids") or []:
                if await self._is_joined_here(allowed, user_id):
                    return True
        return False

    async def _server_may_see(
        self, view: _RoomView, origin: str, joined_servers: JoinedServers
    ) -> bool:
        """Whether server ``origin`` may see a room of ours (as Synapse decides: open
        to all, or ``origin`` has a member in it or, for a restricted room, in one of
        the rooms whose members may join)."""
        if _open_to_all(view):
            return True
        if origin in await joined_servers.get_joined_servers(view.record.room_id):
            return True
        if _is_restricted(view):
            for allowed in _allowed_room_ids(view):
                if origin in await joined_servers.get_joined_servers(allowed):
                    return True
        return False

    async def _is_joined_here(self, room_id: str, user_id: str) -> bool:
        record = await self._state.room(room_id)
        membership = None if record is None else await self._state.membership(record, user_id)
        return membership is not None and membership.membership == "join"

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


class _RemoteRooms:
    """What other servers said during one walk: each remote space is asked once,
    and its answer's child summaries serve for the children."""

    def __init__(self, remote: RemoteHierarchy | None, suggested_only: bool) -> None:
        self._remote = remote.walk() if remote is not None else None
        self._suggested_only = suggested_only
        self._entries: dict[str, dict[str, Any]] = {}
        self._inaccessible: set[str] = set()
        self._requests_left = MAX_REMOTE_REQUESTS

    async def entry(
        self, room_id: str, via: Sequence[str], *, want_children: bool
    ) -> dict[str, Any] | None:
        """The room's summary (with ``children_state`` if it is a space whose
        children are wanted); None if no server tells it or it is inaccessible."""
        if room_id in self._inaccessible:
            return None
        entry = self._entries.get(room_id)
        complete = entry is not None and (
            not want_children
            or entry.get("room_type") != SPACE_ROOM_TYPE
            or "children_state" in entry
        )
        if complete or self._remote is None or not via or self._requests_left <= 0:
            return entry
        self._requests_left -= 1
        space = await self._remote.get_remote_space(
            room_id, via, suggested_only=self._suggested_only
        )
        if space is None:
            return entry
        for child_id, child in space.children.items():
            self._entries.setdefault(child_id, child)
        self._inaccessible.update(space.inaccessible_children)
        self._entries[room_id] = space.room
        return space.room


def _servers_named_by(room_id: str) -> tuple[str, ...]:
    """The server in a room ID (versions before 12 have one): the one to ask about a
    room this server does not know."""
    domain = room_id.partition(":")[2]
    return (domain,) if is_valid_server_name(domain) else ()


def _via(content: Mapping[str, Any]) -> tuple[str, ...]:
    via = content.get("via")
    return (
        tuple(server for server in via if isinstance(server, str)) if isinstance(via, list) else ()
    )


def _remote_children(
    entry: Mapping[str, Any], suggested_only: bool
) -> list[tuple[str, tuple[str, ...]]]:
    """The valid children of a remote space's ``children_state``, in the spec's order."""
    children = [
        child
        for child in entry.get("children_state") or []
        if child.get("type") == SPACE_CHILD
        and _is_valid_child_of(child.get("state_key"), child.get("content"))
        and (not suggested_only or child["content"].get("suggested") is True)
    ]
    children.sort(
        key=lambda child: _order_key(
            child["content"], child.get("origin_server_ts", 0), child["state_key"]
        )
    )
    return [(child["state_key"], _via(child["content"])) for child in children]


def _is_valid_child(event: Event) -> bool:
    return _is_valid_child_of(event.state_key, event.content)


def _is_valid_child_of(state_key: object, content: object) -> bool:
    """A child needs a room ID state key and a non-empty ``via`` of server names."""
    via = content.get("via") if isinstance(content, Mapping) else None
    return (
        isinstance(state_key, str)
        and is_valid_room_id(state_key)
        and isinstance(via, list)
        and bool(via)
        and all(isinstance(server, str) for server in via)
    )


def _child_order(event: Event) -> tuple[int, str, int, str]:
    return _order_key(event.content, event.origin_server_ts, event.state_key or "")


def _order_key(
    content: Mapping[str, Any], origin_server_ts: int, state_key: str
) -> tuple[int, str, int, str]:
    """spec: modules/spaces.md#ordering-of-children-within-a-space"""
    order = content.get("order")
    valid = isinstance(order, str) and _ORDER_RE.fullmatch(order) is not None
    return (
        0 if valid else 1,
        order if valid and isinstance(order, str) else "",
        origin_server_ts,
        state_key,
    )


def _open_to_all(view: _RoomView) -> bool:
    """Public, knockable (where the version has knocking) or world readable."""
    join_rule = join_rule_in(view.state)
    version = view.version
    return (
        join_rule == "public"
        or (join_rule == "knock" and version.knock_join_rule)
        or (join_rule == "knock_restricted" and version.knock_restricted_join_rule)
        or _history_visibility(view) == "world_readable"
    )


def _is_restricted(view: _RoomView) -> bool:
    return join_rule_in(view.state) == "restricted" and view.version.restricted_join_rule


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
