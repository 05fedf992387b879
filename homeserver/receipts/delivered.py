""" "Delivered" receipts: the server's own record that a member's device received a
room's events, published to the other members as a receipt of our unstable type.

The three ticks of a message (docs/live-status.md):

- *sent*: the server accepted the event (``PUT /send`` answered with its ID);
- *delivered*: a device of the recipient received it in a ``/sync`` response or a
  WebSocket stream frame — recorded here, after the response was handed to the
  connection, as a ``dev.homeserver.delivered`` receipt on the newest event from
  someone else that the response carried in the room;
- *seen*: the recipient's ``m.read`` receipt.  ``m.read.private`` stays private and
  never makes a delivered receipt either: only responses do.

A delivered receipt is an "up to and including" marker like ``m.read``: one row per
(user, room), moved forward in place, each move a position in the ``receipts`` stream
(so ``/sync`` shows it in ``m.receipt``).  That is the retention: the latest per member
per room, never a row per message.  Deliveries arriving while a write runs are
coalesced into the next one (one transaction for all of them, the latest event per
(user, room) winning), so a busy room costs a few writes, not one per recipient per
message.  Only the senders of the events are woken for it (the ticks are theirs);
other members see the receipts in their next sync, whatever wakes it.  Rooms with
more than ``max_joined_members`` members get none, since every delivered receipt
goes to every member; users who are no longer joined get none.

spec: client-server-api/_index.md#receipts (the receipt format this reuses)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from twisted.internet import defer

from homeserver.clock import Clock
from homeserver.config.model import DeliveryReceiptsConfig
from homeserver.receipts.handler import DELIVERED
from homeserver.storage.receipts import Delivery, ReceiptStore
from homeserver.streams.notifier import Notifier

logger = logging.getLogger(__name__)

__all__ = ["DELIVERED", "DeliveryRecorder"]


class DeliveryRecorder:
    def __init__(
        self,
        *,
        store: ReceiptStore,
        clock: Clock,
        notifier: Notifier,
        config: DeliveryReceiptsConfig,
    ) -> None:
        self._store = store
        self._clock = clock
        self._notifier = notifier
        self._config = config
        #: (user ID, room ID) -> event ID, waiting for the next write.
        self._pending: dict[tuple[str, str], str] = {}
        self._writing: defer.Deferred[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    def delivered(self, user_id: str, deliveries: Mapping[str, str]) -> None:
        """A device of ``user_id`` received each room's events up to the event ID
        given (room ID -> event ID).  Recorded in the background."""
        if not self._config.enabled or not deliveries:
            return
        for room_id, event_id in deliveries.items():
            # A later response carries later events: the newest wins (the store also
            # never moves a receipt back).
            self._pending[(user_id, room_id)] = event_id
        if self._writing is None:
            self._writing = defer.ensureDeferred(self._write_all())

    async def drain(self) -> None:
        """Wait for the deliveries recorded so far to be written (shutdown, tests)."""
        while self._writing is not None:
            await self._writing

    async def _write_all(self) -> None:
        try:
            while self._pending:
                batch = [
                    Delivery(room_id, user_id, event_id)
                    for (user_id, room_id), event_id in self._pending.items()
                ]
                self._pending = {}
                try:
                    await self._write(batch)
                except Exception:
                    # Ticks are advisory: a failed batch must not stop later ones.
                    logger.warning("could not record %d deliveries", len(batch), exc_info=True)
        finally:
            self._writing = None

    async def _write(self, batch: list[Delivery]) -> None:
        stored = await self._store.set_delivered(
            batch,
            DELIVERED,
            self._clock.time_msec(),
            max_joined_members=self._config.max_joined_members,
        )
        if not stored:
            return
        newest = max(position for position, _ in stored)
        # A reader sent to this position before an earlier one commits would skip it.
        await self._store.wait_until_visible(newest)
        # Only the senders are woken: the ticks are theirs.  The other members get
        # the receipts with whatever wakes them next (the stream has moved), so a
        # message does not wake a whole room twice.
        self._notifier.notify("receipts", newest, users={sender for _, sender in stored})
