"""Which thread an event belongs to, for threaded receipts and per-thread counts.

An event is in a thread when it has an ``m.thread`` relation, or (following other
relations, at most 3 hops as the spec recommends) relates to an event that has one.
Everything else, thread roots included, is in the main timeline.

spec: client-server-api/_index.md#threaded-read-receipts, #threading
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from homeserver.events.event import Event

#: The thread ID of the main timeline in receipts and notification counts.
MAIN_THREAD = "main"

#: Relations followed to find an event's thread (the spec recommends 3).
MAX_HOPS = 3


def direct_thread(content: Mapping[str, Any]) -> str | None:
    """The thread root if ``content`` has an ``m.thread`` relation, else None."""
    relates_to = content.get("m.relates_to")
    if not isinstance(relates_to, dict) or relates_to.get("rel_type") != "m.thread":
        return None
    root = relates_to.get("event_id")
    return root if isinstance(root, str) else None


def _related_event(content: Mapping[str, Any]) -> str | None:
    relates_to = content.get("m.relates_to")
    if not isinstance(relates_to, dict):
        return None
    parent = relates_to.get("event_id")
    return parent if isinstance(parent, str) else None


async def find_thread(event: Event, load: Callable[[str], Awaitable[Event | None]]) -> str | None:
    """The root of the thread ``event`` is in, or None for the main timeline.

    ``load`` fetches a related event (None if unknown, which ends the search).
    """
    current = event
    for hop in range(1, MAX_HOPS + 1):
        content = current.content
        root = direct_thread(content)
        if root is not None:
            return root
        parent_id = _related_event(content)
        if parent_id is None or hop == MAX_HOPS:
            return None
        parent = await load(parent_id)
        if parent is None:
            return None
        current = parent
    return None
