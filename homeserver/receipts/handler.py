"""Read receipts: the rules of setting them and their ``m.receipt`` form for /sync.

A receipt is an "up to and including" marker per (user, room, receipt type, thread):
only the latest matters, and it never moves back to an earlier event.  Each change
gets a position in the ``receipts`` stream; ``m.read.private`` receipts are shown
(and announced) to their own user only.  ``m.fully_read`` through the receipt
endpoint sets the fully-read marker, which lives in room account data: this handler
checks the request and hands it to the ``on_fully_read`` callbacks.

Receipts of other servers' users (federation, ``federation/edus/receipts.py``) are
stored the same way through :meth:`ReceiptsHandler.apply_remote_receipt`; local users'
public receipts go to the ``on_public_receipt`` callbacks, which send them to the
room's other servers.

Positions come from the database inside the writing transaction, and writes run
concurrently: a change is announced only once every earlier position is committed or
abandoned (streams/positions.py), so a reader never skips one that commits later.

spec: client-server-api/_index.md#receipts, #post_matrixclientv3roomsroomidreceiptreceipttypeeventid,
#private-read-receipts, #threaded-read-receipts, #fully-read-markers
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from homeserver import errors
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.receipts.threads import MAIN_THREAD, find_thread
from homeserver.storage.events import EventStore
from homeserver.storage.receipts import Outcome, Receipt, ReceiptStore
from homeserver.streams.notifier import Notifier

#: Our unstable "delivered" receipt type (receipts/delivered.py); the server sets it.
DELIVERED = "dev.homeserver.delivered"
READ = "m.read"
READ_PRIVATE = "m.read.private"
FULLY_READ = "m.fully_read"
#: The receipt types stored here (``m.fully_read`` is a marker, not a receipt).
RECEIPT_TYPES = (READ, READ_PRIVATE)

#: ``on_fully_read`` callback: (user ID, room ID, event ID).
FullyReadCallback = Callable[[str, str, str], Awaitable[None]]


class ReceiptsHandler:
    def __init__(
        self,
        *,
        store: ReceiptStore,
        events: EventStore,
        clock: Clock,
        notifier: Notifier,
        position: int,
        is_joined: Callable[[str, str], Awaitable[bool]],
        on_fully_read: Sequence[FullyReadCallback] = (),
    ) -> None:
        """``position``: the stream's current position, ``await store.get_max_position()``;
        ``is_joined(user_id, room_id)``; ``on_fully_read``: where ``m.fully_read`` goes."""
        self._store = store
        self._is_joined = is_joined
        self._events = events
        self._clock = clock
        self._notifier = notifier
        self._position = position
        #: Called for ``m.fully_read`` sent to the receipt endpoint, after the checks.
        self.on_fully_read: list[FullyReadCallback] = list(on_fully_read)
        #: Called with the user ID after each accepted receipt (presence activity).
        self.on_activity: list[Callable[[str], None]] = []
        #: Called with (user ID, room ID) after a read receipt moved (pusher badges).
        self.on_receipt: list[Callable[[str, str], None]] = []
        #: Called with each receipt of a local user that others see (``m.read``), once
        #: stored and announced: federation sends it to the room's other servers.
        self.on_public_receipt: list[Callable[[Receipt], None]] = []

    def current_position(self) -> int:
        """The newest position of the receipts stream announced by this process."""
        return self._position

    async def set_receipt(
        self,
        user_id: str,
        room_id: str,
        receipt_type: str,
        event_id: str,
        thread_id: str | None,
    ) -> None:
        """Move ``user_id``'s receipt of ``receipt_type`` in ``room_id`` to ``event_id``.

        400 ``M_INVALID_PARAM`` for an unknown type or a bad ``thread_id``, 403 if the
        user is not joined to the room, 404 if the event is not in the room.
        """
        if receipt_type not in (*RECEIPT_TYPES, FULLY_READ):
            raise errors.invalid_param(
                f"Unknown receipt type {receipt_type!r}; expected one of "
                f"{READ}, {READ_PRIVATE}, {FULLY_READ}"
            )
        if thread_id is not None:
            _check_thread_id_shape(receipt_type, thread_id)
        if not await self._is_joined(user_id, room_id):
            raise errors.forbidden("You are not joined to this room")
        event = await self._load(event_id)
        if event is None or event.room_id != room_id or event.internal.outlier:
            raise errors.not_found("Unknown event in this room")
        if thread_id is not None:
            await self._check_event_in_thread(event, thread_id)
        for callback in self.on_activity:
            callback(user_id)
        if receipt_type == FULLY_READ:
            await self._set_fully_read(user_id, room_id, event_id)
            return
        ts = self._clock.time_msec()
        result = await self._store.set_receipt(
            room_id, user_id, receipt_type, thread_id, event_id, ts
        )
        if result.outcome is Outcome.UNKNOWN_EVENT:
            raise errors.not_found("Unknown event in this room")
        if result.outcome is not Outcome.STORED:
            return
        assert result.stream_id is not None
        # A reader sent to this position before an earlier one commits would skip it.
        await self._store.wait_until_visible(result.stream_id)
        self._position = max(self._position, result.stream_id)
        for moved in self.on_receipt:
            moved(user_id, room_id)
        if receipt_type == READ_PRIVATE:
            self._notifier.notify("receipts", result.stream_id, users=[user_id])
            return
        self._notifier.notify("receipts", result.stream_id, rooms=[room_id])
        receipt = Receipt(room_id, user_id, receipt_type, thread_id, event_id, ts, result.stream_id)
        for public in self.on_public_receipt:
            public(receipt)

    async def apply_remote_receipt(
        self,
        user_id: str,
        room_id: str,
        receipt_type: str,
        event_id: str,
        thread_id: str | None,
        ts: int,
    ) -> bool:
        """Store the receipt another server sent for its user (the caller checked the
        server speaks for the user, who is joined, and that the type is public).
        False when nothing moved: an event this server does not hold in the room, or
        a receipt not newer than the one stored."""
        result = await self._store.set_receipt(
            room_id, user_id, receipt_type, thread_id, event_id, ts
        )
        if result.outcome is not Outcome.STORED:
            return False
        assert result.stream_id is not None
        await self._store.wait_until_visible(result.stream_id)
        self._position = max(self._position, result.stream_id)
        self._notifier.notify("receipts", result.stream_id, rooms=[room_id])
        return True

    async def receipts_for_rooms(
        self,
        room_ids: Collection[str],
        from_position: int,
        to_position: int,
        *,
        for_user: str,
    ) -> dict[str, dict[str, Any]]:
        """room ID -> the ``m.receipt`` ephemeral event with the receipts that changed in
        (from, to]; ``from_position`` 0 gives everyone's latest receipts (initial sync).

        Rooms without such receipts are left out.  ``m.read.private`` receipts are
        included only when they are ``for_user``'s, delivered receipts
        (``receipts/delivered.py``) only when they are not.
        """
        if not room_ids or to_position <= from_position:
            return {}
        receipts = await self._store.get_receipts(
            room_ids,
            from_position,
            to_position,
            for_user=for_user,
            private_type=READ_PRIVATE,
            # Users have no use for their own delivered receipts; showing them would
            # also wake every recipient's sync again after each delivery.
            others_only_type=DELIVERED,
        )
        contents: dict[str, dict[str, Any]] = {}
        for receipt in receipts:
            data: dict[str, Any] = {"ts": receipt.ts}
            if receipt.thread_id is not None:
                data["thread_id"] = receipt.thread_id
            by_type = contents.setdefault(receipt.room_id, {}).setdefault(receipt.event_id, {})
            by_type.setdefault(receipt.receipt_type, {})[receipt.user_id] = data
        return {
            room_id: {"type": "m.receipt", "content": content}
            for room_id, content in contents.items()
        }

    async def _set_fully_read(self, user_id: str, room_id: str, event_id: str) -> None:
        if not self.on_fully_read:
            raise errors.invalid_param(f"{FULLY_READ} is not supported on this server")
        for callback in self.on_fully_read:
            await callback(user_id, room_id, event_id)

    async def _load(self, event_id: str) -> Event | None:
        return (await self._events.get_events([event_id])).get(event_id)

    async def _check_event_in_thread(self, event: Event, thread_id: str) -> None:
        """spec: 400 when "the event_id is not related to the thread_id"."""
        thread = await find_thread(event, self._load)
        if thread_id == MAIN_THREAD:
            if thread is not None:
                raise errors.invalid_param(
                    f"The event is in thread {thread}, not the main timeline"
                )
        elif thread != thread_id and event.event_id != thread_id:
            raise errors.invalid_param(f"The event is not in thread {thread_id}")


def _check_thread_id_shape(receipt_type: str, thread_id: str) -> None:
    if receipt_type == FULLY_READ:
        raise errors.invalid_param(f"thread_id cannot be given for {FULLY_READ}")
    if not thread_id:
        raise errors.invalid_param("thread_id field must be a non-empty string")
    if thread_id != MAIN_THREAD and not thread_id.startswith("$"):
        raise errors.invalid_param("thread_id must be 'main' or a thread root's event ID")
