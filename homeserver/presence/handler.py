"""Presence: who is online, idle or offline, their status message and "last seen".

Held in memory by the one process that owns presence (docs/architecture.md, the
inventory), written to the database in batches (``PresenceStore``) so a restart keeps
status messages and last-seen times.  How a user's presence moves is
``presence/state.py``; this module keeps the states, the timers and the ``presence``
stream.

Cheap by construction, because presence is what makes other servers slow:

- nothing is done per pair of users when someone's presence changes: the change gets
  one position in the ``presence`` stream (a log of ``(position, user)``); every
  200 ms the changes since are announced in one notification naming the users'
  rooms, which wakes exactly the waiting clients of those rooms, once per batch
  (and not those whose token already covers it);
- each ``/sync`` reads the log entries after its token (a binary search) and asks the
  database once which of those few users share a room with it;
- activity that others cannot see (a heartbeat or send by a user who is already
  online and currently active) changes no stream position and wakes nobody;
- timeouts are one timer for the earliest deadline over a heap; a deadline that only
  moves later (the common case: a user stays active) costs a dictionary write.

Users of other servers (federation, ``federation/edus/presence.py``): their presence
arrives through :meth:`PresenceHandler.apply_remote` and is shown like a local user's,
kept in memory only (their server is the authority and re-sends it), and only while
they are not offline: once offline they are forgotten (:meth:`_forget_remote`), so
memory is bounded by the remote users online in rooms we share.  Our rules of
idleness do not apply to them; a remote user not heard of for
:data:`REMOTE_TIMEOUT_MS` goes offline, so a server that vanishes leaves nobody
online for ever.  Changes others must hear of (a local user's state, status message
or ``currently_active``) go to the ``on_local_change`` callbacks.

spec: client-server-api/modules/presence.md,
#get_matrixclientv3presenceuseridstatus, #put_matrixclientv3presenceuseridstatus
"""

from __future__ import annotations

import bisect
import collections
import heapq
import logging
from collections.abc import Callable, Collection
from typing import Any

import attrs
from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from homeserver import errors
from homeserver.clock import Clock
from homeserver.config.model import PresenceConfig
from homeserver.presence import state as transitions
from homeserver.presence.record import OFFLINE, UserPresence
from homeserver.storage.presence import PresenceStore
from homeserver.streams.notifier import Notifier

logger = logging.getLogger(__name__)

#: Seconds between writes of changed presence to the database.
FLUSH_INTERVAL_SECONDS = 5.0
#: Log entries kept; a token older than the log gets everyone's current presence.
_LOG_SIZE = 20_000
#: Changes are announced to the users' rooms in batches this far apart, so a burst
#: of changes (users going idle, a room coming online) wakes each client once.
NOTIFY_BATCH_SECONDS = 0.2
#: A remote user whose server has said nothing of them for this long is shown offline
#: (Synapse's ``FEDERATION_TIMEOUT``; servers re-send every 25 minutes).
REMOTE_TIMEOUT_MS = 30 * 60_000


class PresenceConnection:
    """A user's open ``/sync`` or WebSocket stream: connected until :meth:`close`."""

    def __init__(self, handler: PresenceHandler | None, user_id: str, set_presence: str) -> None:
        self._handler = handler
        self._user_id = user_id
        self._set_presence = set_presence

    def heartbeat(self, active: bool) -> None:
        """The client is still there (a ping); ``active``: the user did something."""
        if self._handler is not None:
            self._handler._heartbeat(self._user_id, self._set_presence, active)

    def close(self) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            handler._disconnect(self._user_id, self._set_presence)


