"""What every view of a user's rooms over time reads: ``/sync`` and the legacy
``/events`` and ``/initialSync`` alike, so they see the same streams and filters."""

from __future__ import annotations

import attrs

from homeserver.accountdata.handler import AccountDataHandler
from homeserver.clock import Clock
from homeserver.presence.handler import PresenceHandler
from homeserver.receipts.handler import ReceiptsHandler
from homeserver.rooms.serialize import EventSerializer
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.storage.events import EventStore
from homeserver.storage.timeline import TimelineStore
from homeserver.streams.notifier import Notifier
from homeserver.typing.handler import TypingHandler


@attrs.frozen
class SyncSources:
    clock: Clock
    notifier: Notifier
    events: EventStore
    timeline: TimelineStore
    state: RoomStateReader
    visibility: HistoryVisibilityFilter
    serializer: EventSerializer
    account_data: AccountDataHandler
    receipts: ReceiptsHandler
    typing: TypingHandler
    presence: PresenceHandler
