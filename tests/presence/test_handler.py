"""The presence handler on a fake clock with a real store (both engines): timeouts
fire when they should from one timer, only visible changes take a stream position,
``sync_events`` answers by token, and presence survives a new handler.

spec: client-server-api/modules/presence.md; design: docs/live-status.md
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor as real_reactor
from twisted.internet import task

from homeserver.clock import Clock
from homeserver.config.model import PresenceConfig
from homeserver.errors import MatrixError
from homeserver.presence import handler as handler_module
from homeserver.presence.handler import NOTIFY_BATCH_SECONDS, PresenceHandler
from homeserver.presence.record import OFFLINE, ONLINE, UNAVAILABLE
from homeserver.storage.database import Database
from homeserver.storage.presence import PresenceStore
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken
from tests.receipts.rooms import ALICE, BOB, CAROL, Rooms

DAVE = "@dave:example.org"
#: Seconds, as the fake clock counts: idle 300 s, offline 30 s after the last
#: connection, currently active for 60 s.
CONFIG = PresenceConfig(
    idle_timeout_ms=300_000, sync_online_timeout_ms=30_000, last_active_granularity_ms=60_000
)
START = 1_700_000_000
#: About a millisecond, exact in binary so the fake clock adds up without rounding.
JUST = 1 / 1024


class Setup:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.rooms = Rooms.on(db)
        self.store = PresenceStore(db)
        self.clock = task.Clock()
        self.clock.advance(START)
        self.notifier = Notifier(self.clock, StreamToken())
        self.presence = self.handler()

    def handler(self, config: PresenceConfig = CONFIG) -> PresenceHandler:
        return PresenceHandler(
            reactor=self.clock,
            clock=Clock(self.clock),
            config=config,
            store=self.store,
            notifier=self.notifier,
        )

    async def content(self, user_id: str, handler: PresenceHandler | None = None) -> dict[str, Any]:
        """``user_id``'s presence as they see it themselves."""
        return await (handler or self.presence).presence_of(user_id, user_id)

    async def state(self, user_id: str) -> str:
        state: str = (await self.content(user_id))["presence"]
        return state

    async def senders(self, observer: str, since: int | None) -> list[tuple[str, str]]:
        """(sender, presence) of the events ``observer``'s sync from ``since`` gets."""
        events = await self.presence.sync_events(observer, since, self.presence.current_position())
        return [(event["sender"], event["content"]["presence"]) for event in events]


@pytest_twisted.async_yield_fixture
async def setup(db: Database) -> AsyncIterator[Setup]:
    setup = Setup(db)
    yield setup
    await setup.presence.stop()


