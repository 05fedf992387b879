"""``m.receipt`` EDUs: local users' read receipts to the room's other servers, and
theirs stored like local ones (so /sync and the stream show them).

Only ``m.read`` crosses servers.  ``m.read.private`` is private by definition.  Our
``dev.homeserver.delivered`` receipts (receipts/delivered.py) are public between the
members of a room on this server but are not federated: the server writes one per
member per room whenever a response delivers a message, so federating them would send
an EDU back to every server in the room for each local recipient of each message,
for a type no other implementation knows (they would store it and pass it to clients
that ignore it); and what it means — a device of the recipient received it — is this
server's own observation.  Inbound, other types are ignored for the same reason in
reverse: a remote server could otherwise create rows of arbitrary types.

Outbound, one EDU per (room, user, thread) is pending per destination at most (a newer
receipt replaces it).  Inbound, each receipt is applied only if the user belongs to
the sending server and is joined to the room and both servers are in the room; a
receipt of an event we do not hold is dropped (the store keeps receipts of known
events only).  The rooms' server ACLs were applied before: the transaction handler
(``federation/inbound/transactions.py``) removes the rooms that deny the sender.

spec: server-server-api.md#receipts,
data/api/server-server/definitions/event-schemas/schema/m.receipt.yaml
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from federation.edus.common import BackgroundTasks, EduSink, IsJoined
from federation.edus.rooms import RoomServers
from federation.identifiers import is_user_of
from homeserver.clock import Clock
from homeserver.identifiers import is_valid_room_id
from homeserver.receipts.handler import READ, ReceiptsHandler
from homeserver.receipts.threads import MAIN_THREAD
from homeserver.storage.receipts import Receipt

logger = logging.getLogger(__name__)

EDU_TYPE = "m.receipt"
#: Receipts applied from one EDU at most (rooms x users x event IDs); the rest are
#: dropped: a server has no reason to send more at once for its own users.
MAX_RECEIPTS_PER_EDU = 1_000
#: Event IDs taken per receipt (the spec allows one; Synapse's format allows several).
MAX_EVENT_IDS = 10


class ReceiptEdus:
    def __init__(
        self,
        *,
        rooms: RoomServers,
        receipts: ReceiptsHandler,
        is_joined: IsJoined,
        tasks: BackgroundTasks,
        clock: Clock,
        sender: EduSink | None,
    ) -> None:
        self._rooms = rooms
        self._receipts = receipts
        self._is_joined = is_joined
        self._tasks = tasks
        self._clock = clock
        self._sender = sender
        #: The newest receipt per (room, user, type, thread) not yet handed to the
        #: sender: whichever send gets past its lookup first sends the newest.
        self._unsent: dict[tuple[str, str, str, str | None], Receipt] = {}

    # --- outbound ------------------------------------------------------------------------

    def on_public_receipt(self, receipt: Receipt) -> None:
        """``ReceiptsHandler.on_public_receipt``."""
        if self._sender is None or receipt.receipt_type != READ:
            return
        key = (receipt.room_id, receipt.user_id, receipt.receipt_type, receipt.thread_id)
        self._unsent[key] = receipt
        self._tasks.run(
            self._send(key), f"send the receipt of {receipt.user_id} in {receipt.room_id}"
        )

    async def _send(self, key: tuple[str, str, str, str | None]) -> None:
        assert self._sender is not None
        try:
            servers = await self._rooms.other_servers(key[0])
        finally:
            receipt = self._unsent.pop(key, None)
        if receipt is None:
            return  # a later receipt's send got here first and sent the newest
        data: dict[str, Any] = {"ts": receipt.ts}
        if receipt.thread_id is not None:
            data["thread_id"] = receipt.thread_id
        content = {
            receipt.room_id: {
                receipt.receipt_type: {
                    receipt.user_id: {"event_ids": [receipt.event_id], "data": data}
                }
            }
        }
        for server in sorted(servers):
            self._sender.send_edu(server, EDU_TYPE, content, coalesce_key=key)

    # --- inbound -------------------------------------------------------------------------

    async def receive(self, origin: str, content: Mapping[str, Any]) -> None:
        """The ``m.receipt`` handler of the EDU registry."""
        budget = MAX_RECEIPTS_PER_EDU
        for room_id, by_type in content.items():
            if budget <= 0:
                logger.info("Ignoring the rest of a receipt EDU from %s: too many", origin)
                return
            if not is_valid_room_id(room_id) or not isinstance(by_type, dict):
                continue
            users = by_type.get(READ)
            if not isinstance(users, dict) or not users:
                continue
            if not await self._room_admits(origin, room_id):
                continue
            for user_id, receipt in users.items():
                if budget <= 0:
                    break
                budget -= 1
                if not is_user_of(user_id, origin):
                    logger.info("Ignoring a receipt of %r from %s: not its user", user_id, origin)
                    continue
                if not isinstance(receipt, dict):
                    continue
                budget -= await self._apply(room_id, user_id, receipt)

    async def _room_admits(self, origin: str, room_id: str) -> bool:
        if not await self._rooms.we_share(room_id, origin):
            logger.info("Ignoring receipts in %s from %s: not both in the room", room_id, origin)
            return False
        return True

    async def _apply(self, room_id: str, user_id: str, receipt: Mapping[str, Any]) -> int:
        """Store one user's receipt; returns how many event IDs it tried."""
        event_ids = receipt.get("event_ids")
        if not isinstance(event_ids, list):
            return 0
        event_ids = [e for e in event_ids[:MAX_EVENT_IDS] if isinstance(e, str)]
        if not event_ids or not await self._is_joined(user_id, room_id):
            return len(event_ids)
        data = receipt.get("data")
        data = data if isinstance(data, dict) else {}
        ts = data.get("ts")
        if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
            ts = self._clock.time_msec()
        thread_id = _thread_id(data.get("thread_id"))
        for event_id in event_ids:
            # The store keeps the newest: an older one among several changes nothing.
            await self._receipts.apply_remote_receipt(
                user_id, room_id, READ, event_id, thread_id, ts
            )
        return len(event_ids)


def _thread_id(value: object) -> str | None:
    """A thread ID as the client API accepts it (``main`` or an event ID); anything
    else is read as no thread (Synapse: "if the thread ID is invalid, consider it
    missing")."""
    if isinstance(value, str) and (value == MAIN_THREAD or value.startswith("$")):
        return value
    return None
