"""Each device's last-seen address, time and user agent, written in batches.

Every authenticated request updates these, so writing them one request at a time
would put a database write on the hot path.  Instead the latest value per device is
kept in memory and flushed every few seconds in one transaction; readers merge in
the values not yet flushed, so what clients see is always current.

spec: client-server-api/_index.md#get_matrixclientv3devices (last_seen_ip, last_seen_ts)
"""

from __future__ import annotations

import logging

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from homeserver.clock import Clock
from homeserver.storage.devices import DeviceStore, LastSeen

logger = logging.getLogger(__name__)

#: Seconds between flushes: a crash loses at most this much last-seen history.
FLUSH_INTERVAL_SECONDS = 5.0


class LastSeenTracker:
    def __init__(self, clock: Clock, devices: DeviceStore, reactor: IReactorTime) -> None:
        self._clock = clock
        self._devices = devices
        self._reactor = reactor
        self._pending: dict[tuple[str, str], LastSeen] = {}
        self._loop: task.LoopingCall | None = None
        # Flushes run one at a time, so stop() also waits for one the timer started.
        self._flush_lock = defer.DeferredLock()

    def record(self, user_id: str, device_id: str, ip: str, user_agent: str | None) -> None:
        self._pending[(user_id, device_id)] = LastSeen(
            user_id=user_id,
            device_id=device_id,
            ip=ip,
            user_agent=user_agent,
            ts=self._clock.time_msec(),
        )

    def pending(self, user_id: str, device_id: str) -> LastSeen | None:
        """The not-yet-written last-seen value of a device, if any."""
        return self._pending.get((user_id, device_id))

    def forget_user(self, user_id: str) -> None:
        """Drop pending values of a user's deleted devices (nothing left to update)."""
        for key in [key for key in self._pending if key[0] == user_id]:
            del self._pending[key]

    async def flush(self) -> None:
        await self._flush_lock.acquire()
        try:
            await self._flush_pending()
        finally:
            self._flush_lock.release()

    async def _flush_pending(self) -> None:
        if not self._pending:
            return
        batch = list(self._pending.values())
        self._pending = {}
        try:
            await self._devices.update_last_seen(batch)
        except Exception:
            # Last-seen data is advisory: losing one batch must not stop the loop.
            logger.warning("could not write %d last-seen updates", len(batch), exc_info=True)

    def start(self, interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        if self._loop is not None:
            return
        self._loop = task.LoopingCall(self._flush_in_background)
        self._loop.clock = self._reactor
        self._loop.start(interval, now=False)

    def _flush_in_background(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self.flush())

    async def stop(self) -> None:
        """Stop the loop and write what is still pending."""
        if self._loop is not None:
            if self._loop.running:
                self._loop.stop()
            self._loop = None
        await self.flush()
