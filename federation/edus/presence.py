"""``m.presence`` EDUs: local users' presence to the servers sharing a room with them,
and remote users' presence into the presence handler.

What is sent follows Synapse's rules (``should_notify``, ``_handle_state_delta``):

- a change others see — state, status message, ``currently_active`` — of a local user
  (``PresenceHandler.on_local_change``: activity that only moves ``last_active_ts`` is
  not one), collected for :data:`BATCH_SECONDS` so a burst costs one lookup per user,
  then sent to every server sharing a room with the user, one pending EDU per user
  per destination (a newer state replaces an unsent one);
- every :data:`PING_INTERVAL_MS`, again, for local users who are not offline: the
  receiving servers show a remote user offline after 30 minutes without news
  (``presence.handler.REMOTE_TIMEOUT_MS``, Synapse's ``FEDERATION_TIMEOUT``);
- when a local user joins a room, their presence to the room's other servers; when a
  remote user joins a room (not a join replacing a join: a profile change), the
  presence of the room's local members to that user's server if it is new to the
  room.  Offline users without a status message are left out: the receiver assumes
  offline already.

Inbound, each entry must be a user of the sending server who shares a room with a
local user (else nobody here may see it); it is applied as the sender states it, with
``last_active_ago`` counted from when it arrived.  An EDU costs one database read for
all its entries (which rooms each user is in; whether we are in those rooms comes
from the cache of servers per room), at most :data:`MAX_ENTRIES_PER_EDU` entries are
read, and each origin may send :data:`ORIGIN_ENTRIES_PER_SECOND` entries a second
(bursts of :data:`ORIGIN_ENTRIES_BURST`): the rest are dropped, presence being
best-effort and re-sent.  An entry for a user who shares no
room with us yet is held for :data:`HELD_MS` (at most :data:`MAX_HELD` of them): the
presence a server sends because we joined one of its rooms can arrive before our side
of the join is stored, and it is applied when that join is.

spec: server-server-api.md#presence,
data/api/server-server/definitions/event-schemas/schema/m.presence.yaml
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from twisted.internet import task
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from federation.edus.common import BackgroundTasks, EduSink
from federation.edus.rooms import RoomServers
from federation.identifiers import is_user_of, server_of
from federation.joins import EventLoader, is_new_join
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.presence.handler import PresenceHandler
from homeserver.presence.record import OFFLINE, PRESENCE_STATES, UserPresence
from homeserver.ratelimit import RateLimitConfig, RateLimiter

logger = logging.getLogger(__name__)

EDU_TYPE = "m.presence"
#: Changes are collected this long before being sent.
BATCH_SECONDS = 0.5
#: Presence of a local user who is not offline is re-sent this often (Synapse's
#: ``FEDERATION_PING_INTERVAL``), checked every :data:`PING_CHECK_SECONDS`.
PING_INTERVAL_MS = 25 * 60_000
PING_CHECK_SECONDS = 60.0
#: Entries read from one EDU at most; the rest are dropped.  Servers send ~50
#: (Synapse batches presence per transaction; :data:`ENTRIES_PER_EDU` here).
MAX_ENTRIES_PER_EDU = 100
#: Entries one origin may send a second, and in a burst; beyond, EDUs are dropped.
ORIGIN_ENTRIES_PER_SECOND = 100.0
ORIGIN_ENTRIES_BURST = 1_000
#: Entries per EDU when sending several users' presence to one server (a join).
ENTRIES_PER_EDU = 50
#: Longest status message accepted from another server (characters).
MAX_STATUS_MSG_LENGTH = 1_000
#: Presence of remote users sharing no room with us yet, held this long (ms) for a
#: join of ours to be stored, and at most this many (the oldest are dropped).
HELD_MS = 120_000
MAX_HELD = 10_000


class PresenceRooms(Protocol):
    """``homeserver.storage.presence.PresenceStore``."""

    async def joined_rooms(self, user_ids: Sequence[str]) -> set[str]: ...
    async def joined_rooms_by_user(self, user_ids: Sequence[str]) -> dict[str, set[str]]: ...
    async def joined_members(self, room_id: str) -> list[str]: ...


class PresenceEdus:
    def __init__(
        self,
        *,
        server_name: str,
        rooms: RoomServers,
        presence: PresenceHandler,
        presence_rooms: PresenceRooms,
        events: EventLoader,
        reactor: IReactorTime,
        clock: Clock,
        sender: EduSink | None,
        tasks: BackgroundTasks,
    ) -> None:
        self._server_name = server_name
        self._tasks = tasks
        self._rooms = rooms
        self._presence = presence
        self._presence_rooms = presence_rooms
        self._events = events
        self._reactor = reactor
        self._clock = clock
        self._sender = sender
        #: Local users whose presence is to be sent to every server sharing a room.
        self._pending: set[str] = set()
        self._batch_timer: IDelayedCall | None = None
        #: Local users last sent as not offline -> when (ms): who the pings are for.
        self._announced: dict[str, int] = {}
        self._ping_loop: task.LoopingCall | None = None
        #: Remote user -> (presence, when received): see :data:`HELD_MS`.
        self._held: OrderedDict[str, tuple[UserPresence, int]] = OrderedDict()
        #: Entries received per origin (buckets of idle origins are pruned).
        self._origin_limit = RateLimiter(
            clock, RateLimitConfig(ORIGIN_ENTRIES_PER_SECOND, ORIGIN_ENTRIES_BURST)
        )

    @property
    def _sending(self) -> bool:
        return self._sender is not None and self._presence.enabled

    def start(self) -> None:
        if not self._sending or self._ping_loop is not None:
            return
        self._ping_loop = task.LoopingCall(self._ping)
        self._ping_loop.clock = self._reactor
        self._ping_loop.start(PING_CHECK_SECONDS, now=False)

    async def stop(self) -> None:
        if self._ping_loop is not None and self._ping_loop.running:
            self._ping_loop.stop()
        self._ping_loop = None
        if self._batch_timer is not None and self._batch_timer.active():
            self._batch_timer.cancel()
        self._batch_timer = None

    # --- outbound ------------------------------------------------------------------------

    def on_local_change(self, presence: UserPresence) -> None:
        """``PresenceHandler.on_local_change``."""
        if not self._sending:
            return
        self._pending.add(presence.user_id)
        if self._batch_timer is None:
            self._batch_timer = self._reactor.callLater(BATCH_SECONDS, self._send_batch)

    def _send_batch(self) -> None:
        self._batch_timer = None
        users, self._pending = sorted(self._pending), set()
        self._tasks.run(self._send_to_sharing_servers(users), "send presence")

    def _ping(self) -> None:
        now = self._clock.time_msec()
        due = [u for u, sent in self._announced.items() if now - sent >= PING_INTERVAL_MS]
        if due:
            self._tasks.run(self._send_to_sharing_servers(sorted(due)), "re-send presence")

    async def _send_to_sharing_servers(self, users: Sequence[str]) -> None:
        for user_id in users:
            rooms = await self._presence_rooms.joined_rooms([user_id])
            servers: set[str] = set()
            for room_id in rooms:
                servers.update(await self._rooms.other_servers(room_id))
            self._send(servers, [user_id])

    def _send(self, servers: Collection[str], users: Sequence[str]) -> None:
        """The current presence of ``users`` (local) to ``servers``."""
        assert self._sender is not None
        now = self._clock.time_msec()
        states = [self._presence.current(user_id) for user_id in users]
        for state in states:
            if state.state == OFFLINE:
                self._announced.pop(state.user_id, None)
            else:
                self._announced[state.user_id] = now
        if not servers:
            return
        entries = [_push_entry(state, now) for state in states]
        for server in sorted(servers):
            if len(entries) == 1:
                # The newest state of one user replaces an unsent older one.
                self._sender.send_edu(server, EDU_TYPE, {"push": entries}, coalesce_key=users[0])
                continue
            for start in range(0, len(entries), ENTRIES_PER_EDU):
                chunk = entries[start : start + ENTRIES_PER_EDU]
                self._sender.send_edu(server, EDU_TYPE, {"push": chunk})

    def on_new_event(self, event: Event, _position: int) -> None:
        """``EventPath.on_new_event`` (every visible event, joins through another
        server included): presence is exchanged on joins."""
        if (
            self._sending
            and event.type == "m.room.member"
            and event.membership == "join"
            and event.state_key is not None
        ):
            self._tasks.run(self._on_join(event, event.state_key), "send presence on a join")

    async def _on_join(self, event: Event, joiner: str) -> None:
        if not await is_new_join(event, self._events):
            return
        if server_of(joiner) == self._server_name:
            servers = await self._rooms.other_servers(event.room_id)
            await self._apply_held(servers)
            if _worth_sending(self._presence.current(joiner)):
                self._send(servers, [joiner])
            return
        members = await self._presence_rooms.joined_members(event.room_id)
        host = server_of(joiner)
        if any(server_of(user_id) == host and user_id != joiner for user_id in members):
            return  # the joiner's server was in the room already: it has them
        local = [
            user_id
            for user_id in sorted(members)
            if server_of(user_id) == self._server_name
            and _worth_sending(self._presence.current(user_id))
        ]
        if local:
            self._send([host], local)

    # --- inbound -------------------------------------------------------------------------

    async def receive(self, origin: str, content: Mapping[str, Any]) -> None:
        """The ``m.presence`` handler of the EDU registry."""
        if not self._presence.enabled:
            return
        push = content.get("push")
        if not isinstance(push, list):
            logger.info("Ignoring a malformed presence EDU from %s", origin)
            return
        now = self._clock.time_msec()
        entries: dict[str, UserPresence] = {}
        for entry in push[:MAX_ENTRIES_PER_EDU]:
            presence = _parse_entry(entry, now)
            if presence is None:
                continue
            if not is_user_of(presence.user_id, origin):
                logger.info(
                    "Ignoring presence of %r from %s: not its user", presence.user_id, origin
                )
                continue
            entries[presence.user_id] = presence  # a later entry of a user wins
        if not entries:
            return
        if self._origin_limit.check(origin, cost=len(entries)) > 0:
            logger.info("Ignoring %d presence entries from %s: too many", len(entries), origin)
            return
        sharing = await self._sharing_a_room_with_us(list(entries))
        for user_id, presence in entries.items():
            if user_id not in sharing:
                self._hold(presence, now)
                continue
            self._held.pop(user_id, None)
            self._presence.apply_remote(presence)

    def _hold(self, presence: UserPresence, now: int) -> None:
        self._held.pop(presence.user_id, None)
        self._held[presence.user_id] = (presence, now)
        while len(self._held) > MAX_HELD:
            self._held.popitem(last=False)

    async def _apply_held(self, servers: Collection[str]) -> None:
        """A local user joined a room with ``servers``: the presence they sent of
        their users before our join was stored now has someone to be shown to."""
        if not self._held:
            return
        now = self._clock.time_msec()
        while self._held:
            oldest, (_, received) = next(iter(self._held.items()))
            if now - received < HELD_MS:
                break
            del self._held[oldest]
        candidates = {
            user_id: held for user_id, held in self._held.items() if server_of(user_id) in servers
        }
        if not candidates:
            return
        sharing = await self._sharing_a_room_with_us(list(candidates))
        for user_id in sharing:
            held = candidates[user_id]
            if self._held.get(user_id) == held:  # not replaced meanwhile
                del self._held[user_id]
                # Counted from its arrival: last_active_ts was fixed then.
                self._presence.apply_remote(held[0])

    async def _sharing_a_room_with_us(self, user_ids: Sequence[str]) -> set[str]:
        """Those of ``user_ids`` joined to a room a local user is joined to: one read
        for all of them; whether we are in each of their rooms is cached per room."""
        rooms_by_user = await self._presence_rooms.joined_rooms_by_user(user_ids)
        ours: dict[str, bool] = {}
        sharing: set[str] = set()
        for user_id, rooms in rooms_by_user.items():
            for room_id in sorted(rooms):
                if room_id not in ours:
                    ours[room_id] = self._server_name in await self._rooms.joined_servers(room_id)
                if ours[room_id]:
                    sharing.add(user_id)
                    break
        return sharing


def _worth_sending(presence: UserPresence) -> bool:
    return presence.state != OFFLINE or presence.status_msg is not None


def _push_entry(presence: UserPresence, now: int) -> dict[str, Any]:
    """One ``push`` entry of the EDU."""
    entry: dict[str, Any] = {
        "user_id": presence.user_id,
        "presence": presence.state,
        "last_active_ago": max(now - presence.last_active_ts, 0),
        "currently_active": presence.currently_active,
    }
    if presence.status_msg is not None:
        entry["status_msg"] = presence.status_msg
    return entry


def _parse_entry(entry: object, now: int) -> UserPresence | None:
    """A ``push`` entry as the presence handler holds it; None if malformed."""
    if not isinstance(entry, dict):
        return None
    user_id = entry.get("user_id")
    state = entry.get("presence")
    if not isinstance(user_id, str) or state not in PRESENCE_STATES:
        return None
    ago = entry.get("last_active_ago", 0)
    if not isinstance(ago, int) or isinstance(ago, bool):
        ago = 0
    status_msg = entry.get("status_msg")
    if not isinstance(status_msg, str):
        status_msg = None
    elif len(status_msg) > MAX_STATUS_MSG_LENGTH:
        status_msg = status_msg[:MAX_STATUS_MSG_LENGTH]
    currently_active = entry.get("currently_active") is True and state != OFFLINE
    return UserPresence(
        user_id=user_id,
        state=str(state),
        status_msg=status_msg,
        last_active_ts=max(now - max(ago, 0), 0),
        currently_active=currently_active,
    )
