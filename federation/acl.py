"""Server ACLs: may this server take part in this room?

The room's current ``m.room.server_acl`` decides (spec order: no ACL allows; an IP
literal is denied when ``allow_ip_literals`` is false; ``deny`` globs deny; ``allow``
globs allow; anything else is denied), on the server name without its port.

Cost: a check reads the room record (cached by the event store), the ACL entry of
the room's current state group (the state store's cache, or one indexed read of
one key) and, only when the ACL event differs from the one last seen in that room,
the event itself, whose globs are then compiled once.  A room's entry is keyed by
its current state group, so any state change is seen at the next check without a
hook into the event path.

spec: server-server-api.md#server-access-control-lists-acls,
client-server-api/modules/server_acls.md, event-schemas m.room.server_acl,
appendices.md#glob-style-matching
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from federation.identifiers import ip_literal
from homeserver import errors
from homeserver.events.event import StateKey
from homeserver.identifiers import is_valid_room_id
from homeserver.push.evaluator import StringMatcher, glob_matcher
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore
from homeserver.util.caches import LruCache

ACL_KEY: StateKey = ("m.room.server_acl", "")
#: Rooms whose compiled ACL is remembered.
_CACHED_ROOMS = 10_000


@attrs.frozen
class CompiledAcl:
    """One ``m.room.server_acl`` content, ready to match server names."""

    allow_ip_literals: bool
    allow: tuple[StringMatcher, ...]
    deny: tuple[StringMatcher, ...]

    @classmethod
    def from_content(cls, content: Mapping[str, Any]) -> CompiledAcl:
        allow_ip_literals = content.get("allow_ip_literals", True)
        return cls(
            # "Defaults to true if missing or otherwise not a boolean."
            allow_ip_literals=allow_ip_literals if isinstance(allow_ip_literals, bool) else True,
            allow=_globs(content.get("allow")),
            deny=_globs(content.get("deny")),
        )

    def allows(self, server_name: str) -> bool:
        host = _host_of(server_name)
        if not self.allow_ip_literals and ip_literal(host) is not None:
            return False
        if any(matches(host) for matches in self.deny):
            return False
        return any(matches(host) for matches in self.allow)


@attrs.frozen
class _CachedAcl:
    state_group: int | None
    acl_event_id: str | None
    acl: CompiledAcl | None


class ServerAcl:
    def __init__(self, *, events: EventStore, state: StateStore) -> None:
        self._events = events
        self._state = state
        self._rooms: LruCache[str, _CachedAcl] = LruCache(_CACHED_ROOMS)

    async def check(self, origin: str, room_id: str) -> None:
        """403 ``M_FORBIDDEN`` unless the room's ACL lets ``origin`` in."""
        if not await self.allows(origin, room_id):
            raise errors.forbidden("Server is banned from this room by its server ACL")

    async def allows(self, origin: str, room_id: str) -> bool:
        """Whether the room's ACL lets ``origin`` in (an unknown room has none)."""
        acl = await self._acl_of(room_id)
        return acl is None or acl.allows(origin)

    async def _acl_of(self, room_id: str) -> CompiledAcl | None:
        if not is_valid_room_id(room_id):
            return None  # no such room here (and nothing to look up)
        room = await self._events.get_room(room_id)
        if room is None or room.current_state_group is None:
            return None
        group = room.current_state_group
        cached = self._rooms.get(room_id)
        if cached is not None and cached.state_group == group:
            return cached.acl
        found = await self._state.get_state_for_keys(group, [ACL_KEY])
        acl_event_id = found.get(ACL_KEY)
        if cached is not None and cached.acl_event_id == acl_event_id:
            acl = cached.acl
        elif acl_event_id is None:
            acl = None
        else:
            loaded = await self._events.get_events([acl_event_id])
            event = loaded.get(acl_event_id)
            acl = None if event is None else CompiledAcl.from_content(event.content)
        self._rooms.set(room_id, _CachedAcl(group, acl_event_id, acl))
        return acl


def _globs(value: object) -> tuple[StringMatcher, ...]:
    """The string entries of a list as matchers; anything else is an empty list."""
    if not isinstance(value, list):
        return ()
    return tuple(glob_matcher(entry) for entry in value if isinstance(entry, str))


def _host_of(server_name: str) -> str:
    """The server name without its port: ``[::1]:8448`` -> ``[::1]``, ``a.b:1`` -> ``a.b``.

    spec: appendices.md#server-name; the ACL ignores ports.
    """
    if server_name.startswith("["):
        end = server_name.find("]")
        return server_name[: end + 1] if end != -1 else server_name
    return server_name.rsplit(":", 1)[0] if ":" in server_name else server_name