class PresenceHandler:
    def __init__(
        self,
        *,
        reactor: IReactorTime,
        clock: Clock,
        config: PresenceConfig,
        store: PresenceStore,
        notifier: Notifier,
    ) -> None:
        self._reactor = reactor
        self._clock = clock
        self._config = config
        self._store = store
        self._notifier = notifier
        self._states: dict[str, UserPresence] = {}
        #: The users whose state is not offline (what an initial sync lists).
        self._not_offline: set[str] = set()
        #: Open connections per user (syncs in progress and streams).
        self._connections: collections.Counter[str] = collections.Counter()
        # Like typing, the stream lives in memory and starts at the clock's
        # milliseconds, so positions keep increasing across restarts.
        self._position = int(reactor.seconds() * 1000)
        #: The log: ``_log_positions[i]`` is when ``_log_users[i]`` changed; with a
        #: room ID in ``_log_rooms[i]``, that user just joined it and is owed the
        #: presence of its members.
        self._log_positions: list[int] = []
        self._log_users: list[str] = []
        self._log_rooms: list[str | None] = []
        #: Tokens at or below this are older than the log.
        self._log_floor = self._position
        #: What was last written to the database, per user.
        self._stored: dict[str, UserPresence] = {}
        self._dirty: set[str] = set()
        #: The time each user's presence next changes by itself.
        self._deadlines: dict[str, int] = {}
        #: Holds an entry at or before each user's deadline (stale ones are skipped).
        self._heap: list[tuple[int, str]] = []
        self._timer: IDelayedCall | None = None
        #: Users whose change is yet to be announced to their rooms, and the batch timer.
        self._unannounced: set[str] = set()
        self._announce_timer: IDelayedCall | None = None
        self._loop: task.LoopingCall | None = None
        self._flush_lock = defer.DeferredLock()
        #: Remote users -> when their server last told us their presence (ms).
        self._remote_updated: dict[str, int] = {}
        #: Called with a local user's new presence when what others see changed
        #: (state, status message, ``currently_active``): federation sends it on.
        self.on_local_change: list[Callable[[UserPresence], None]] = []

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    def current_position(self) -> int:
        return self._position

    async def load(self) -> None:
        """Read stored presence; users online at shutdown time out as usual."""
        if not self.enabled:
            return
        for stored in await self._store.load_all():
            self._states[stored.user_id] = stored
            self._stored[stored.user_id] = stored
            if stored.state != OFFLINE:
                self._not_offline.add(stored.user_id)
            self._schedule(stored.user_id)

    def start(self, interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        if self._loop is not None or not self.enabled:
            return
        self._loop = task.LoopingCall(self._flush_in_background)
        self._loop.clock = self._reactor
        self._loop.start(interval, now=False)

    async def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        for timer in (self._timer, self._announce_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._timer = self._announce_timer = None
        # Everyone connected until now gets the full time-out to reconnect after a
        # restart: their last sync time is written even when nothing visible changed.
        # (Remote users are never stored: their server tells us again.)
        self._dirty.update(u for u in self._not_offline if u not in self._remote_updated)
        await self.flush()

    # -- what clients do ---------------------------------------------------------

    def connect(self, user_id: str, set_presence: str) -> PresenceConnection:
        """A ``/sync`` starts or a stream opens with ``set_presence``; close the
        connection when it ends.  ``offline`` (or presence turned off) affects nothing."""
        if not self.enabled or set_presence == OFFLINE:
            return PresenceConnection(None, user_id, set_presence)
        self._connections[user_id] += 1
        self._update(user_id, transitions.connected(self._get(user_id), set_presence, self._now()))
        return PresenceConnection(self, user_id, set_presence)

    def record_activity(self, user_id: str) -> None:
        """``user_id`` did something (sent an event, a receipt, started typing)."""
        if self.enabled:
            self._update(user_id, transitions.active(self._get(user_id), self._now()))

    async def set_presence(self, user_id: str, presence: str, status_msg: str | None) -> None:
        """``PUT /presence/{userId}/status`` (checked by the caller)."""
        if self.enabled:
            self._update(
                user_id,
                transitions.set_by_user(self._get(user_id), presence, status_msg, self._now()),
            )

    def joined_room(self, user_id: str, room_id: str) -> None:
        """``user_id`` (local) joined ``room_id``: its members learn the user's presence
        and the user theirs."""
        if not self.enabled:
            return
        if self._get(user_id).state != OFFLINE:
            # (Like an initial sync, members are not told of someone offline.)
            self._append_log(user_id, None)
        position = self._append_log(user_id, room_id)
        self._notifier.notify("presence", position, users=[user_id], rooms=[room_id])

    @property
    def remote_users_held(self) -> int:
        """Remote users whose presence is in memory (those not offline)."""
        return len(self._remote_updated)

    def current(self, user_id: str) -> UserPresence:
        """``user_id``'s presence now (offline when unknown)."""
        return self._get(user_id)

    def apply_remote(self, presence: UserPresence) -> None:
        """The presence of another server's user, as their server sent it (the caller
        checked the server may speak for the user).  Shown to local users sharing a
        room with them; never stored; offline after :data:`REMOTE_TIMEOUT_MS` unless
        their server repeats it."""
        if not self.enabled:
            return
        self._remote_updated[presence.user_id] = self._now()
        self._update(presence.user_id, presence)
        if presence.state == OFFLINE:
            self._forget_remote(presence.user_id)
            return
        # The deadline moves with every update, changed or not.
        self._schedule(presence.user_id)

    def _forget_remote(self, user_id: str) -> None:
        """A remote user went offline (announced already): nothing of them is kept,
        so memory holds only remote users who are online or idle -- at most the
        members of rooms we share whose servers keep telling us of them.  Shown as
        plain ``offline`` from now on (a status message set while offline is not
        kept: their server re-sends it with their next change)."""
        self._states.pop(user_id, None)
        self._remote_updated.pop(user_id, None)
        self._deadlines.pop(user_id, None)
        self._not_offline.discard(user_id)

    async def presence_of(self, observer: str, target: str) -> dict[str, Any]:
        """``GET /presence/{userId}/status``: 403 unless ``observer`` is ``target`` or
        shares a room with them."""
        if not self.enabled:
            return {"presence": OFFLINE}
        if observer != target and not await self._store.share_a_room(observer, [target]):
            raise errors.forbidden("You are not allowed to see their presence")
        return self._get(target).content(self._now())

    async def sync_events(self, observer: str, since: int | None, now: int) -> list[dict[str, Any]]:
        """``m.presence`` events for ``observer``'s sync from stream position ``since``
        (None: initial) to ``now``: the users whose presence changed in between and who
        share a room with the observer (the observer included); for an initial sync or
        a token older than the log, everyone visible who is not offline."""
        if not self.enabled:
            return []
        if since is None or since > now or since < self._log_floor:
            candidates = (
                set(self._states)
                if self._config.include_offline_users_on_sync
                else set(self._not_offline)
            )
            visible = await self._visible_to(observer, candidates)
        else:
            start = bisect.bisect_right(self._log_positions, since)
            end = bisect.bisect_right(self._log_positions, now)
            changed: set[str] = set()
            joined_rooms: set[str] = set()
            for user_id, room_id in zip(
                self._log_users[start:end], self._log_rooms[start:end], strict=True
            ):
                if room_id is None:
                    changed.add(user_id)
                elif user_id == observer:
                    joined_rooms.add(room_id)
            visible = await self._visible_to(observer, changed)
            for room_id in joined_rooms:
                visible.update(await self._online_members(room_id))
        now_ms = self._now()
        return [self._get(user_id).event(now_ms) for user_id in sorted(visible)]

    async def members_presence(self, room_id: str) -> list[dict[str, Any]]:
        """``m.presence`` of the members of ``room_id`` who are not offline
        (``/rooms/{roomId}/initialSync``)."""
        if not self.enabled:
            return []
        now_ms = self._now()
        return [
            self._states[user_id].event(now_ms)
            for user_id in sorted(await self._online_members(room_id))
        ]

    # -- connections -------------------------------------------------------------

    def _heartbeat(self, user_id: str, set_presence: str, active: bool) -> None:
        presence = transitions.connected(self._get(user_id), set_presence, self._now())
        if active:
            presence = transitions.active(presence, self._now())
        self._update(user_id, presence)

    def _disconnect(self, user_id: str, set_presence: str) -> None:
        self._connections[user_id] -= 1
        if self._connections[user_id] <= 0:
            del self._connections[user_id]
        self._update(user_id, transitions.connected(self._get(user_id), set_presence, self._now()))
        # Disconnecting starts the offline countdown even when nothing else changed.
        self._schedule(user_id)

    # -- state changes -----------------------------------------------------------

    def _now(self) -> int:
        return self._clock.time_msec()

    def _get(self, user_id: str) -> UserPresence:
        return self._states.get(user_id) or UserPresence(user_id)

    def _update(self, user_id: str, new: UserPresence) -> None:
        old = self._get(user_id)
        if new == old:
            return
        self._states[user_id] = new
        if new.state == OFFLINE:
            self._not_offline.discard(user_id)
        else:
            self._not_offline.add(user_id)
        remote = user_id in self._remote_updated
        stored = self._stored.get(user_id)
        if not remote and (
            stored is None
            or new.announces_change_from(stored)
            or new.last_active_ts - stored.last_active_ts >= self._config.last_active_granularity_ms
        ):
            self._dirty.add(user_id)
        self._schedule(user_id)
        if new.announces_change_from(old):
            self._announce(user_id, wake=new.state != old.state or new.status_msg != old.status_msg)
            if not remote:
                for callback in self.on_local_change:
                    callback(new)

    def _announce(self, user_id: str, *, wake: bool) -> None:
        position = self._append_log(user_id, None)
        if not wake:
            # Only ``currently_active`` changed (it turns on with activity, off a
            # minute later): a hint nobody needs woken for.  The stream moves, so it
            # reaches others with their next sync, whatever wakes it (a long-poll
            # comes back within its timeout).
            self._notifier.notify("presence", position)
            return
        # The stream moves now, so a sync starting after this change covers it (and
        # the batch below does not wake it again); the rooms are told in a batch.
        self._notifier.notify("presence", position, users=[user_id])
        self._unannounced.add(user_id)
        if self._announce_timer is None:
            self._announce_timer = self._reactor.callLater(
                NOTIFY_BATCH_SECONDS, self._announce_batch
            )

    def _announce_batch(self) -> None:
        self._announce_timer = None
        users, self._unannounced = sorted(self._unannounced), set()
        defer.ensureDeferred(self._notify_rooms(users, self._position)).addErrback(
            lambda failure: logger.error("presence notification failed", exc_info=failure.value)
        )

    async def _notify_rooms(self, users: list[str], position: int) -> None:
        """Wake the clients of ``users``' rooms: one read, one notification."""
        rooms = await self._store.joined_rooms(users)
        if rooms:
            self._notifier.notify("presence", position, rooms=rooms)

    def _append_log(self, user_id: str, room_id: str | None) -> int:
        self._position += 1
        self._log_positions.append(self._position)
        self._log_users.append(user_id)
        self._log_rooms.append(room_id)
        if len(self._log_positions) > 2 * _LOG_SIZE:
            cut = len(self._log_positions) - _LOG_SIZE
            self._log_floor = self._log_positions[cut - 1]
            del self._log_positions[:cut], self._log_users[:cut], self._log_rooms[:cut]
        return self._position

    async def _visible_to(self, observer: str, users: Collection[str]) -> set[str]:
        others = sorted(user_id for user_id in users if user_id != observer)
        visible = await self._store.share_a_room(observer, others)
        if observer in users:
            visible.add(observer)
        return visible

    async def _online_members(self, room_id: str) -> set[str]:
        members = await self._store.joined_members(room_id)
        return {user_id for user_id in members if user_id in self._not_offline}

    # -- timeouts ----------------------------------------------------------------

    def _schedule(self, user_id: str) -> None:
        presence = self._states.get(user_id)
        remote_since = self._remote_updated.get(user_id)
        deadline: int | None
        if presence is None:
            deadline = None
        elif remote_since is not None:
            deadline = None if presence.state == OFFLINE else remote_since + REMOTE_TIMEOUT_MS
        else:
            deadline = transitions.next_deadline(
                presence, self._config, is_connected=user_id in self._connections
            )
        if deadline is None:
            self._deadlines.pop(user_id, None)
            return
        previous = self._deadlines.get(user_id)
        self._deadlines[user_id] = deadline
        # A later deadline is covered by the entry already in the heap (popping a
        # stale entry re-pushes the current deadline).
        if previous is None or deadline < previous:
            heapq.heappush(self._heap, (deadline, user_id))
            self._arm()

    def _arm(self) -> None:
        if not self._heap:
            return
        first = self._heap[0][0]
        delay = max(first - self._now(), 0) / 1000
        if self._timer is not None and self._timer.active():
            if self._timer.getTime() <= self._reactor.seconds() + delay:
                return
            self._timer.cancel()
        self._timer = self._reactor.callLater(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        while self._heap and self._heap[0][0] <= now:
            _, user_id = heapq.heappop(self._heap)
            deadline = self._deadlines.get(user_id)
            if deadline is None:
                continue
            if deadline > now:
                heapq.heappush(self._heap, (deadline, user_id))
                continue
            del self._deadlines[user_id]
            if user_id in self._remote_updated:
                # Their server stopped telling us: it may be gone.
                timed_out = attrs.evolve(self._get(user_id), state=OFFLINE, currently_active=False)
                self._update(user_id, timed_out)
                self._forget_remote(user_id)
                continue
            else:
                timed_out = transitions.timed_out(
                    self._get(user_id),
                    self._config,
                    now,
                    is_connected=user_id in self._connections,
                )
            self._update(user_id, timed_out)
            self._schedule(user_id)
        self._arm()

    # -- persistence -------------------------------------------------------------

    async def flush(self) -> None:
        await self._flush_lock.acquire()
        try:
            if not self._dirty:
                return
            batch = [self._states[user_id] for user_id in sorted(self._dirty)]
            self._dirty = set()
            try:
                await self._store.store(batch)
            except Exception:
                # Presence comes back with the next sync; keep going.
                logger.warning("could not write %d presence updates", len(batch), exc_info=True)
                return
            for presence in batch:
                self._stored[presence.user_id] = presence
        finally:
            self._flush_lock.release()

    def _flush_in_background(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self.flush())
