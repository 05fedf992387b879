"""Unread counts per room and thread: what counts, what highlights, and what a read
receipt (or the user's own message) clears."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest_twisted
from twisted.internet import reactor

from homeserver.accountdata.handler import AccountDataHandler
from homeserver.events.event import InternalMetadata
from homeserver.push.handler import PushRulesHandler
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.account_data import AccountDataStore
from homeserver.storage.database import Database
from homeserver.storage.receipts import ReceiptStore
from homeserver.storage.timeline import TimelineStore
from homeserver.storage.unread import ScannedEvent, UnreadStore
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken
from homeserver.unread.counter import NotificationCounts, UnreadCounter, UnreadCounts
from tests.receipts.rooms import ALICE, BOB, CAROL, Rooms


class CountingStore(UnreadStore):
    """The store, counting the events the counter reads (the work it does)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.scanned = 0

    async def events_after(
        self, ranges: Mapping[int, int], up_to: int, limit: int
    ) -> dict[int, list[ScannedEvent]]:
        found = await super().events_after(ranges, up_to, limit)
        self.scanned += sum(len(events) for events in found.values())
        return found

    def take_scanned(self) -> int:
        scanned, self.scanned = self.scanned, 0
        return scanned


class Setup:
    def __init__(self, db: Database, batch_size: int = 1000) -> None:
        self.rooms = Rooms.on(db)
        self.receipts = ReceiptStore(db)
        self.push_rules = PushRulesHandler(
            AccountDataHandler(AccountDataStore(db), Notifier(reactor, StreamToken()))
        )
        self.store = CountingStore(db)
        self.counter = UnreadCounter(
            self.store,
            self.rooms.events,
            RoomStateReader(
                self.rooms.events, self.rooms.state, TimelineStore(db, self.rooms.events)
            ),
            self.push_rules,
            batch_size=batch_size,
        )

    async def counts(self, user_id: str, room_id: str) -> UnreadCounts:
        return (await self.counter.counts(user_id, [room_id]))[room_id]

    async def totals(self, user_id: str, room_id: str) -> tuple[int, int]:
        counts = await self.counts(user_id, room_id)
        return counts.notification_count, counts.highlight_count

    async def read(
        self,
        user_id: str,
        room_id: str,
        event_id: str,
        receipt_type: str = "m.read",
        thread: str | None = None,
    ) -> None:
        await self.receipts.set_receipt(room_id, user_id, receipt_type, thread, event_id, 1)


@pytest_twisted.async_yield_fixture
async def setup(db: Database) -> AsyncIterator[Setup]:
    yield Setup(db)


def in_thread(root: str) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}


