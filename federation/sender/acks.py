"""Acknowledged positions, written behind: many destinations per database write.

Every acknowledged transaction moves its destination's acknowledged position.  Writing
it at once cost one write transaction (one commit) per transaction per destination: a
message in a room spanning 50 servers made 50 commits, all queued on the one writer
connection ahead of the next client's event, and a client's ``PUT /send`` waited
behind them (the fan-out benchmark: ~88 ms per send with 50 servers, ~1 ms in a
local room).  Here a position only updates memory; a write begins
:data:`WRITE_DELAY_S` after the first position moved since the last one, and stores
every position moved meanwhile in one transaction (a few writes a second, whatever
the number of destinations).

A crash loses at most the positions not yet written (a fraction of a second's worth):
those destinations catch up from an older position and receive some PDUs again,
which receivers ignore (a PDU is identified by its event ID; spec:
server-server-api.md#transactions).  Nothing is skipped: a position is only ever
recorded after the destination acknowledged it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

logger = logging.getLogger(__name__)

#: Wait between a position moving and the write storing it (and whatever else moved
#: meanwhile).
WRITE_DELAY_S = 0.2
#: Wait before writing again after a failed write (the database is down).
RETRY_S = 5.0


class AckedPositionStore(Protocol):
    """``homeserver.storage.federation_outbound.FederationOutboundStore``."""

    async def get_acked_position(self, destination: str) -> int | None: ...

    async def set_acked_positions(self, positions: Mapping[str, int]) -> None: ...


class AckedPositions:
    def __init__(self, store: AckedPositionStore, reactor: IReactorTime) -> None:
        self._store = store
        self._reactor = reactor
        #: Moved since the write under way began.
        self._pending: dict[str, int] = {}
        #: Being written now (read back from here until committed).
        self._writing: dict[str, int] = {}
        self._writer: defer.Deferred[None] | None = None
        #: The next write (after WRITE_DELAY_S, or RETRY_S after a failure).
        self._timer: IDelayedCall | None = None
        self._stopped = False

    def record(self, destination: str, position: int) -> None:
        """``destination`` acknowledged every PDU up to ``position`` (never moves down)."""
        if position > self._pending.get(destination, position - 1):
            self._pending[destination] = position
        self._schedule(WRITE_DELAY_S)

    async def get(self, destination: str) -> int | None:
        """The destination's acknowledged position: the newest recorded, written or not."""
        # Memory looked at before the read too: a write committing during the read
        # leaves memory, and the read may have begun before the commit.
        before = self._in_memory(destination)
        stored = await self._store.get_acked_position(destination)
        known = [p for p in (before, stored, self._in_memory(destination)) if p is not None]
        return max(known) if known else None

    async def flush(self) -> None:
        """Write what is recorded now (at stop: a restart then resends less); raises
        if that write fails."""
        self._cancel_timer()
        while self._writer is not None:
            await self._writer  # never fails: _write logs
            self._cancel_timer()
        if not self._pending:
            return
        self._writer = defer.ensureDeferred(self._write_once())
        try:
            await self._writer
        finally:
            self._writer = None
            self._schedule(WRITE_DELAY_S)  # positions recorded meanwhile

    async def stop(self) -> None:
        self._stopped = True
        try:
            await self.flush()
        except Exception:
            logger.exception("Could not store the acknowledged positions at stop")

    def _in_memory(self, destination: str) -> int | None:
        known = [
            p
            for p in (self._writing.get(destination), self._pending.get(destination))
            if p is not None
        ]
        return max(known) if known else None

    def _schedule(self, delay: float) -> None:
        if self._stopped or self._writer is not None or self._timer is not None:
            return
        if self._pending:
            self._timer = self._reactor.callLater(delay, self._begin)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _begin(self) -> None:
        self._timer = None
        if self._writer is None and self._pending:
            self._writer = defer.ensureDeferred(self._write())

    async def _write(self) -> None:
        failed = False
        try:
            await self._write_once()
        except Exception:
            failed = True
            logger.exception("Could not store acknowledged positions; retrying in %ss", RETRY_S)
        finally:
            self._writer = None
        self._schedule(RETRY_S if failed else WRITE_DELAY_S)

    async def _write_once(self) -> None:
        self._writing, self._pending = self._pending, {}
        try:
            await self._store.set_acked_positions(self._writing)
        except BaseException:
            # Back into what is pending, unless a newer position was recorded since.
            for destination, position in self._writing.items():
                if position > self._pending.get(destination, position - 1):
                    self._pending[destination] = position
            raise
        finally:
            self._writing = {}
