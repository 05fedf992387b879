"""Spaces on other servers: ``GET /_matrix/federation/v1/hierarchy/{roomId}``.

The servers of a child's ``via`` are tried in turn (a few at most) until one
answers.  One walk of a client's ``/hierarchy`` shares a budget
(:class:`_WalkBudget`): :data:`WALK_BUDGET_S` seconds and :data:`MAX_ATTEMPTS_PER_WALK`
server attempts in all, each attempt's time-out cut to what is left, so a space full
of unreachable servers answers within the budget instead of after
``MAX_REMOTE_REQUESTS x MAX_SERVERS_TRIED`` time-outs.  A destination we are backing
off from fails at once and costs no attempt.  Its answer is checked and reduced to the keys of the spec's summaries
with the right types before the walk (homeserver/rooms/hierarchy.py) uses it: a
summary without a valid room ID, member count or join rule is dropped, and
``children_state`` keeps only ``m.space.child`` events with object content.

spec: server-server-api.md#spaces (data/api/server-server/space_hierarchy.yaml)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from federation.client.errors import (
    FederationRequestError,
    FederationUnreachable,
    NotRetryingDestination,
)
from federation.client.http import FederationHttpClient
from homeserver.clock import Clock
from homeserver.identifiers import is_valid_room_id, is_valid_server_name
from homeserver.rooms.hierarchy import RemoteSpace

logger = logging.getLogger(__name__)

HIERARCHY_PATH = "/_matrix/federation/v1/hierarchy/"
QUERY_TIMEOUT_S = 15.0
#: What one walk may spend on other servers in all: seconds, and server attempts.
WALK_BUDGET_S = 30.0
MAX_ATTEMPTS_PER_WALK = 20
#: An attempt is not started with less time than this left.
MIN_ATTEMPT_S = 1.0
MAX_RESPONSE_SIZE = 4 * 1024 * 1024
#: Servers of a ``via`` tried before giving up on a room.
MAX_SERVERS_TRIED = 3
#: Children kept of one space (and ``children_state`` events of one room).
MAX_CHILDREN = 1000
MAX_TEXT = 4096
_TEXT_KEYS = ("name", "topic", "avatar_url", "canonical_alias", "room_type", "encryption")


class RemoteHierarchyQuery:
    """Implements ``homeserver.rooms.hierarchy.RemoteHierarchy``."""

    def __init__(self, *, server_name: str, client: FederationHttpClient, clock: Clock) -> None:
        self._server_name = server_name
        self._client = client
        self._clock = clock

    def walk(self) -> _WalkBudget:
        return _WalkBudget(self._server_name, self._client, self._clock)


class _WalkBudget:
    """Implements ``homeserver.rooms.hierarchy.RemoteSpaceSource``: the requests of
    one walk, within :data:`WALK_BUDGET_S` and :data:`MAX_ATTEMPTS_PER_WALK`."""

    def __init__(self, server_name: str, client: FederationHttpClient, clock: Clock) -> None:
        self._server_name = server_name
        self._client = client
        self._clock = clock
        self._deadline = clock.time() + WALK_BUDGET_S
        self._attempts_left = MAX_ATTEMPTS_PER_WALK

    async def get_remote_space(
        self, room_id: str, via: Sequence[str], *, suggested_only: bool
    ) -> RemoteSpace | None:
        servers = [
            server
            for server in dict.fromkeys(via)
            if server != self._server_name and is_valid_server_name(server)
        ]
        for server in servers[:MAX_SERVERS_TRIED]:
            left = self._deadline - self._clock.time()
            if left < MIN_ATTEMPT_S or self._attempts_left <= 0:
                logger.info("hierarchy of %s: the walk's budget is spent", room_id)
                return None
            try:
                body = await self._client.get_json(
                    server,
                    HIERARCHY_PATH + quote(room_id, safe=""),
                    args={"suggested_only": "true" if suggested_only else "false"},
                    timeout=min(QUERY_TIMEOUT_S, left),
                    max_size=MAX_RESPONSE_SIZE,
                )
            except NotRetryingDestination as error:
                logger.info("hierarchy of %s from %s: %s", room_id, server, error)
                continue  # refused without a request: costs no attempt
            except (FederationRequestError, FederationUnreachable) as error:
                self._attempts_left -= 1
                logger.info("hierarchy of %s from %s: %s", room_id, server, error)
                continue
            self._attempts_left -= 1
            space = parse_remote_space(room_id, body)
            if space is not None:
                return space
            logger.info("hierarchy of %s from %s: unusable answer", room_id, server)
        return None


def parse_remote_space(room_id: str, body: object) -> RemoteSpace | None:
    """The checked answer; None if it is not about ``room_id`` or malformed."""
    if not isinstance(body, dict):
        return None
    room = _summary(body.get("room"), with_children=True)
    if room is None or room["room_id"] != room_id:
        return None
    children: dict[str, dict[str, Any]] = {}
    raw_children = body.get("children")
    for raw in raw_children[:MAX_CHILDREN] if isinstance(raw_children, list) else []:
        child = _summary(raw, with_children=True)
        if child is not None and child["room_id"] != room_id:
            children.setdefault(child["room_id"], child)
    raw_inaccessible = body.get("inaccessible_children")
    inaccessible = frozenset(
        item
        for item in (raw_inaccessible if isinstance(raw_inaccessible, list) else [])[:MAX_CHILDREN]
        if isinstance(item, str) and is_valid_room_id(item)
    )
    return RemoteSpace(room=room, children=children, inaccessible_children=inaccessible)


def _summary(raw: object, *, with_children: bool) -> dict[str, Any] | None:
    """spec: SpaceHierarchyParentRoom / SpaceHierarchyChildRoomsChunk, reduced to
    the keys we know, each of the right type."""
    if not isinstance(raw, dict):
        return None
    room_id = raw.get("room_id")
    members = raw.get("num_joined_members")
    if (
        not isinstance(room_id, str)
        or not is_valid_room_id(room_id)
        or type(members) is not int
        or members < 0
    ):
        return None
    join_rule = raw.get("join_rule", "public")  # spec: defaults to public
    if not isinstance(join_rule, str) or len(join_rule) > MAX_TEXT:
        return None
    summary: dict[str, Any] = {
        "room_id": room_id,
        "num_joined_members": members,
        "world_readable": raw.get("world_readable") is True,
        "guest_can_join": raw.get("guest_can_join") is True,
        "join_rule": join_rule,
    }
    for key in _TEXT_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and len(value) <= MAX_TEXT:
            summary[key] = value
    version = raw.get("room_version")
    if isinstance(version, str) and len(version) <= 64:
        summary["room_version"] = version
    allowed = raw.get("allowed_room_ids")
    if isinstance(allowed, list):
        summary["allowed_room_ids"] = [
            item
            for item in allowed[:MAX_CHILDREN]
            if isinstance(item, str) and is_valid_room_id(item)
        ]
    children_state = raw.get("children_state")
    if with_children and isinstance(children_state, list):
        summary["children_state"] = [
            event
            for event in (_child_event(item) for item in children_state[:MAX_CHILDREN])
            if event is not None
        ]
    return summary


def _child_event(raw: object) -> dict[str, Any] | None:
    """A stripped ``m.space.child`` event (spec: StrippedStateEvent plus
    ``origin_server_ts``)."""
    if not isinstance(raw, dict):
        return None
    state_key = raw.get("state_key")
    content = raw.get("content")
    sender = raw.get("sender")
    ts = raw.get("origin_server_ts")
    if (
        raw.get("type") != "m.space.child"
        or not isinstance(state_key, str)
        or not isinstance(content, dict)
        or not isinstance(sender, str)
    ):
        return None
    return {
        "type": "m.space.child",
        "state_key": state_key,
        "content": content,
        "sender": sender,
        "origin_server_ts": ts if type(ts) is int else 0,
    }