@pytest_twisted.ensureDeferred
async def test_messages_from_others_count_until_read(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    assert await setup.totals(BOB, room) == (0, 0)
    first = await setup.rooms.message(room, ALICE)
    await setup.rooms.message(room, ALICE)
    third = await setup.rooms.message(room, ALICE)
    assert await setup.totals(BOB, room) == (3, 0)
    await setup.read(BOB, room, first)
    assert await setup.totals(BOB, room) == (2, 0)
    await setup.read(BOB, room, third)
    assert await setup.totals(BOB, room) == (0, 0)
    # Alice's own messages never count for her.
    assert await setup.totals(ALICE, room) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_the_further_of_public_and_private_receipts_wins(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    events = [await setup.rooms.message(room, ALICE, str(i)) for i in range(4)]
    await setup.read(BOB, room, events[2], "m.read.private")
    assert await setup.totals(BOB, room) == (1, 0)
    # A public receipt behind the private one does not rewind the count.
    await setup.read(BOB, room, events[0], "m.read")
    assert await setup.totals(BOB, room) == (1, 0)
    await setup.read(BOB, room, events[3], "m.read")
    assert await setup.totals(BOB, room) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_sending_a_message_marks_the_room_read(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    await setup.rooms.message(room, ALICE)
    await setup.rooms.message(room, ALICE)
    await setup.rooms.message(room, BOB, "replying")
    assert await setup.totals(BOB, room) == (0, 0)
    await setup.rooms.message(room, ALICE)
    assert await setup.totals(BOB, room) == (1, 0)


@pytest_twisted.ensureDeferred
async def test_nothing_from_before_joining_counts(setup: Setup) -> None:
    room = await setup.rooms.public_room()
    for _ in range(3):
        await setup.rooms.message(room, ALICE)
    await setup.rooms.join(room, CAROL)
    await setup.rooms.message(room, ALICE)
    assert await setup.totals(CAROL, room) == (1, 0)


@pytest_twisted.ensureDeferred
async def test_mentions_highlight(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB, CAROL)
    await setup.rooms.message(room, ALICE, "hi Bob", **{"m.mentions": {"user_ids": [BOB]}})
    await setup.rooms.message(room, ALICE, "hi Carol", **{"m.mentions": {"user_ids": [CAROL]}})
    await setup.rooms.message(room, ALICE, "no mention", **{"m.mentions": {}})
    assert await setup.totals(BOB, room) == (3, 1)
    assert await setup.totals(CAROL, room) == (3, 1)


@pytest_twisted.ensureDeferred
async def test_room_mentions_highlight_only_from_powerful_senders(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB, CAROL)
    everyone = {"m.mentions": {"room": True}}
    await setup.rooms.message(room, BOB, "@room from bob (power 0)", **everyone)
    assert await setup.totals(CAROL, room) == (1, 0)
    await setup.rooms.message(room, ALICE, "@room from alice (power 100)", **everyone)
    assert await setup.totals(CAROL, room) == (2, 1)
    # notifications.room in the power levels moves the bar.  The rule reads the
    # power levels when the events are counted, so Bob's earlier @room, counted
    # already, stays as it was (push rules are evaluated as events arrive).
    await setup.rooms.send(
        room,
        "m.room.power_levels",
        ALICE,
        {"users": {ALICE: 100, BOB: 10}, "notifications": {"room": 10}},
        "",
    )
    await setup.rooms.message(room, BOB, "@room again", **everyone)
    assert await setup.totals(CAROL, room) == (3, 2)


@pytest_twisted.ensureDeferred
async def test_notices_edits_reactions_and_state_do_not_count(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    original = await setup.rooms.message(room, ALICE)
    await setup.read(BOB, room, original)
    await setup.rooms.send(room, "m.room.message", ALICE, {"msgtype": "m.notice", "body": "bot"})
    await setup.rooms.message(
        room, ALICE, "* edit", **{"m.relates_to": {"rel_type": "m.replace", "event_id": original}}
    )
    await setup.rooms.send(
        room,
        "m.reaction",
        ALICE,
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": original, "key": "+1"}},
    )
    await setup.rooms.send(room, "m.room.topic", ALICE, {"topic": "new"}, "")
    await setup.rooms.join(room, CAROL)
    assert await setup.totals(BOB, room) == (0, 0)
    await setup.rooms.send(room, "m.room.encrypted", ALICE, {"algorithm": "m.megolm.v1.aes-sha2"})
    await setup.rooms.send(
        room, "m.room.tombstone", ALICE, {"body": "moved", "replacement_room": "!n:x"}, ""
    )
    assert await setup.totals(BOB, room) == (2, 1)


@pytest_twisted.ensureDeferred
async def test_soft_failed_events_do_not_count(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    await setup.rooms.message(room, ALICE)
    await setup.rooms.send(
        room,
        "m.room.message",
        ALICE,
        {"body": "hidden"},
        internal=InternalMetadata(soft_failed=True),
    )
    assert await setup.totals(BOB, room) == (1, 0)


@pytest_twisted.ensureDeferred
async def test_threads_are_counted_and_read_separately(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    root = await setup.rooms.message(room, ALICE, "root")
    await setup.rooms.message(room, ALICE, "t1", **in_thread(root))
    mention = {"m.mentions": {"user_ids": [BOB]}}
    last_in_thread = await setup.rooms.message(room, ALICE, "t2", **in_thread(root), **mention)
    last_main = await setup.rooms.message(room, ALICE, "main")
    counts = await setup.counts(BOB, room)
    assert counts == UnreadCounts(
        notification_count=4,
        highlight_count=1,
        main=NotificationCounts(2, 0),
        threads={root: NotificationCounts(2, 1)},
    )
    assert counts.sync_json(threaded=False) == {
        "unread_notifications": {"notification_count": 4, "highlight_count": 1}
    }
    assert counts.sync_json(threaded=True) == {
        "unread_notifications": {"notification_count": 2, "highlight_count": 0},
        "unread_thread_notifications": {root: {"notification_count": 2, "highlight_count": 1}},
    }
    # A main-timeline receipt leaves the thread unread, and the other way round.
    await setup.read(BOB, room, last_main, thread="main")
    assert await setup.counts(BOB, room) == UnreadCounts(
        2, 1, NotificationCounts(), {root: NotificationCounts(2, 1)}
    )
    await setup.read(BOB, room, last_in_thread, thread=root)
    assert await setup.totals(BOB, room) == (0, 0)
    # An unthreaded receipt reads everything up to it, threads included.
    await setup.rooms.message(room, ALICE, "t3", **in_thread(root))
    latest = await setup.rooms.message(room, ALICE, "main again")
    assert await setup.totals(BOB, room) == (2, 0)
    await setup.read(BOB, room, latest)
    assert await setup.counts(BOB, room) == UnreadCounts()
    assert (await setup.counts(BOB, room)).sync_json(threaded=True) == {
        "unread_notifications": {"notification_count": 0, "highlight_count": 0}
    }


@pytest_twisted.ensureDeferred
async def test_replying_in_a_thread_reads_only_that_thread(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    root = await setup.rooms.message(room, ALICE, "root")
    await setup.rooms.message(room, ALICE, "t1", **in_thread(root))
    await setup.rooms.message(room, ALICE, "main")
    await setup.rooms.message(room, BOB, "my reply", **in_thread(root))
    counts = await setup.counts(BOB, room)
    assert (counts.main, dict(counts.threads)) == (NotificationCounts(2, 0), {})


@pytest_twisted.ensureDeferred
async def test_counts_cover_many_rooms_at_once_and_only_joined_ones(setup: Setup) -> None:
    rooms = [await setup.rooms.public_room(BOB) for _ in range(3)]
    for index, room_id in enumerate(rooms):
        for _ in range(index):
            await setup.rooms.message(room_id, ALICE)
    elsewhere = await setup.rooms.public_room()
    counts = await setup.counter.counts(BOB, [*rooms, elsewhere])
    assert {room_id: c.notification_count for room_id, c in counts.items()} == {
        rooms[0]: 0,
        rooms[1]: 1,
        rooms[2]: 2,
    }


@pytest_twisted.ensureDeferred
async def test_counts_are_exact_beyond_one_batch(db: Database) -> None:
    setup = Setup(db, batch_size=5)
    room = await setup.rooms.public_room(BOB)
    sent = [await setup.rooms.message(room, ALICE, str(index)) for index in range(12)]
    assert await setup.totals(BOB, room) == (12, 0)
    # The backlog is read once, in batches; then only what follows it.
    assert setup.store.take_scanned() == 12
    await setup.rooms.message(room, ALICE, "one more")
    assert await setup.totals(BOB, room) == (13, 0)
    assert setup.store.take_scanned() == 1
    assert await setup.totals(BOB, room) == (13, 0)
    assert setup.store.take_scanned() == 0
    # A receipt in the middle: only the events after it are read again.
    await setup.read(BOB, room, sent[8])
    assert await setup.totals(BOB, room) == (4, 0)
    assert setup.store.take_scanned() == 4


@pytest_twisted.ensureDeferred
async def test_a_checkpoint_outlives_the_counter_that_wrote_it(db: Database) -> None:
    first = Setup(db)
    room = await first.rooms.public_room(BOB)
    mention = {"m.mentions": {"user_ids": [BOB]}}
    await first.rooms.message(room, ALICE, "hi bob", **mention)
    for index in range(5):
        await first.rooms.message(room, ALICE, str(index))
    assert await first.totals(BOB, room) == (6, 1)
    # A new process reads the stored counts and only the event sent since.
    second = Setup(db)
    await first.rooms.message(room, ALICE, "later", **mention)
    assert await second.totals(BOB, room) == (7, 2)
    assert second.store.take_scanned() == 1


@pytest_twisted.ensureDeferred
async def test_a_threaded_receipt_recounts_only_its_thread(db: Database) -> None:
    setup = Setup(db)
    room = await setup.rooms.public_room(BOB)
    root = await setup.rooms.message(room, ALICE, "root")
    in_root = [await setup.rooms.message(room, ALICE, str(i), **in_thread(root)) for i in range(3)]
    for index in range(4):
        await setup.rooms.message(room, ALICE, f"main {index}")
    counts = await setup.counts(BOB, room)
    assert (counts.main, dict(counts.threads)) == (
        NotificationCounts(5, 0),
        {root: NotificationCounts(3, 0)},
    )
    setup.store.take_scanned()
    await setup.read(BOB, room, in_root[1], thread=root)
    counts = await setup.counts(BOB, room)
    assert (counts.main, dict(counts.threads)) == (
        NotificationCounts(5, 0),
        {root: NotificationCounts(1, 0)},
    )
    # Read again from the receipt on: the thread's last event and the 4 main ones.
    assert setup.store.take_scanned() == 5
    # The user's reply in the thread reads it, and the checkpoint keeps that.
    await setup.rooms.message(room, BOB, "reply", **in_thread(root))
    await setup.rooms.message(room, ALICE, "main again")
    counts = await setup.counts(BOB, room)
    assert (counts.main, dict(counts.threads)) == (NotificationCounts(6, 0), {})
    assert setup.store.take_scanned() == 2


@pytest_twisted.ensureDeferred
async def test_a_user_rule_muting_a_room_stops_its_counts(setup: Setup) -> None:
    room_id = await setup.rooms.public_room(BOB)
    await setup.rooms.message(room_id, ALICE, "hello")
    assert await setup.totals(BOB, room_id) == (1, 0)
    await setup.push_rules.put_rule(BOB, "room", room_id, {"actions": []}, before=None, after=None)
    await setup.rooms.message(room_id, ALICE, "still talking")
    assert await setup.totals(BOB, room_id) == (0, 0)
    # Bob's rules are his alone.
    await setup.rooms.message(room_id, BOB, "hi alice")
    assert await setup.totals(ALICE, room_id) == (1, 0)


@pytest_twisted.ensureDeferred
async def test_a_keyword_rule_highlights_and_the_master_rule_silences(setup: Setup) -> None:
    room_id = await setup.rooms.public_room(BOB)
    await setup.push_rules.put_rule(
        BOB,
        "content",
        "cake",
        {"pattern": "cake", "actions": ["notify", {"set_tweak": "highlight"}]},
        before=None,
        after=None,
    )
    await setup.rooms.message(room_id, ALICE, "there is cake in the kitchen")
    await setup.rooms.message(room_id, ALICE, "cakewalk is not a match")
    assert await setup.totals(BOB, room_id) == (2, 1)
    await setup.push_rules.set_enabled(BOB, "override", ".m.rule.master", True)
    assert await setup.totals(BOB, room_id) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_a_rule_change_recounts_and_undoing_it_restores_the_counts(setup: Setup) -> None:
    room_id = await setup.rooms.public_room(BOB)
    for index in range(3):
        await setup.rooms.message(room_id, ALICE, str(index))
    assert await setup.totals(BOB, room_id) == (3, 0)
    await setup.push_rules.put_rule(BOB, "room", room_id, {"actions": []}, before=None, after=None)
    assert await setup.totals(BOB, room_id) == (0, 0)
    await setup.rooms.message(room_id, ALICE, "muted")
    assert await setup.totals(BOB, room_id) == (0, 0)
    await setup.push_rules.delete_rule(BOB, "room", room_id)
    assert await setup.totals(BOB, room_id) == (4, 0)
