"""DeviceListTracker on both engines: the answer for a span too long to work through.

The everyday rules (joins, leaves, key uploads) are tested through the real server in
tests/api/client/test_device_lists.py.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from homeserver.e2ee import device_lists
from homeserver.e2ee.device_lists import DeviceListTracker
from homeserver.storage.database import Database
from homeserver.storage.device_lists import DeviceListStore
from homeserver.storage.events import EventStore
from homeserver.storage.state import StateStore
from homeserver.storage.timeline import TimelineStore
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken


def new_tracker(db: Database) -> DeviceListTracker:
    events = EventStore(db, StateStore(db))
    return DeviceListTracker(
        DeviceListStore(db, events),
        timeline=TimelineStore(db, events),
        events=events,
        notifier=Notifier(reactor, StreamToken()),
    )


@pytest_twisted.ensureDeferred
async def test_a_span_with_too_many_changes_reports_every_room_mate_changed(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device_lists, "MAX_CHANGES_READ", 2)
    tracker = new_tracker(db)
    await tracker.load()
    for user in ("@a:hs", "@b:hs", "@c:hs"):
        await tracker.user_devices_changed(user)
    now = StreamToken(device_lists=await tracker.load())
    # A user in no room has no room-mates: only themself to re-query.
    assert await tracker.changes("@a:hs", StreamToken(), now) == (["@a:hs"], [])
    # Within the limit the span is worked through: nobody shares a room with @a.
    since = StreamToken(device_lists=now.device_lists - 2)
    assert await tracker.changes("@a:hs", since, now) == ([], [])
