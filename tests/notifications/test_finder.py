"""The work ``GET /notifications`` does per request, in-process on both engines: the
scan bound holds whatever the events are (own messages count against it), rooms are
merged newest first without reading a batch from every room, and pages cut short by
the bound join up without loss or repeats.

spec: client-server-api/modules/push.md (``GET /notifications``)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest_twisted
from twisted.internet import reactor

from homeserver.accountdata.handler import AccountDataHandler
from homeserver.events.event import Event
from homeserver.notifications.finder import NotificationFinder, NotificationPage
from homeserver.push.handler import PushRulesHandler
from homeserver.rooms.state import RoomStateReader
from homeserver.rooms.visibility import HistoryVisibilityFilter
from homeserver.storage.account_data import AccountDataStore
from homeserver.storage.database import Database
from homeserver.storage.events import EventStore
from homeserver.storage.notifications import NotificationStore, RoomEvent
from homeserver.storage.timeline import TimelineStore
from homeserver.storage.unread import UnreadStore
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken
from tests.receipts.rooms import ALICE, BOB, Rooms


class CountingStore(NotificationStore):
    """The store, counting the events it reads (the work a request does)."""

    rows = 0

    async def events_before(
        self, windows: Mapping[int, tuple[int, int, int]]
    ) -> dict[int, list[RoomEvent]]:
        found = await super().events_before(windows)
        self.rows += sum(len(events) for events in found.values())
        return found


class CountingEvents(EventStore):
    """The event store, counting the messages it loads (state is read for room facts
    and visibility, per room, whatever the number of messages)."""

    loaded = 0

    async def get_events(self, event_ids: Sequence[str]) -> dict[str, Event]:
        found = await super().get_events(event_ids)
        self.loaded += sum(1 for event in found.values() if not event.is_state())
        return found


class Setup:
    def __init__(self, db: Database, max_scanned: int) -> None:
        self.rooms = Rooms.on(db)
        self.store = CountingStore(db)
        self.events = CountingEvents(db, self.rooms.state)
        timeline = TimelineStore(db, self.events)
        state = RoomStateReader(self.events, self.rooms.state, timeline)
        account_data = AccountDataHandler(AccountDataStore(db), Notifier(reactor, StreamToken()))
        self.finder = NotificationFinder(
            store=self.store,
            unread=UnreadStore(db),
            events=self.events,
            timeline=timeline,
            state=state,
            visibility=HistoryVisibilityFilter(self.events, state),
            push_rules=PushRulesHandler(account_data),
            account_data=account_data,
            max_scanned=max_scanned,
        )

    async def all_pages(self, user_id: str, limit: int) -> list[NotificationPage]:
        pages = []
        before = None
        while True:
            self.store.rows = self.events.loaded = 0
            page = await self.finder.page(user_id, before=before, limit=limit, only_highlight=False)
            pages.append(page)
            # The work of one request: rows read and events loaded stay near the bound.
            assert self.events.loaded <= self.finder._max_scanned
            assert self.store.rows <= 3 * self.finder._max_scanned
            if page.next_before is None:
                return pages
            before = page.next_before


@pytest_twisted.ensureDeferred
async def test_own_messages_count_against_the_scan_bound(db: Database) -> None:
    setup = Setup(db, max_scanned=10)
    room = await setup.rooms.public_room(BOB)
    first = await setup.rooms.message(room, ALICE, "before")
    for index in range(35):
        await setup.rooms.message(room, BOB, f"own {index}")
    last = await setup.rooms.message(room, ALICE, "after")

    pages = await setup.all_pages(BOB, limit=50)
    # 37 events at 10 per request: the first page stops at the bound with a token.
    assert pages[0].next_before is not None
    assert len(pages) >= 4
    found = [n.event.event_id for page in pages for n in page.notifications]
    assert found == [last, first]


@pytest_twisted.ensureDeferred
async def test_many_rooms_are_merged_without_reading_each_one_deeply(db: Database) -> None:
    setup = Setup(db, max_scanned=1000)
    rooms = [await setup.rooms.public_room(BOB) for _ in range(12)]
    for room in rooms:
        for index in range(15):
            await setup.rooms.message(room, ALICE, f"message {index}")
    setup.store.rows = setup.events.loaded = 0
    page = await setup.finder.page(BOB, before=None, limit=5, only_highlight=False)
    assert [n.room_id for n in page.notifications] == [rooms[-1]] * 5
    assert page.next_before is not None
    # A few events per room and a few more of the newest one: not 15 from each.
    assert setup.store.rows <= 12 * 2 + 16
    assert setup.events.loaded <= 25


@pytest_twisted.ensureDeferred
async def test_pages_cut_short_by_the_bound_join_up_across_rooms(db: Database) -> None:
    setup = Setup(db, max_scanned=7)
    rooms = [await setup.rooms.public_room(BOB) for _ in range(4)]
    sent = []
    for index in range(30):
        # Rooms at uneven rates, with Bob's own messages in between.
        room = rooms[(index * index) % 4]
        sender = BOB if index % 3 == 0 else ALICE
        event_id = await setup.rooms.message(room, sender, f"message {index}")
        if sender == ALICE:
            sent.append(event_id)
    pages = await setup.all_pages(BOB, limit=3)
    found = [n.event.event_id for page in pages for n in page.notifications]
    assert found == list(reversed(sent))
    positions = [n.position for page in pages for n in page.notifications]
    assert positions == sorted(positions, reverse=True)
