"""Whether a join event is someone entering a room, or a member changing their
profile (a join replacing a join): what is owed to newcomers -- presence, device
lists -- is owed only for the first.  Shared by the EDU and end-to-end modules.

spec: client-server-api/_index.md#mroommember (a join after a join is a profile change)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from homeserver.events.event import Event


class EventLoader(Protocol):
    """``homeserver.storage.events.EventStore``."""

    async def get_events(self, event_ids: Sequence[str]) -> Mapping[str, Event]: ...


async def is_new_join(event: Event, events: EventLoader) -> bool:
    """Whether the ``join`` ``event`` brings its user into the room: the membership
    it replaces (if any, and held) was not a join."""
    replaced = event.internal.replaces_state
    if replaced is None:
        return True
    previous = (await events.get_events([replaced])).get(replaced)
    return previous is None or previous.membership != "join"