async def eventually(condition: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Wait (on the real reactor) for background work such as a database read."""
    for _ in range(int(within / 0.01)):
        if await condition():
            return
        await task.deferLater(real_reactor, 0.01, lambda: None)
    assert await condition()


# -- timeouts --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_disconnected_user_goes_offline_after_the_sync_online_timeout(
    setup: Setup,
) -> None:
    connection = setup.presence.connect(BOB, ONLINE)
    assert await setup.state(BOB) == ONLINE
    setup.clock.advance(10)
    connection.close()
    setup.clock.advance(30 - JUST)
    assert await setup.state(BOB) == ONLINE
    before = setup.presence.current_position()
    setup.clock.advance(JUST)
    assert await setup.content(BOB) == {"presence": OFFLINE, "last_active_ago": 40_000}
    assert setup.presence.current_position() == before + 1
    # Nothing else happens, and once the deadlines that no longer apply have passed,
    # no timer stays armed.
    setup.clock.advance(600)
    assert setup.presence.current_position() == before + 1
    assert await setup.content(BOB) == {"presence": OFFLINE, "last_active_ago": 640_000}
    assert setup.clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_a_connected_user_stops_being_currently_active_then_goes_idle(
    setup: Setup,
) -> None:
    connection = setup.presence.connect(BOB, ONLINE)
    assert (await setup.content(BOB))["currently_active"] is True
    start = setup.presence.current_position()
    setup.clock.advance(60 - JUST)
    assert (await setup.content(BOB))["currently_active"] is True
    setup.clock.advance(JUST)
    assert await setup.content(BOB) == {
        "presence": ONLINE,
        "last_active_ago": 60_000,
        "currently_active": False,
    }
    assert setup.presence.current_position() == start + 1
    setup.clock.advance(240 - JUST)
    assert await setup.state(BOB) == ONLINE
    setup.clock.advance(JUST)
    assert await setup.content(BOB) == {
        "presence": UNAVAILABLE,
        "last_active_ago": 300_000,
        "currently_active": False,
    }
    assert setup.presence.current_position() == start + 2
    # Still connected: never offline however long it takes.
    setup.clock.advance(3_600)
    assert await setup.state(BOB) == UNAVAILABLE
    connection.close()
    setup.clock.advance(30)
    assert await setup.state(BOB) == OFFLINE


@pytest_twisted.ensureDeferred
async def test_activity_pushes_the_deadlines_back(setup: Setup) -> None:
    connection = setup.presence.connect(BOB, ONLINE)
    setup.clock.advance(50)
    setup.presence.record_activity(BOB)
    position = setup.presence.current_position()
    # The first deadline (60 s after connecting) passes with nothing to do.
    setup.clock.advance(59)
    assert setup.presence.current_position() == position
    setup.clock.advance(1 - JUST)
    assert (await setup.content(BOB))["currently_active"] is True
    setup.clock.advance(JUST)
    assert (await setup.content(BOB))["currently_active"] is False
    setup.clock.advance(240 - JUST)
    assert await setup.state(BOB) == ONLINE
    setup.clock.advance(JUST)
    assert await setup.state(BOB) == UNAVAILABLE
    # Activity brings an idle user straight back.
    setup.presence.record_activity(BOB)
    assert (await setup.content(BOB))["currently_active"] is True
    assert await setup.state(BOB) == ONLINE
    connection.close()


@pytest_twisted.ensureDeferred
async def test_disconnecting_brings_the_offline_deadline_forward(setup: Setup) -> None:
    connection = setup.presence.connect(BOB, ONLINE)
    setup.clock.advance(1)
    connection.close()
    # The timer armed for the currently_active deadline (60 s) must not be the only one.
    setup.clock.advance(30 - JUST)
    assert await setup.state(BOB) == ONLINE
    setup.clock.advance(JUST)
    assert await setup.state(BOB) == OFFLINE


@pytest_twisted.ensureDeferred
async def test_reconnecting_in_time_or_a_second_connection_keeps_the_user_online(
    setup: Setup,
) -> None:
    first = setup.presence.connect(BOB, ONLINE)
    first.close()
    setup.clock.advance(20)
    second = setup.presence.connect(BOB, ONLINE)
    third = setup.presence.connect(BOB, ONLINE)
    second.close()
    second.close()  # closing twice counts once
    setup.clock.advance(40)
    assert await setup.state(BOB) == ONLINE
    third.close()
    setup.clock.advance(30 - JUST)
    assert await setup.state(BOB) == ONLINE
    setup.clock.advance(JUST)
    assert await setup.state(BOB) == OFFLINE


@pytest_twisted.ensureDeferred
async def test_heartbeats_keep_a_stream_connected_and_active_ones_count_as_activity(
    setup: Setup,
) -> None:
    stream = setup.presence.connect(BOB, ONLINE)
    setup.clock.advance(200)
    stream.heartbeat(active=False)
    setup.clock.advance(100)
    # Passive heartbeats are not activity: idle 300 s after connecting.
    assert await setup.state(BOB) == UNAVAILABLE
    stream.heartbeat(active=True)
    assert await setup.content(BOB) == {
        "presence": ONLINE,
        "last_active_ago": 0,
        "currently_active": True,
    }
    stream.close()
    stream.heartbeat(active=True)  # after close: ignored
    setup.clock.advance(30)
    assert await setup.state(BOB) == OFFLINE


@pytest_twisted.ensureDeferred
async def test_many_users_share_one_timer(setup: Setup) -> None:
    # User n disconnects at second n, so goes offline at second n + 30.
    users = [f"@user{n}:example.org" for n in range(50)]
    for n, user_id in enumerate(users):
        setup.clock.advance(1 if n else 0)
        setup.presence.connect(user_id, ONLINE).close()
        # One timer for every deadline, besides the batch announcing changes to rooms.
        assert len(setup.clock.getDelayedCalls()) <= 2
    setup.clock.advance(0.5)
    states = [await setup.state(user_id) for user_id in users]
    assert states == [OFFLINE] * 20 + [ONLINE] * 30
    setup.clock.advance(30)
    assert {await setup.state(user_id) for user_id in users} == {OFFLINE}
    position = setup.presence.current_position()
    setup.clock.advance(600)
    assert setup.presence.current_position() == position
    assert setup.clock.getDelayedCalls() == []


# -- what makes a stream position ----------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_activity_of_an_online_currently_active_user_announces_nothing(
    setup: Setup,
) -> None:
    stream = setup.presence.connect(BOB, ONLINE)
    position = setup.presence.current_position()
    token = setup.notifier.current_token
    setup.clock.advance(5)
    stream.heartbeat(active=True)
    stream.heartbeat(active=False)
    setup.presence.record_activity(BOB)
    again = setup.presence.connect(BOB, ONLINE)
    again.close()
    await setup.presence.set_presence(BOB, ONLINE, None)
    assert setup.presence.current_position() == position
    assert setup.notifier.current_token == token
    assert not await setup.notifier.wait_for_changes(BOB, [], token, 0)
    assert await setup.senders(BOB, position) == []
    # ... but "last seen" moved all the same.
    setup.clock.advance(1)
    assert (await setup.content(BOB))["last_active_ago"] == 1_000
    # A status message is something others see.
    await setup.presence.set_presence(BOB, ONLINE, "busy")
    assert setup.presence.current_position() == position + 1
    assert setup.notifier.current_token.presence == position + 1
    assert await setup.notifier.wait_for_changes(BOB, [], token, 0)
    stream.close()


@pytest_twisted.ensureDeferred
async def test_set_presence_offline_on_a_connection_changes_nothing(setup: Setup) -> None:
    position = setup.presence.current_position()
    connection = setup.presence.connect(BOB, OFFLINE)
    connection.heartbeat(active=False)
    connection.close()
    assert await setup.state(BOB) == OFFLINE
    assert setup.presence.current_position() == position
    # An online user syncing with set_presence=offline is not kept online by it.
    setup.presence.connect(BOB, ONLINE).close()
    quiet = setup.presence.connect(BOB, OFFLINE)
    setup.clock.advance(30)
    assert await setup.state(BOB) == OFFLINE
    quiet.close()


@pytest_twisted.ensureDeferred
async def test_a_change_wakes_the_rooms_of_the_user(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    elsewhere = await setup.rooms.public_room(creator=DAVE)
    token = setup.notifier.current_token
    setup.presence.connect(BOB, ONLINE).close()
    # Bob's own waiting syncs at once; Alice shares the room: hers with the next
    # batch, once the rooms are read.
    assert await setup.notifier.wait_for_changes(BOB, [], token, 0)
    assert not await setup.notifier.wait_for_changes(ALICE, [room], token, 0)
    setup.clock.advance(NOTIFY_BATCH_SECONDS)
    await eventually(lambda: setup.notifier.wait_for_changes(ALICE, [room], token, 0))
    # Dave shares no room with Bob: not woken.
    assert not await setup.notifier.wait_for_changes(DAVE, [elsewhere], token, 0)


# -- sync_events ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_sync_events_from_a_token_list_the_visible_users_changed_since(
    setup: Setup,
) -> None:
    await setup.rooms.public_room(BOB, CAROL)  # alice, bob, carol; dave elsewhere
    await setup.rooms.public_room(creator=DAVE)
    start = setup.presence.current_position()
    bob = setup.presence.connect(BOB, ONLINE)
    middle = setup.presence.current_position()
    dave = setup.presence.connect(DAVE, ONLINE)
    carol = setup.presence.connect(CAROL, UNAVAILABLE)
    assert await setup.senders(ALICE, start) == [(BOB, ONLINE), (CAROL, UNAVAILABLE)]
    assert await setup.senders(ALICE, middle) == [(CAROL, UNAVAILABLE)]
    assert await setup.senders(ALICE, setup.presence.current_position()) == []
    # Everyone sees their own presence.
    assert await setup.senders(DAVE, start) == [(DAVE, ONLINE)]
    assert await setup.senders(BOB, middle) == [(CAROL, UNAVAILABLE)]
    # A user who changed twice appears once, with the latest presence.
    await setup.presence.set_presence(BOB, UNAVAILABLE, "lunch")
    events = await setup.presence.sync_events(ALICE, start, setup.presence.current_position())
    assert [event["sender"] for event in events] == [BOB, CAROL]
    assert events[0]["type"] == "m.presence"
    assert events[0]["content"] == {
        "presence": UNAVAILABLE,
        "status_msg": "lunch",
        "last_active_ago": 0,
        "currently_active": False,
    }
    # Only up to the sync's own position.
    assert await setup.presence.sync_events(ALICE, start, middle) != []
    assert [e["sender"] for e in await setup.presence.sync_events(ALICE, middle, middle)] == []
    for connection in (bob, dave, carol):
        connection.close()


@pytest_twisted.ensureDeferred
async def test_an_initial_sync_lists_visible_users_who_are_not_offline(setup: Setup) -> None:
    await setup.rooms.public_room(BOB, CAROL)
    await setup.rooms.public_room(creator=DAVE)
    await setup.presence.set_presence(BOB, ONLINE, None)
    await setup.presence.set_presence(CAROL, OFFLINE, "away")
    await setup.presence.set_presence(DAVE, ONLINE, None)
    assert await setup.senders(ALICE, None) == [(BOB, ONLINE)]
    # A token from the future, or one older than the log, is answered like an initial sync.
    assert await setup.senders(ALICE, setup.presence.current_position() + 100) == [(BOB, ONLINE)]
    with_offline = setup.handler(
        PresenceConfig(
            idle_timeout_ms=300_000,
            sync_online_timeout_ms=30_000,
            last_active_granularity_ms=60_000,
            include_offline_users_on_sync=True,
        )
    )
    await with_offline.set_presence(BOB, ONLINE, None)
    await with_offline.set_presence(CAROL, OFFLINE, "away")
    events = await with_offline.sync_events(ALICE, None, with_offline.current_position())
    assert [(e["sender"], e["content"]["presence"]) for e in events] == [
        (BOB, ONLINE),
        (CAROL, OFFLINE),
    ]


@pytest_twisted.ensureDeferred
async def test_a_token_older_than_the_handler_gets_everyones_presence(setup: Setup) -> None:
    await setup.rooms.public_room(BOB)
    await setup.presence.set_presence(BOB, ONLINE, None)
    # A token from before a restart: the new handler's log starts at its clock.
    old_token = setup.presence.current_position() - 1_000_000
    assert await setup.senders(ALICE, old_token) == [(BOB, ONLINE)]


@pytest_twisted.ensureDeferred
async def test_a_token_older_than_the_trimmed_log_gets_everyones_presence(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handler_module, "_LOG_SIZE", 2)
    await setup.rooms.public_room(BOB, CAROL, DAVE)
    start = setup.presence.current_position()
    positions = []
    for user_id, state in [
        (BOB, ONLINE),
        (CAROL, ONLINE),
        (DAVE, UNAVAILABLE),
        (BOB, UNAVAILABLE),
        (CAROL, UNAVAILABLE),
    ]:
        await setup.presence.set_presence(user_id, state, None)
        positions.append(setup.presence.current_position())
    # Five entries, more than twice the size: the first three are gone.  A token that
    # saw the third still gets just the changes after it...
    assert await setup.senders(ALICE, positions[2]) == [(BOB, UNAVAILABLE), (CAROL, UNAVAILABLE)]
    # ... an older one gets everyone's presence, Dave's included.
    everyone = [(BOB, UNAVAILABLE), (CAROL, UNAVAILABLE), (DAVE, UNAVAILABLE)]
    assert await setup.senders(ALICE, positions[1]) == everyone
    assert await setup.senders(ALICE, start) == everyone


@pytest_twisted.ensureDeferred
async def test_joining_a_room_exchanges_presence_with_its_members(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    await setup.presence.set_presence(BOB, ONLINE, None)
    await setup.presence.set_presence(CAROL, UNAVAILABLE, "in a meeting")
    before = setup.presence.current_position()
    await setup.rooms.join(room, CAROL)
    setup.presence.joined_room(CAROL, room)
    # Carol gets the members who are not offline (Alice never connected), and herself.
    assert await setup.senders(CAROL, before) == [(BOB, ONLINE), (CAROL, UNAVAILABLE)]
    # The members get Carol's.
    assert await setup.senders(BOB, before) == [(CAROL, UNAVAILABLE)]
    assert await setup.senders(ALICE, before) == [(CAROL, UNAVAILABLE)]


@pytest_twisted.ensureDeferred
async def test_joining_before_ever_connecting_does_not_break_the_members_syncs(
    setup: Setup,
) -> None:
    """A user who registers and joins a room before their first /sync has no presence
    in memory yet; the members' syncs must still work (and may show them offline)."""
    room = await setup.rooms.public_room(BOB)
    await setup.presence.set_presence(BOB, ONLINE, None)
    before = setup.presence.current_position()
    await setup.rooms.join(room, CAROL)
    setup.presence.joined_room(CAROL, room)
    senders = await setup.senders(BOB, before)
    assert senders in ([], [(CAROL, OFFLINE)])
    assert (await setup.senders(CAROL, before))[:1] == [(BOB, ONLINE)]


@pytest_twisted.ensureDeferred
async def test_presence_of_someone_else_needs_a_shared_room(setup: Setup) -> None:
    await setup.rooms.public_room(BOB)
    await setup.presence.set_presence(BOB, ONLINE, "hi")
    assert (await setup.presence.presence_of(ALICE, BOB))["status_msg"] == "hi"
    with pytest.raises(MatrixError) as refused:
        await setup.presence.presence_of(CAROL, BOB)
    assert (refused.value.status, refused.value.errcode) == (403, "M_FORBIDDEN")
    # Someone never seen is offline.
    assert await setup.presence.presence_of(DAVE, DAVE) == {"presence": OFFLINE}


# -- persistence ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_presence_survives_a_new_handler(setup: Setup) -> None:
    await setup.presence.set_presence(BOB, UNAVAILABLE, "on holiday")
    setup.presence.connect(CAROL, ONLINE).close()
    setup.clock.advance(10)
    await setup.presence.stop()
    setup.clock.advance(40)
    restarted = setup.handler()
    await restarted.load()
    assert await setup.content(BOB, restarted) == {
        "presence": UNAVAILABLE,
        "status_msg": "on holiday",
        "currently_active": False,
    }
    assert await setup.content(CAROL, restarted) == {
        "presence": ONLINE,
        "last_active_ago": 50_000,
        "currently_active": True,
    }
    # Carol was online at shutdown and never came back: she times out as usual (her
    # deadline passed while the server was down, so at once).
    setup.clock.advance(0)
    assert await setup.content(CAROL, restarted) == {
        "presence": OFFLINE,
        "last_active_ago": 50_000,
    }
    # Positions keep growing across the restart.
    assert restarted.current_position() > setup.presence.current_position()
    await restarted.stop()


@pytest_twisted.ensureDeferred
async def test_the_periodic_flush_writes_changes_and_skips_unseen_activity(
    setup: Setup,
) -> None:
    setup.presence.start(interval=5)
    stream = setup.presence.connect(BOB, ONLINE)

    async def stored_last_active() -> int | None:
        stored = [p.last_active_ts for p in await setup.store.load_all() if p.user_id == BOB]
        return stored[0] if stored else None

    assert await stored_last_active() is None
    setup.clock.advance(5)

    async def written() -> bool:
        return await stored_last_active() is not None

    await eventually(written)
    assert await stored_last_active() == START * 1000
    # Activity inside the granularity (no visible change) is not worth a write...
    setup.clock.advance(10)
    stream.heartbeat(active=True)
    await setup.presence.flush()
    assert await stored_last_active() == START * 1000
    # ... once last_active has moved by the granularity, it is (still no visible change:
    # currently active all along).
    setup.clock.advance(50)
    stream.heartbeat(active=True)
    assert (await setup.content(BOB))["currently_active"] is True
    await setup.presence.flush()
    assert await stored_last_active() == (START + 65) * 1000
    stream.close()


# -- turned off ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_with_presence_disabled_nothing_is_tracked(setup: Setup) -> None:
    await setup.rooms.public_room(BOB)
    off = setup.handler(PresenceConfig(enabled=False))
    position = off.current_position()
    connection = off.connect(BOB, ONLINE)
    off.record_activity(BOB)
    await off.set_presence(BOB, ONLINE, "hi")
    room = await setup.rooms.public_room(CAROL)
    off.joined_room(CAROL, room)
    assert off.current_position() == position
    assert await off.presence_of(ALICE, BOB) == {"presence": OFFLINE}
    assert await off.presence_of(CAROL, BOB) == {"presence": OFFLINE}
    assert await off.sync_events(ALICE, None, position) == []
    assert await off.sync_events(ALICE, position - 1, position) == []
    connection.close()
    off.start()
    await off.stop()
    assert setup.clock.getDelayedCalls() == []
    assert await setup.store.load_all() == []


@pytest_twisted.ensureDeferred
async def test_a_user_connected_until_shutdown_has_the_timeout_to_reconnect(
    setup: Setup,
) -> None:
    """docs/live-status.md: after a restart, "those who were online go offline after
    sync_online_timeout unless they reconnect" — a user whose client was connected
    until the shutdown and reconnects at once is never shown offline."""
    await setup.rooms.public_room(BOB)
    stream = setup.presence.connect(BOB, ONLINE)
    setup.clock.advance(300)  # idle by now
    await setup.presence.flush()
    # Connected (a stream with heartbeats) for a long time with nothing others would
    # see changing, then the server stops (closing the stream).
    for _ in range(100):
        setup.clock.advance(10)
        stream.heartbeat(active=False)
    stream.close()
    await setup.presence.stop()
    setup.clock.advance(1)
    restarted = setup.handler()
    await restarted.load()
    position = restarted.current_position()
    setup.clock.advance(0)
    assert await setup.content(BOB, restarted) != {"presence": OFFLINE}
    assert (await setup.content(BOB, restarted))["presence"] == UNAVAILABLE
    # The client reconnects a moment later: no offline blip was announced.
    reconnected = restarted.connect(BOB, ONLINE)
    assert await restarted.sync_events(ALICE, position, restarted.current_position()) == []
    reconnected.close()
    await restarted.stop()
