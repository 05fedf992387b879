"""Stream positions from database sequences, on both engines: they continue above
what is stored after a restart or an upgrade, concurrent writes get distinct
positions without a lock, and a position is announced only once every earlier one
is committed."""

from __future__ import annotations

from typing import Any

import attrs
import psycopg2
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from homeserver.accountdata.handler import AccountDataHandler
from homeserver.clock import Clock
from homeserver.reactor import installed_reactor
from homeserver.receipts.handler import ReceiptsHandler
from homeserver.storage.account_data import AccountDataStore
from homeserver.storage.database import Database
from homeserver.storage.migrations import available_migrations, prepare_database
from homeserver.storage.receipts import Outcome, ReceiptStore
from homeserver.storage.timeline import TimelineStore
from homeserver.storage.transaction import Transaction
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamKey, StreamToken
from tests.receipts.rooms import ALICE, BOB, CAROL, Rooms
from tests.support.database import run_sql

SEQUENCES = ("events_stream", "receipts_stream", "account_data_stream")
#: The migration that moved every stream onto its sequence.
SEQUENCES_MIGRATION = 18


def open_database(database_config: dict[str, Any]) -> Database:
    args = dict(database_config["args"])
    cp_min, cp_max = args.pop("cp_min", 1), args.pop("cp_max", 1)
    return Database.connect(
        database_config["name"], args, reactor=installed_reactor(), cp_min=cp_min, cp_max=cp_max
    )


@attrs.frozen
class Highest:
    """The highest position of each stored stream."""

    events: int
    receipts: int
    account_data: int


async def write_some(db: Database) -> tuple[Highest, str]:
    """A room with events, a receipt and account data; the streams' positions."""
    rooms = Rooms.on(db)
    room = await rooms.public_room(BOB)
    event = await rooms.message(room, ALICE)
    receipts, account_data = ReceiptStore(db), AccountDataStore(db)
    assert (await receipts.set_receipt(room, BOB, "m.read", None, event, 1)).stream_id
    await account_data.set(ALICE, None, "x.a", {})
    await account_data.set(BOB, room, "x.b", {})
    highest = Highest(
        await rooms.events.get_max_stream_ordering(),
        await receipts.get_max_position(),
        await account_data.get_max_stream_id(),
    )
    assert min(attrs.astuple(highest)) > 0
    return highest, room


async def assert_continues_above(db: Database, room: str, before: Highest) -> None:
    """Fresh stores on ``db`` start at ``before`` and write above it."""
    rooms = Rooms.on(db)
    receipts, account_data = ReceiptStore(db), AccountDataStore(db)
    # At start-up everything stored is visible.
    assert await rooms.events.get_max_stream_ordering() == before.events
    assert await receipts.get_max_position() == before.receipts
    assert await account_data.get_max_stream_id() == before.account_data
    event_id = await rooms.message(room, ALICE, "after")
    event = (await rooms.events.get_events([event_id]))[event_id]
    assert event.internal.stream_ordering is not None
    assert event.internal.stream_ordering > before.events
    assert await rooms.events.get_max_stream_ordering() == event.internal.stream_ordering
    stored = await receipts.set_receipt(room, BOB, "m.read", None, event_id, 2)
    assert stored.outcome is Outcome.STORED
    assert stored.stream_id is not None and stored.stream_id > before.receipts
    assert await account_data.set(ALICE, None, "x.a", {"again": True}) > before.account_data


@pytest_twisted.ensureDeferred
async def test_positions_continue_above_the_highest_stored_after_a_restart(
    database_config: dict[str, Any],
) -> None:
    first = open_database(database_config)
    try:
        await prepare_database(first)
        before, room = await write_some(first)
    finally:
        first.close()
    second = open_database(database_config)
    try:
        await prepare_database(second)
        await assert_continues_above(second, room, before)
    finally:
        second.close()


def _rewind_sequences(txn: Transaction) -> None:
    # As before the migration, at worst: events were numbered in the process and
    # never moved ``events_stream``.
    for sequence in SEQUENCES:
        if txn.engine.dialect == "sqlite":
            txn.execute("UPDATE id_sequences SET value = 0 WHERE name = ?", (sequence,))
        else:
            txn.execute("SELECT setval(?, 1, false)", (sequence,))
    txn.execute("DELETE FROM schema_migrations WHERE version = ?", (SEQUENCES_MIGRATION,))


def _upgrade_through_the_sequences_migration(txn: Transaction) -> None:
    # What start-up does for a database from before it (later migrations, already
    # applied here, have nothing to do with the sequences).
    [migration] = [
        m for m in available_migrations(txn.engine.dialect) if m.version == SEQUENCES_MIGRATION
    ]
    migration.apply(txn)
    txn.execute(
        "INSERT INTO schema_migrations (version, name, applied_ts) VALUES (?, ?, 0)",
        (migration.version, migration.name),
    )


@pytest_twisted.ensureDeferred
async def test_an_upgraded_database_continues_above_the_positions_it_holds(
    database_config: dict[str, Any],
) -> None:
    first = open_database(database_config)
    try:
        await prepare_database(first)
        before, room = await write_some(first)
        await first.run_interaction("rewind_sequences", _rewind_sequences)
    finally:
        first.close()
    upgraded = open_database(database_config)
    try:
        await prepare_database(upgraded)
        await upgraded.run_interaction("upgrade", _upgrade_through_the_sequences_migration)
        applied = await upgraded.execute(
            "applied",
            "SELECT COUNT(*) FROM schema_migrations WHERE version = ?",
            SEQUENCES_MIGRATION,
        )
        assert applied == [(1,)]
        await assert_continues_above(upgraded, room, before)
    finally:
        upgraded.close()


