"""Building the ephemeral EDUs (``federation/assembly.py`` calls :func:`build_edus`):
typing, read receipts and presence, both ways.

Hooks wired here: the handlers' callbacks for local changes (``on_local_typing``,
``on_public_receipt``, ``on_local_change``) send to other servers; the EDU registry
hands received ``m.typing``, ``m.receipt`` and ``m.presence`` to the handlers'
``set_remote_typing``, ``apply_remote_receipt`` and ``apply_remote``; the event path's
``on_new_event`` keeps the servers-per-room cache right and exchanges presence on joins.
The handlers name nothing of federation: they are built before it, so they offer
callback lists rather than taking it in their constructors.

spec: server-server-api.md#edus
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from twisted.internet.interfaces import IReactorTime

from federation.edus.common import BackgroundTasks, EduSink, IsJoined
from federation.edus.presence import PresenceEdus, PresenceRooms
from federation.edus.receipts import ReceiptEdus
from federation.edus.rooms import RoomServers
from federation.edus.typing import TypingEdus
from federation.inbound.edus import EduRegistry
from federation.joins import EventLoader
from federation.protocols import JoinedServers
from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.presence.handler import PresenceHandler
from homeserver.receipts.handler import ReceiptsHandler
from homeserver.typing.handler import TypingHandler


@attrs.frozen
class EduServices:
    rooms: RoomServers
    typing: TypingEdus
    receipts: ReceiptEdus
    presence: PresenceEdus
    #: Sends and lookups under way: :meth:`stop` waits for them.
    tasks: BackgroundTasks

    def start(self) -> None:
        self.presence.start()

    async def stop(self) -> None:
        await self.presence.stop()
        await self.tasks.stop()


def build_edus(
    *,
    server_name: str,
    reactor: IReactorTime,
    clock: Clock,
    registry: EduRegistry,
    sender: EduSink | None,
    joined_servers: JoinedServers,
    is_joined: IsJoined,
    events: EventLoader,
    presence_rooms: PresenceRooms,
    #: ``EventPath.on_new_event``.
    on_new_event: list[Callable[[Event, int], None]],
    typing: TypingHandler,
    receipts: ReceiptsHandler,
    presence: PresenceHandler,
) -> EduServices:
    """``sender`` None: EDUs are received, never sent (this server does not federate)."""
    rooms = RoomServers(server_name=server_name, source=joined_servers)
    tasks = BackgroundTasks()
    # First: the other hooks below read the servers of a room just changed.
    on_new_event.append(rooms.on_new_event)
    typing_edus = TypingEdus(
        rooms=rooms, typing=typing, is_joined=is_joined, tasks=tasks, clock=clock, sender=sender
    )
    receipt_edus = ReceiptEdus(
        rooms=rooms,
        receipts=receipts,
        is_joined=is_joined,
        tasks=tasks,
        clock=clock,
        sender=sender,
    )
    presence_edus = PresenceEdus(
        server_name=server_name,
        rooms=rooms,
        presence=presence,
        presence_rooms=presence_rooms,
        events=events,
        reactor=reactor,
        clock=clock,
        sender=sender,
        tasks=tasks,
    )
    typing.on_local_typing.append(typing_edus.on_local_typing)
    receipts.on_public_receipt.append(receipt_edus.on_public_receipt)
    presence.on_local_change.append(presence_edus.on_local_change)
    on_new_event.append(presence_edus.on_new_event)
    registry.register("m.typing", typing_edus.receive)
    registry.register("m.receipt", receipt_edus.receive)
    registry.register("m.presence", presence_edus.receive)
    return EduServices(rooms, typing_edus, receipt_edus, presence_edus, tasks)
