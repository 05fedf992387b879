"""The hooks federation uses in the typing and presence handlers, on a fake clock with
real stores (both engines), and the EDU modules' pure parts: remote typists and
remote presence time out on their own terms, and only local changes are handed on.

spec: server-server-api.md#typing-notifications, #presence
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest_twisted
from twisted.internet import defer, task

from federation.edus.common import BackgroundTasks
from federation.edus.presence import BATCH_SECONDS as PRESENCE_BATCH_SECONDS
from federation.edus.presence import (
    MAX_ENTRIES_PER_EDU,
    ORIGIN_ENTRIES_BURST,
    PING_CHECK_SECONDS,
    PING_INTERVAL_MS,
    PresenceEdus,
    _parse_entry,
    _push_entry,
)
from federation.edus.receipts import _thread_id
from federation.edus.rooms import RoomServers
from federation.edus.typing import RESEND_INTERVAL_MS, TypingEdus
from federation.identifiers import is_user_of
from federation.joins import is_new_join
from homeserver.clock import Clock
from homeserver.config.model import PresenceConfig
from homeserver.events.event import Event
from homeserver.presence.handler import REMOTE_TIMEOUT_MS, PresenceHandler
from homeserver.presence.record import OFFLINE, ONLINE, UNAVAILABLE, UserPresence
from homeserver.storage.database import Database
from homeserver.storage.presence import PresenceStore
from homeserver.storage.timeline import TimelineStore
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken
from homeserver.typing.handler import MAX_TIMEOUT_MS, TypingHandler
from homeserver.typing.handler import REMOTE_TIMEOUT_MS as TYPING_REMOTE_MS
from tests.receipts.rooms import ALICE, BOB, Rooms

START = 1_700_000_000
REMOTE_USER = "@rita:remote.test"


class Setup:
    def __init__(self, db: Database) -> None:
        self.rooms = Rooms.on(db)
        self.clock = task.Clock()
        self.clock.advance(START)
        self.notifier = Notifier(self.clock, StreamToken())
        self.store = PresenceStore(db)
        self.presence = PresenceHandler(
            reactor=self.clock,
            clock=Clock(self.clock),
            config=PresenceConfig(),
            store=self.store,
            notifier=self.notifier,
        )
        self.typing = TypingHandler(
            self.clock, self.notifier, TimelineStore(db, self.rooms.events).is_joined
        )
        self.local_typing: list[tuple[str, str, bool]] = []
        self.typing.on_local_typing.append(
            lambda room, user, typing: self.local_typing.append((room, user, typing))
        )
        self.local_presence: list[UserPresence] = []
        self.presence.on_local_change.append(self.local_presence.append)

    def typists(self, room_id: str) -> list[str]:
        event = self.typing.typing_events([room_id], 0).get(room_id)
        return [] if event is None else list(event["content"]["user_ids"])


@pytest_twisted.async_yield_fixture
async def setup(db: Database) -> AsyncIterator[Setup]:
    setup = Setup(db)
    yield setup
    await setup.presence.stop()


@pytest_twisted.ensureDeferred
async def test_local_typing_is_handed_on_with_its_time_out(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    await setup.typing.set_typing(BOB, room, True, 10_000)
    await setup.typing.set_typing(BOB, room, True, 10_000)
    setup.clock.advance(10)
    assert setup.local_typing == [(room, BOB, True), (room, BOB, True), (room, BOB, False)]
    assert setup.typists(room) == []


@pytest_twisted.ensureDeferred
async def test_remote_typing_lasts_the_federation_time_out_and_is_not_handed_on(
    setup: Setup,
) -> None:
    room = await setup.rooms.public_room(BOB)
    setup.typing.set_remote_typing(REMOTE_USER, room, True)
    assert TYPING_REMOTE_MS > MAX_TIMEOUT_MS
    setup.clock.advance(TYPING_REMOTE_MS / 1000 - 1)
    assert setup.typists(room) == [REMOTE_USER]
    setup.clock.advance(1)
    assert setup.typists(room) == []
    setup.typing.set_remote_typing(REMOTE_USER, room, True)
    setup.typing.set_remote_typing(REMOTE_USER, room, False)
    assert setup.typists(room) == []
    assert setup.local_typing == []


@pytest_twisted.ensureDeferred
async def test_remote_presence_is_shown_never_stored_and_times_out(setup: Setup) -> None:
    now_ms = START * 1000
    setup.presence.apply_remote(
        UserPresence(REMOTE_USER, ONLINE, "away from keyboard", now_ms - 5_000, 0, True)
    )
    assert await setup.presence.presence_of(REMOTE_USER, REMOTE_USER) == {
        "presence": ONLINE,
        "status_msg": "away from keyboard",
        "last_active_ago": 5_000,
        "currently_active": True,
    }
    # Half-way through the time-out its server repeats it: the deadline moves.
    setup.clock.advance(REMOTE_TIMEOUT_MS / 2000)
    setup.presence.apply_remote(
        UserPresence(REMOTE_USER, ONLINE, "away from keyboard", now_ms - 5_000, 0, True)
    )
    setup.clock.advance(REMOTE_TIMEOUT_MS / 1000 - 1)
    assert setup.presence.current(REMOTE_USER).state == ONLINE
    setup.clock.advance(1)
    assert setup.presence.current(REMOTE_USER).state == OFFLINE
    await setup.presence.flush()
    assert [p.user_id for p in await setup.store.load_all()] == []
    assert setup.local_presence == []


@pytest_twisted.ensureDeferred
async def test_local_presence_changes_are_handed_on(setup: Setup) -> None:
    await setup.presence.set_presence(ALICE, ONLINE, "here")
    setup.presence.record_activity(ALICE)  # already online and active: nothing new
    assert [(p.user_id, p.state, p.status_msg) for p in setup.local_presence] == [
        (ALICE, ONLINE, "here")
    ]


class _Servers:
    """The joined servers of every room: ours and two others."""

    async def get_joined_servers(self, room_id: str) -> frozenset[str]:
        return frozenset({"example.org", "a.test", "b.test"})


class _Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Mapping[str, Any], Hashable | None]] = []

    def send_edu(
        self,
        destination: str,
        edu_type: str,
        content: Mapping[str, Any],
        *,
        coalesce_key: Hashable | None = None,
    ) -> None:
        self.sent.append((destination, edu_type, content, coalesce_key))


@pytest_twisted.ensureDeferred
async def test_typing_repeats_are_sent_again_only_after_the_resend_interval(
    setup: Setup,
) -> None:
    sink = _Sink()
    rooms = RoomServers(server_name="example.org", source=_Servers())

    async def never(_user: str, _room: str) -> bool:
        return False

    edus = TypingEdus(
        rooms=rooms,
        typing=setup.typing,
        is_joined=never,
        tasks=BackgroundTasks(),
        clock=Clock(setup.clock),
        sender=sink,
    )
    room = "!r:example.org"

    def typing_sent() -> list[tuple[str, bool]]:
        return [(dest, content["typing"]) for dest, _, content, _ in sink.sent]

    edus.on_local_typing(room, BOB, True)
    edus.on_local_typing(room, BOB, True)
    assert typing_sent() == [("a.test", True), ("b.test", True)]
    setup.clock.advance(RESEND_INTERVAL_MS / 1000)
    edus.on_local_typing(room, BOB, True)
    edus.on_local_typing(room, BOB, False)
    edus.on_local_typing(room, BOB, False)  # said once only
    assert typing_sent()[2:] == [
        ("a.test", True),
        ("b.test", True),
        ("a.test", False),
        ("b.test", False),
    ]
    assert {key for *_, key in sink.sent} == {(room, BOB)}


def test_presence_entries_are_read_as_sent_and_bad_ones_dropped() -> None:
    now = 1_000_000
    sent = _push_entry(UserPresence(REMOTE_USER, ONLINE, "hi", now - 3_000, 0, True), now)
    assert sent == {
        "user_id": REMOTE_USER,
        "presence": ONLINE,
        "status_msg": "hi",
        "last_active_ago": 3_000,
        "currently_active": True,
    }
    assert _parse_entry(sent, now + 1_000) == UserPresence(
        REMOTE_USER, ONLINE, "hi", now - 2_000, 0, True
    )
    assert _parse_entry({"user_id": REMOTE_USER, "presence": "busy"}, now) is None
    assert _parse_entry([], now) is None
    offline = _parse_entry(
        {
            "user_id": REMOTE_USER,
            "presence": OFFLINE,
            "currently_active": True,
            "last_active_ago": -5,
        },
        now,
    )
    assert offline == UserPresence(REMOTE_USER, OFFLINE, None, now, 0, False)


def test_a_server_speaks_only_for_its_own_valid_users() -> None:
    assert is_user_of("@rita:remote.test", "remote.test")
    assert not is_user_of("@rita:remote.test", "other.test")
    assert not is_user_of("@rita:remote.test:8448", "remote.test")
    assert not is_user_of("rita", "remote.test")
    assert not is_user_of(None, "remote.test")


def test_thread_ids_are_kept_only_in_the_client_apis_shapes() -> None:
    assert _thread_id("main") == "main"
    assert _thread_id("$root") == "$root"
    assert _thread_id("root") is None
    assert _thread_id(5) is None


class _PresenceRooms:
    """Every user is in one room, which ``a.test`` shares."""

    def __init__(self) -> None:
        #: The batches ``joined_rooms_by_user`` was asked.
        self.batches: list[list[str]] = []

    async def joined_rooms(self, user_ids: Sequence[str]) -> set[str]:
        return {"!r:example.org"}

    async def joined_rooms_by_user(self, user_ids: Sequence[str]) -> dict[str, set[str]]:
        self.batches.append(list(user_ids))
        return {user_id: {"!r:example.org"} for user_id in user_ids}

    async def joined_members(self, room_id: str) -> list[str]:
        return [ALICE, BOB, "@rita:a.test"]


@pytest_twisted.ensureDeferred
async def test_presence_changes_are_batched_and_online_users_re_sent_every_25_minutes(
    setup: Setup,
) -> None:
    sink = _Sink()
    edus = PresenceEdus(
        server_name="example.org",
        rooms=RoomServers(server_name="example.org", source=_Servers()),
        presence=setup.presence,
        presence_rooms=_PresenceRooms(),
        events=setup.rooms.events,
        reactor=setup.clock,
        clock=Clock(setup.clock),
        sender=sink,
        tasks=BackgroundTasks(),
    )
    setup.presence.on_local_change.append(edus.on_local_change)
    edus.start()
    try:
        await setup.presence.set_presence(ALICE, UNAVAILABLE, "first")
        await setup.presence.set_presence(ALICE, UNAVAILABLE, "second")
        await setup.presence.set_presence(BOB, ONLINE, None)
        await setup.presence.set_presence(BOB, OFFLINE, None)
        assert sink.sent == []
        setup.clock.advance(PRESENCE_BATCH_SECONDS)

        def statuses() -> list[tuple[str, str, str | None]]:
            return [
                (dest, entry["user_id"], entry.get("status_msg"))
                for dest, _, content, _ in sink.sent
                for entry in content["push"]
            ]

        # One send per user, with the newest state, to each other server.
        assert sorted(statuses()) == [
            ("a.test", ALICE, "second"),
            ("a.test", BOB, None),
            ("b.test", ALICE, "second"),
            ("b.test", BOB, None),
        ]
        sink.sent.clear()
        # Alice stays connected and away, which changes nothing; Bob is offline.
        connection = setup.presence.connect(ALICE, UNAVAILABLE)
        checks = int(PING_INTERVAL_MS / 1000 / PING_CHECK_SECONDS)
        for _ in range(checks - 1):
            connection.heartbeat(active=False)
            setup.clock.advance(PING_CHECK_SECONDS)
        assert sink.sent == []
        # 25 minutes after the last send, only she is sent again, unchanged.
        setup.clock.advance(PING_CHECK_SECONDS)
        connection.close()
        assert sorted(statuses()) == [("a.test", ALICE, "second"), ("b.test", ALICE, "second")]
    finally:
        await edus.stop()


# --- bounds: what a remote server can make us hold or do -----------------------------


def _presence_edus(setup: Setup, rooms: _PresenceRooms) -> PresenceEdus:
    return PresenceEdus(
        server_name="example.org",
        rooms=RoomServers(server_name="example.org", source=_Servers()),
        presence=setup.presence,
        presence_rooms=rooms,
        events=setup.rooms.events,
        reactor=setup.clock,
        clock=Clock(setup.clock),
        sender=None,
        tasks=BackgroundTasks(),
    )


def _push(count: int, state: str = ONLINE, first: int = 0) -> dict[str, Any]:
    return {"push": [{"user_id": f"@u{first + n}:a.test", "presence": state} for n in range(count)]}


@pytest_twisted.ensureDeferred
async def test_remote_users_are_forgotten_once_offline(setup: Setup) -> None:
    now_ms = START * 1000
    setup.presence.apply_remote(UserPresence(REMOTE_USER, ONLINE, "hi", now_ms, 0, True))
    assert setup.presence.remote_users_held == 1
    setup.presence.apply_remote(UserPresence(REMOTE_USER, OFFLINE, None, now_ms, 0, False))
    assert setup.presence.remote_users_held == 0
    assert setup.presence.current(REMOTE_USER).state == OFFLINE
    # Timing out forgets them too.
    setup.presence.apply_remote(UserPresence(REMOTE_USER, ONLINE, None, now_ms, 0, True))
    setup.clock.advance(REMOTE_TIMEOUT_MS / 1000)
    assert setup.presence.remote_users_held == 0
    assert setup.presence.current(REMOTE_USER).state == OFFLINE
    # An offline user never seen before leaves nothing behind either.
    setup.presence.apply_remote(UserPresence("@new:remote.test", OFFLINE, None, now_ms, 0, False))
    assert setup.presence.remote_users_held == 0


@pytest_twisted.ensureDeferred
async def test_a_presence_edu_costs_one_membership_read_for_all_its_entries(
    setup: Setup,
) -> None:
    rooms = _PresenceRooms()
    edus = _presence_edus(setup, rooms)
    await edus.receive("a.test", _push(30))
    assert [len(batch) for batch in rooms.batches] == [30]
    assert {setup.presence.current(f"@u{n}:a.test").state for n in range(30)} == {ONLINE}


@pytest_twisted.ensureDeferred
async def test_presence_entries_beyond_the_per_edu_and_per_origin_limits_are_dropped(
    setup: Setup,
) -> None:
    rooms = _PresenceRooms()
    edus = _presence_edus(setup, rooms)
    await edus.receive("a.test", _push(MAX_ENTRIES_PER_EDU + 50))
    assert [len(batch) for batch in rooms.batches] == [MAX_ENTRIES_PER_EDU]
    assert setup.presence.current(f"@u{MAX_ENTRIES_PER_EDU}:a.test").state == OFFLINE
    # The origin's burst is spent after this many full EDUs; the next is dropped.
    for _ in range(ORIGIN_ENTRIES_BURST // MAX_ENTRIES_PER_EDU - 1):
        await edus.receive("a.test", _push(MAX_ENTRIES_PER_EDU))
    rooms.batches.clear()
    await edus.receive("a.test", _push(1, first=5_000))
    assert rooms.batches == []
    assert setup.presence.current("@u5000:a.test").state == OFFLINE
    # Another origin is not held back, and the limit refills with time.
    await edus.receive("b.test", {"push": [{"user_id": "@x:b.test", "presence": ONLINE}]})
    assert setup.presence.current("@x:b.test").state == ONLINE
    setup.clock.advance(1)
    await edus.receive("a.test", _push(1, first=5_000))
    assert setup.presence.current("@u5000:a.test").state == ONLINE


class _SlowServers:
    """A joined-servers source whose reads finish when the test says."""

    def __init__(self) -> None:
        self.reads: list[defer.Deferred[frozenset[str]]] = []

    def get_joined_servers(self, room_id: str) -> defer.Deferred[frozenset[str]]:
        self.reads.append(defer.Deferred())
        return self.reads[-1]


@pytest_twisted.ensureDeferred
async def test_room_server_reads_leave_nothing_behind_and_a_read_raced_by_a_change_is_not_kept() -> (
    None
):
    source = _SlowServers()
    rooms = RoomServers(server_name="example.org", source=source)  # type: ignore[arg-type]
    room = "!r:example.org"
    first = defer.ensureDeferred(rooms.joined_servers(room))
    assert rooms.reads_under_way == 1
    change = cast(Event, SimpleNamespace(room_id=room, is_state=lambda: True))
    rooms.on_new_event(change, 1)
    source.reads[0].callback(frozenset({"example.org"}))
    assert await first == frozenset({"example.org"})
    assert rooms.reads_under_way == 0
    # The stale answer was not kept: the next call reads again, and keeps that.
    second = defer.ensureDeferred(rooms.joined_servers(room))
    assert len(source.reads) == 2
    source.reads[1].callback(frozenset({"example.org", "a.test"}))
    assert await second == frozenset({"example.org", "a.test"})
    assert await rooms.joined_servers(room) == frozenset({"example.org", "a.test"})
    assert len(source.reads) == 2
    assert rooms.reads_under_way == 0


@pytest_twisted.ensureDeferred
async def test_stopping_waits_for_background_work_and_refuses_more() -> None:
    tasks = BackgroundTasks()
    gate: defer.Deferred[None] = defer.Deferred()
    done: list[str] = []

    async def work(name: str) -> None:
        await gate
        done.append(name)

    async def failing() -> None:
        await gate
        raise RuntimeError("logged, not raised")

    tasks.run(work("first"), "test")
    tasks.run(failing(), "fail")
    assert tasks.running == 2
    stopping = defer.ensureDeferred(tasks.stop())
    assert not stopping.called
    tasks.run(work("late"), "test")  # refused: never started
    gate.callback(None)
    await stopping
    assert done == ["first"]
    assert tasks.running == 0


@pytest_twisted.ensureDeferred
async def test_a_join_replacing_a_join_is_not_a_new_join() -> None:
    class Loader:
        def __init__(self, held: Mapping[str, Event]) -> None:
            self.held = held

        async def get_events(self, event_ids: Sequence[str]) -> Mapping[str, Event]:
            return {e: self.held[e] for e in event_ids if e in self.held}

    def member(membership: str, replaces: str | None) -> Event:
        internal = SimpleNamespace(replaces_state=replaces)
        return cast(Event, SimpleNamespace(membership=membership, internal=internal))

    before_join, before_leave = member("join", None), member("leave", None)
    loader = Loader({"$join": before_join, "$leave": before_leave})
    assert await is_new_join(member("join", None), loader)
    assert await is_new_join(member("join", "$leave"), loader)
    assert await is_new_join(member("join", "$unknown"), loader)
    assert not await is_new_join(member("join", "$join"), loader)