@pytest_twisted.ensureDeferred
async def test_advancing_a_sequence_never_moves_it_back(db: Database) -> None:
    def run(txn: Transaction) -> list[int]:
        engine = txn.engine
        engine.create_sequence(txn, "test_positions")
        engine.advance_sequence(txn, "test_positions", 0)  # fresh: nothing to skip
        got = [engine.next_id(txn, "test_positions")]
        engine.advance_sequence(txn, "test_positions", 41)
        got.append(engine.next_id(txn, "test_positions"))
        engine.advance_sequence(txn, "test_positions", 10)
        got.append(engine.next_id(txn, "test_positions"))
        return got

    assert await db.run_interaction("advance", run) == [1, 42, 43]


def record_announcements(notifier: Notifier, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    announced: list[int] = []
    notify = notifier.notify

    def recording(key: StreamKey, position: int, **kwargs: Any) -> None:
        announced.append(position)
        notify(key, position, **kwargs)

    monkeypatch.setattr(notifier, "notify", recording)
    return announced


@pytest_twisted.ensureDeferred
async def test_concurrent_receipts_get_distinct_positions(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    rooms = Rooms.on(db)
    store = ReceiptStore(db)
    notifier = Notifier(reactor, StreamToken())
    handler = ReceiptsHandler(
        store=store,
        events=rooms.events,
        clock=Clock(reactor),
        notifier=notifier,
        position=await store.get_max_position(),
        is_joined=TimelineStore(db, rooms.events).is_joined,
    )
    room_ids = [await rooms.public_room(BOB, CAROL) for _ in range(2)]
    events = {room: await rooms.message(room, ALICE) for room in room_ids}
    announced = record_announcements(notifier, monkeypatch)
    await defer.gatherResults(
        [
            defer.ensureDeferred(handler.set_receipt(user, room, kind, events[room], None))
            for room in room_ids
            for user in (ALICE, BOB, CAROL)
            for kind in ("m.read", "m.read.private")
        ],
        consumeErrors=True,
    )
    # No type is private here, so every receipt is read back.
    stored = await store.get_receipts(room_ids, 0, 10**9, for_user=ALICE, private_type="x.none")
    positions = sorted(receipt.stream_id for receipt in stored)
    assert len(set(positions)) == len(positions) == 12
    assert sorted(announced) == positions
    assert handler.current_position() == positions[-1]
    assert notifier.current_token.receipts == positions[-1]
    assert await store.get_max_position() == positions[-1]


@pytest_twisted.ensureDeferred
async def test_concurrent_account_data_writes_get_distinct_positions(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = Notifier(reactor, StreamToken())
    handler = AccountDataHandler(AccountDataStore(db), notifier)
    await handler.load()
    announced = record_announcements(notifier, monkeypatch)
    contested = [handler.set_global(ALICE, "x.contested", {"n": n}) for n in range(8)]
    others = [handler.set_global(f"@user{n}:hs", "x.own", {"n": n}) for n in range(8)]
    # Read-modify-writes of one row: a conflict re-runs one, no tag is lost.
    tags = [handler.add_tag(ALICE, "!room:hs", f"u.tag{n}", {}) for n in range(3)]
    positions = await defer.gatherResults(
        [defer.ensureDeferred(write) for write in [*contested, *others, *tags]],
        consumeErrors=True,
    )
    assert len(set(positions)) == len(positions)
    assert sorted(announced) == sorted(positions)
    assert handler.current_position() == max(positions) == notifier.current_token.account_data
    # The row holds the write with the highest position, which is the last commit.
    last = max(range(8), key=lambda n: positions[n])
    assert await handler.get_global(ALICE, "x.contested") == {"n": last}
    assert set(await handler.get_tags(ALICE, "!room:hs")) == {"u.tag0", "u.tag1", "u.tag2"}
    changes = await handler.changes(ALICE, 0, handler.current_position())
    assert changes.global_data == {"x.contested": {"n": last}}


async def _sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_later_position_is_announced_only_once_an_earlier_one_commits(
    db: Database, database_config: dict[str, Any]
) -> None:
    if database_config["name"] != "psycopg2":
        pytest.skip("SQLite's one write connection never lets two writes overlap")
    notifier = Notifier(reactor, StreamToken())
    handler = AccountDataHandler(AccountDataStore(db), notifier)
    await handler.load()
    before = await handler.set_global(ALICE, "x.slow", {"n": 0})
    args = {k: v for k, v in database_config["args"].items() if k not in ("cp_min", "cp_max")}
    blocker = psycopg2.connect(**args)
    try:
        blocker.cursor().execute(
            "SELECT 1 FROM account_data WHERE user_id = %s AND data_type = %s FOR UPDATE",
            (ALICE, "x.slow"),
        )
        # Alice's write takes its position, then waits for the locked row.
        slow = defer.ensureDeferred(handler.set_global(ALICE, "x.slow", {"n": 1}))
        for _ in range(200):
            waiting = run_sql(
                database_config,
                "SELECT COUNT(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            if waiting[0][0]:
                break
            await _sleep(0.02)
        else:
            raise AssertionError("Alice's write never waited for the row")
        # Bob's write takes the next position and commits...
        fast = defer.ensureDeferred(handler.set_global(BOB, "x.fast", {}))
        for _ in range(200):
            if run_sql(database_config, "SELECT 1 FROM account_data WHERE user_id = ?", BOB):
                break
            await _sleep(0.02)
        await _sleep(0.1)
        # ...but is not announced while the position below it may still commit.
        assert not fast.called
        assert notifier.current_token.account_data == handler.current_position() == before
        blocker.rollback()
        slow_position, fast_position = await slow, await fast
    finally:
        blocker.close()
    assert before < slow_position < fast_position
    assert notifier.current_token.account_data == fast_position
