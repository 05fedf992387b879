"""Which membership events each device already holds, for lazy-loading ``/sync``.

With ``lazy_load_members`` a sync sends the membership of each timeline sender; the
server may leave out the ones the client already has ("redundant members") unless
the filter sets ``include_redundant_members``.  spec:
client-server-api/_index.md#lazy-loading-room-members

A member event counts as held only once the client has *acknowledged* the response
that carried it, by syncing from a token at or past that response's ``next_batch``.
A response lost on the way (the client retries from its old token) therefore never
hides a member.  The record is a bounded in-memory cache: forgetting a room only
makes the next sync send its senders' memberships again, which the spec allows.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from homeserver.util.caches import LruCache

#: (user ID, device ID, room ID) entries kept; each holds the members sent there.
DEFAULT_MAX_ROOMS = 50_000


@attrs.define
class _Sent:
    event_id: str
    #: ``next_batch`` events position of the response that first carried it.
    position: int


class LazyMembersSent:
    def __init__(self, max_rooms: int = DEFAULT_MAX_ROOMS) -> None:
        self._rooms: LruCache[tuple[str, str, str], dict[str, _Sent]] = LruCache(max_rooms)

    def held(self, user_id: str, device_id: str, room_id: str, since: int) -> dict[str, str]:
        """Member (user ID) → membership event ID the device holds, as of a sync from
        events position ``since``."""
        sent = self._rooms.get((user_id, device_id, room_id))
        if sent is None:
            return {}
        return {member: s.event_id for member, s in sent.items() if s.position <= since}

    def record(
        self,
        user_id: str,
        device_id: str,
        room_id: str,
        members: Mapping[str, str],
        position: int,
        *,
        fresh: bool,
    ) -> None:
        """``members`` (member → event ID) went out in a response whose ``next_batch``
        is at events ``position``.  ``fresh``: the response rebuilt the room from
        scratch (initial or full-state sync, new join), so older records are void."""
        key = (user_id, device_id, room_id)
        sent = None if fresh else self._rooms.get(key)
        if sent is None:
            sent = {}
            self._rooms.set(key, sent)
        for member, event_id in members.items():
            known = sent.get(member)
            # An earlier acknowledgement of the same event stays valid.
            if known is None or known.event_id != event_id:
                sent[member] = _Sent(event_id, position)
