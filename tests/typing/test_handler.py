"""Typing notifications held in memory: started, replaced, stopped and expired on a
fake clock, each change a new position of the typing stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_twisted
from twisted.internet import task

from homeserver.errors import MatrixError
from homeserver.storage.database import Database
from homeserver.storage.timeline import TimelineStore
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken
from homeserver.typing.handler import MAX_TIMEOUT_MS, TypingHandler
from tests.receipts.rooms import ALICE, BOB, CAROL, Rooms


class Setup:
    def __init__(self, db: Database) -> None:
        self.rooms = Rooms.on(db)
        self.clock = task.Clock()
        self.notifier = Notifier(self.clock, StreamToken())
        self.typing = TypingHandler(
            self.clock, self.notifier, TimelineStore(db, self.rooms.events).is_joined
        )

    def users(self, room_id: str, since: int = 0) -> list[str] | None:
        """The typing list /sync would send for ``room_id`` (None: nothing to send)."""
        event = self.typing.typing_events([room_id], since).get(room_id)
        if event is None:
            return None
        assert event["type"] == "m.typing"
        users: list[str] = event["content"]["user_ids"]
        return users


@pytest_twisted.async_yield_fixture
async def setup(db: Database) -> AsyncIterator[Setup]:
    yield Setup(db)


@pytest_twisted.ensureDeferred
async def test_typing_shows_until_the_timeout_runs_out(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    start = setup.typing.current_position()
    await setup.typing.set_typing(BOB, room, True, 10_000)
    started = setup.typing.current_position()
    assert started == start + 1
    assert setup.notifier.current_token.typing == started
    assert setup.users(room) == [BOB]
    assert setup.users(room, start) == [BOB]
    assert setup.users(room, started) is None
    assert await setup.notifier.wait_for_changes(ALICE, [room], StreamToken(typing=start), 0)
    setup.clock.advance(9.999)
    assert setup.users(room) == [BOB]
    setup.clock.advance(0.001)
    assert setup.typing.current_position() == started + 1
    assert setup.users(room) is None
    # A sync that saw Bob typing learns he stopped.
    assert setup.users(room, started) == []


@pytest_twisted.ensureDeferred
async def test_typing_again_extends_without_a_new_position(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    await setup.typing.set_typing(BOB, room, True, 10_000)
    position = setup.typing.current_position()
    setup.clock.advance(8)
    await setup.typing.set_typing(BOB, room, True, 10_000)
    assert setup.typing.current_position() == position
    setup.clock.advance(8)
    assert setup.users(room) == [BOB]
    setup.clock.advance(2)
    assert setup.users(room) is None


@pytest_twisted.ensureDeferred
async def test_stopping_removes_the_user_at_once(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB, CAROL)
    await setup.typing.set_typing(BOB, room, True, 20_000)
    await setup.typing.set_typing(CAROL, room, True, 20_000)
    assert setup.users(room) == [BOB, CAROL]
    before = setup.typing.current_position()
    await setup.typing.set_typing(BOB, room, False)
    assert setup.users(room, before) == [CAROL]
    # Stopping when not typing changes nothing, and the cancelled timer never fires.
    await setup.typing.set_typing(BOB, room, False)
    position = setup.typing.current_position()
    setup.clock.advance(20)
    assert setup.typing.current_position() == position + 1  # only Carol's expiry
    assert setup.users(room, before) == []


@pytest_twisted.ensureDeferred
async def test_timeouts_are_capped(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    await setup.typing.set_typing(BOB, room, True, 3_600_000)
    setup.clock.advance(MAX_TIMEOUT_MS / 1000 - 0.001)
    assert setup.users(room) == [BOB]
    setup.clock.advance(0.001)
    assert setup.users(room) is None


@pytest_twisted.ensureDeferred
async def test_only_rooms_asked_about_and_changed_are_answered(setup: Setup) -> None:
    room, other = await setup.rooms.public_room(BOB), await setup.rooms.public_room(BOB)
    await setup.typing.set_typing(BOB, room, True, 10_000)
    middle = setup.typing.current_position()
    await setup.typing.set_typing(BOB, other, True, 10_000)
    assert set(setup.typing.typing_events([room, other], 0)) == {room, other}
    assert set(setup.typing.typing_events([room, other], middle)) == {other}
    assert set(setup.typing.typing_events([room], 0)) == {room}
    assert setup.typing.typing_events(["!quiet:example.org"], 0) == {}


@pytest_twisted.ensureDeferred
async def test_a_token_from_the_future_gets_the_full_state(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    await setup.typing.set_typing(BOB, room, True, 10_000)
    ahead = setup.typing.current_position() + 100
    assert setup.users(room, ahead) == [BOB]


@pytest_twisted.ensureDeferred
async def test_positions_start_at_the_clock_so_they_grow_across_restarts(db: Database) -> None:
    clock = task.Clock()
    clock.advance(1_234.5)
    handler = TypingHandler(
        clock, Notifier(clock, StreamToken()), TimelineStore(db, Rooms.on(db).events).is_joined
    )
    assert handler.current_position() == 1_234_500


@pytest_twisted.ensureDeferred
async def test_only_members_may_type(setup: Setup) -> None:
    room = await setup.rooms.public_room(BOB)
    for user_id, room_id in [(CAROL, room), (BOB, "!nowhere:example.org")]:
        with pytest.raises(MatrixError) as caught:
            await setup.typing.set_typing(user_id, room_id, True, 1000)
        assert (caught.value.status, caught.value.errcode) == (403, "M_FORBIDDEN")
    await setup.rooms.leave(room, BOB)
    with pytest.raises(MatrixError):
        await setup.typing.set_typing(BOB, room, True, 1000)
    assert setup.typing.current_position() == 0
