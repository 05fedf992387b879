"""Device-list tracking: who must re-query whose keys (rules only).

A user's device list changes when one of their devices uploads new or changed
device keys, is renamed or is deleted, or their cross-signing keys change
(``user_devices_changed``; the cross-signing handler calls it too).  Each change
takes a position of the ``device_lists`` stream and wakes the ``/sync`` of everyone
sharing a joined room with the user.

What a user is told, between two sync tokens (``device_lists`` in ``/sync``,
``GET /keys/changes``):

- ``changed``: users whose device list changed in the span and who share a joined
  room with the requester now (the requester included: their own other devices),
  and users who came to share a room with the requester in the span (someone
  joined one of the requester's rooms, or the requester joined a room: all its
  members).  The spec allows reporting a new shared room even when another room
  was already shared (end_to_end_encryption.md, "Extensions to /sync", the note).
- ``left``: users who shared a room with the requester during the span (someone
  left or was kicked or banned from a room the requester was in, or the requester
  left a room) and share none now; never the requester, never someone in
  ``changed``.

Every joined room counts, encrypted or not: the client decides what to track, and
a room may turn encryption on at any time.

A :class:`StreamChangeCache` keeps, per user, the latest position of a change that
user must hear of (the changed user and their room-mates at the time), so a sync
where nothing changed for anyone the user knows costs no query for that part.  A
user who comes to share a room after a change learns of it through the join.

spec: client-server-api/modules/end_to_end_encryption.md#tracking-the-device-list-for-a-user,
#e2e-extensions-to-sync, #get_matrixclientv3keyschanges (data/api/client-server/keys.yaml)
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.storage.device_lists import DeviceListStore, MembershipTransition
from homeserver.storage.events import EventStore
from homeserver.storage.timeline import TimelineStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import STREAM_KEYS, StreamToken
from homeserver.sync.sections import SectionRequest

logger = logging.getLogger(__name__)

#: Device-list changes, or membership events, one sync reads at most; past that the
#: span is answered wholesale (:meth:`DeviceListTracker.changes`).
MAX_CHANGES_READ = 2000


class DeviceListTracker:
    """Call :meth:`load` once before use (it reads the newest stream position)."""

    def __init__(
        self,
        store: DeviceListStore,
        *,
        timeline: TimelineStore,
        events: EventStore,
        notifier: Notifier,
    ) -> None:
        self._store = store
        self._timeline = timeline
        self._events = events
        self._notifier = notifier
        #: user → latest position of a change they must hear of; created by :meth:`load`.
        self._cache: StreamChangeCache[str] | None = None
        #: The ``device_lists`` section of ``/sync``.
        self.sync = DeviceListsSection(self)
        #: Awaited with the user ID after each change is announced, local and remote
        #: users alike: federation tells the servers sharing a room with a local user
        #: (``m.device_list_update``).  It is built after this tracker, hence a list.
        self.on_change: list[Callable[[str], Awaitable[None]]] = []

    async def load(self) -> int:
        """Start from the newest position stored; returns it (to announce)."""
        position = await self._store.current_position()
        self._cache = StreamChangeCache(position)
        return position

    async def visible_position(self) -> int:
        """Every change up to this position of the stream is committed (or abandoned):
        for consumers of the stream (federation's announcer)."""
        return await self._store.current_position()

    # --- writing -------------------------------------------------------------------

    async def user_devices_changed(self, user_id: str) -> None:
        """Record that ``user_id``'s devices or keys changed and wake everyone who
        tracks them (once the position is visible)."""
        cache = self._loaded_cache()
        audience: frozenset[str] = frozenset({user_id})

        def note(position: int, users: frozenset[str]) -> None:
            nonlocal audience
            audience = users
            for user in users:
                cache.record(user, position)

        position = await self._store.add_change(user_id, note)
        await self._store.wait_until_visible(position)
        self._notifier.notify("device_lists", position, users=audience)
        for callback in self.on_change:
            try:
                await callback(user_id)
            except Exception:
                # The change is recorded; only the listener failed (federation's
                # announcer reads the stream from its own stored position, so it
                # only announces later).
                logger.error("device-list listener failed for %s", user_id, exc_info=True)

    async def user_keys_signed_for(self, signer: str, user_id: str) -> None:
        """``signer`` signed ``user_id``'s master key with their user-signing key: a
        signature only ``signer`` is shown, so only ``signer``'s devices must query
        ``user_id``'s keys again (it is in their ``changed``, and nobody else's)."""
        cache = self._loaded_cache()

        def note(position: int, users: frozenset[str]) -> None:
            cache.record(signer, position)

        position = await self._store.add_change(user_id, note, only_for=signer)
        await self._store.wait_until_visible(position)
        self._notifier.notify("device_lists", position, users=[signer])

    # --- reading -------------------------------------------------------------------

    async def changes(
        self, user_id: str, since: StreamToken, now: StreamToken
    ) -> tuple[list[str], list[str]]:
        """``(changed, left)`` for ``user_id`` between the two tokens (sorted).

        A span too long to work through (an old or made-up token: more than
        :data:`MAX_CHANGES_READ` changes or membership events) is answered with every
        room-mate in ``changed`` and nobody in ``left``: the client fetches keys it
        may not have needed, and keeps tracking users it may no longer need, both of
        which it survives (the spec's rules let a server over-report ``changed``)."""
        changed: set[str] = set()
        candidates: set[str] = set()
        if now.device_lists > since.device_lists:
            known = self._loaded_cache().has_changed_since(user_id, since.device_lists)
            if known is not False:
                users = await self._store.users_changed(
                    since.device_lists, now.device_lists, user_id, limit=MAX_CHANGES_READ
                )
                if users is None:
                    return await self._everyone_changed(user_id)
                if user_id in users.for_room_mates:
                    changed.add(user_id)
                candidates |= users.for_room_mates - {user_id}
                # What the requester signed: theirs to know whether or not a room is
                # shared (they may verify someone they only share a DM invite with).
                changed |= users.for_viewer
        joined: set[str] = set()
        parted: set[str] = set()
        if now.events > since.events:
            news = await self._membership_news(user_id, since.events, now.events)
            if news is None:
                return await self._everyone_changed(user_id)
            joined, parted = news
        looked_up = candidates | joined | parted
        sharing = await self._store.share_a_room(user_id, looked_up) if looked_up else set()
        changed |= (candidates | joined) & sharing
        left = parted - sharing - changed - {user_id}
        return sorted(changed), sorted(left)

    async def changes_between(
        self, user_id: str, from_token: StreamToken, to_token: StreamToken
    ) -> dict[str, list[str]]:
        """``GET /keys/changes``: as :meth:`changes`, with ``to`` never past what has
        been announced (a later position may still hide an earlier one in flight)."""
        current = self._notifier.current_token
        to_token = StreamToken(*(min(to_token.get(k), current.get(k)) for k in STREAM_KEYS))
        changed, left = await self.changes(user_id, from_token, to_token)
        return {"changed": changed, "left": left}

    async def _everyone_changed(self, user_id: str) -> tuple[list[str], list[str]]:
        """The answer for a span too long to work through: every room-mate changed."""
        return sorted(await self._store.room_mates(user_id) | {user_id}), []

    async def _membership_news(
        self, user_id: str, after: int, up_to: int
    ) -> tuple[set[str], set[str]] | None:
        """Users who came to share a room with ``user_id`` in ``(after, up_to]``, and
        users who stopped sharing one (either may still share another); None if the
        span has too many membership events to read."""
        memberships = await self._timeline.get_memberships_for_user(user_id)
        current = {m.room_nid: m.membership for m in memberships}
        if not current:
            return set(), set()
        active = await self._events.rooms_changed_since(list(current), after)
        if active is None:
            active = set(current)
        if not active:
            return set(), set()
        found = await self._store.membership_transitions(
            active, after, up_to, limit=MAX_CHANGES_READ
        )
        if found is None:
            return None
        by_room: dict[int, list[MembershipTransition]] = collections.defaultdict(list)
        for transition in found:
            by_room[transition.room_nid].append(transition)
        joined: set[str] = set()
        parted: set[str] = set()
        rooms_joined: set[int] = set()
        #: Room → the transitions after the requester's last leave of it in the span.
        rooms_left: dict[int, list[MembershipTransition]] = {}
        for room_nid, transitions in by_room.items():
            mine = [t for t in transitions if t.user_id == user_id]
            # The requester's membership as the span began: what their first event in
            # it replaced, else (no change in the span) what it is now.
            inside = (mine[0].before if mine else current.get(room_nid)) == "join"
            for index, transition in enumerate(transitions):
                came = _came(transition)
                went = _went(transition)
                if transition.user_id == user_id:
                    if came:
                        rooms_joined.add(room_nid)
                    elif went:
                        rooms_left[room_nid] = transitions[index + 1 :]
                    inside = transition.after == "join"
                elif inside and came:
                    joined.add(transition.user_id)
                elif inside and went:
                    parted.add(transition.user_id)
        members = await self._store.joined_members(rooms_joined | rooms_left.keys())
        for room_nid in rooms_joined:
            joined |= members.get(room_nid, set())
        for room_nid, after_leave in rooms_left.items():
            # Who was joined when the requester left: today's members with what
            # happened since undone, newest first (a later joiner never shared it).
            then = set(members.get(room_nid, set()))
            for transition in reversed(after_leave):
                if _came(transition):
                    then.discard(transition.user_id)
                elif _went(transition):
                    then.add(transition.user_id)
            parted |= then
        joined.discard(user_id)
        parted.discard(user_id)
        return joined, parted

    def _loaded_cache(self) -> StreamChangeCache[str]:
        assert self._cache is not None, "DeviceListTracker.load() was not called"
        return self._cache


def _came(transition: MembershipTransition) -> bool:
    return transition.before != "join" and transition.after == "join"


def _went(transition: MembershipTransition) -> bool:
    return transition.before == "join" and transition.after != "join"


class DeviceListsSection:
    """``device_lists``: ``changed`` and ``left`` since the request's token; both
    empty on an initial sync (the client queries the keys of whom it tracks).

    spec: client-server-api/modules/end_to_end_encryption.md#e2e-extensions-to-sync
    """

    key = "device_lists"

    def __init__(self, tracker: DeviceListTracker) -> None:
        self._tracker = tracker

    async def build(self, request: SectionRequest) -> dict[str, Any]:
        if request.since is None:
            return {"changed": [], "left": []}
        changed, left = await self._tracker.changes(request.user_id, request.since, request.now)
        return {"changed": changed, "left": left}

    def has_news(self, body: dict[str, Any]) -> bool:
        return bool(body["changed"] or body["left"])
