"""``m.typing`` EDUs: local users' typing to the room's other servers, and theirs to
our clients.

Outbound: the typing handler tells us of every request of a local user
(``TypingHandler.on_local_typing``) and of their time-outs.  A start is sent at once;
repeats while typing only every :data:`RESEND_INTERVAL_MS`, often enough that the
receiving server (which shows a remote typist for 60 s, as we do) never drops them
while the user keeps typing; a stop (or time-out) once.  One EDU per (room, user) is
pending per destination at most: a newer one replaces it (``coalesce_key``).

Inbound: the EDU is applied only if the user belongs to the sending server, is joined
to the room and both servers are in it; anything else is dropped without an error
(EDUs have no answer).  The room's server ACL was applied before: EDUs arrive only in
transactions, and ``federation/inbound/transactions.py`` drops the typing of rooms
whose ACL denies the sender before handing it here.

spec: server-server-api.md#typing-notifications,
data/api/server-server/definitions/event-schemas/schema/m.typing.yaml
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from federation.edus.common import BackgroundTasks, EduSink, IsJoined
from federation.edus.rooms import RoomServers, room_id_of
from federation.identifiers import is_user_of
from homeserver.clock import Clock
from homeserver.typing.handler import TypingHandler

logger = logging.getLogger(__name__)

EDU_TYPE = "m.typing"
#: A local user still typing is announced again after this long.
RESEND_INTERVAL_MS = 20_000


class TypingEdus:
    def __init__(
        self,
        *,
        rooms: RoomServers,
        typing: TypingHandler,
        is_joined: IsJoined,
        tasks: BackgroundTasks,
        clock: Clock,
        sender: EduSink | None,
    ) -> None:
        """``sender`` None: receive only (this server sends nothing)."""
        self._rooms = rooms
        self._typing = typing
        self._is_joined = is_joined
        self._tasks = tasks
        self._clock = clock
        self._sender = sender
        #: (room ID, user ID) of local typists -> when their typing was last sent.
        self._sent: dict[tuple[str, str], int] = {}

    # --- outbound ------------------------------------------------------------------------

    def on_local_typing(self, room_id: str, user_id: str, typing: bool) -> None:
        """``TypingHandler.on_local_typing``."""
        if self._sender is None:
            return
        key = (room_id, user_id)
        if typing:
            now = self._clock.time_msec()
            last = self._sent.get(key)
            if last is not None and now - last < RESEND_INTERVAL_MS:
                return
            self._sent[key] = now
        elif self._sent.pop(key, None) is None:
            return  # never said to be typing
        self._tasks.run(self._send(room_id, user_id), f"send typing of {user_id} in {room_id}")

    async def _send(self, room_id: str, user_id: str) -> None:
        assert self._sender is not None
        servers = await self._rooms.other_servers(room_id)
        # The state as of now, not as of the call: a start and a stop racing through
        # the lookup above then both send the latest, whichever is queued last.
        content = {
            "room_id": room_id,
            "user_id": user_id,
            "typing": (room_id, user_id) in self._sent,
        }
        for server in sorted(servers):
            self._sender.send_edu(server, EDU_TYPE, content, coalesce_key=(room_id, user_id))

    # --- inbound -------------------------------------------------------------------------

    async def receive(self, origin: str, content: Mapping[str, Any]) -> None:
        """The ``m.typing`` handler of the EDU registry."""
        room_id = room_id_of(content)
        user_id = content.get("user_id")
        typing = content.get("typing")
        if room_id is None or not isinstance(typing, bool):
            logger.info("Ignoring a malformed typing EDU from %s", origin)
            return
        if not is_user_of(user_id, origin):
            logger.info("Ignoring typing of %r from %s: not its user", user_id, origin)
            return
        assert isinstance(user_id, str)
        if not await self._rooms.we_share(room_id, origin):
            logger.info("Ignoring typing in %s from %s: not both in the room", room_id, origin)
            return
        if not await self._is_joined(user_id, room_id):
            logger.info("Ignoring typing of %s in %s: not joined", user_id, room_id)
            return
        self._typing.set_remote_typing(user_id, room_id, typing)
