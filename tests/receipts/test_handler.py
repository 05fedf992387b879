"""The receipts handler: who may set which receipt, the m.receipt events /sync gets,
and who is woken."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import task

from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.receipts.handler import ReceiptsHandler
from homeserver.storage.database import Database
from homeserver.storage.receipts import ReceiptStore
from homeserver.storage.timeline import TimelineStore
from homeserver.streams.notifier import Notifier
from homeserver.streams.token import StreamToken
from tests.receipts.rooms import ALICE, BOB, CAROL, Rooms


class Setup:
    def __init__(self, db: Database) -> None:
        self.rooms = Rooms.on(db)
        self.store = ReceiptStore(db)
        self.timeline = TimelineStore(db, self.rooms.events)
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.notifier = Notifier(self.clock, StreamToken())

    async def handler(self) -> ReceiptsHandler:
        return ReceiptsHandler(
            store=self.store,
            events=self.rooms.events,
            clock=Clock(self.clock),
            notifier=self.notifier,
            position=await self.store.get_max_position(),
            is_joined=self.timeline.is_joined,
        )

    async def woken(self, user_id: str, room_id: str, since: int) -> bool:
        """Whether a /sync of ``user_id`` waiting since receipts position ``since`` wakes."""
        token = StreamToken(receipts=since)
        return await self.notifier.wait_for_changes(user_id, [room_id], token, 0)


@pytest_twisted.async_yield_fixture
async def setup(db: Database) -> AsyncIterator[Setup]:
    yield Setup(db)


async def error_of(coroutine: Any) -> tuple[int, str]:
    with pytest.raises(MatrixError) as caught:
        await coroutine
    return caught.value.status, caught.value.errcode


@pytest_twisted.ensureDeferred
async def test_a_read_receipt_reaches_everyone_in_the_room(setup: Setup) -> None:
    handler = await setup.handler()
    room = await setup.rooms.public_room(BOB, CAROL)
    event = await setup.rooms.message(room, ALICE)
    await handler.set_receipt(BOB, room, "m.read", event, None)
    position = handler.current_position()
    assert position > 0
    assert setup.notifier.current_token.receipts == position
    expected = {
        room: {
            "type": "m.receipt",
            "content": {event: {"m.read": {BOB: {"ts": 1_700_000_000_000}}}},
        }
    }
    for reader in (ALICE, BOB, CAROL):
        assert await handler.receipts_for_rooms([room], 0, position, for_user=reader) == expected
    assert await setup.woken(CAROL, room, 0)
    # Nothing changed after the position.
    assert await handler.receipts_for_rooms([room], position, position, for_user=BOB) == {}


@pytest_twisted.ensureDeferred
async def test_incremental_receipts_hold_only_the_changes(setup: Setup) -> None:
    handler = await setup.handler()
    room = await setup.rooms.public_room(BOB, CAROL)
    first = await setup.rooms.message(room, ALICE)
    await handler.set_receipt(BOB, room, "m.read", first, None)
    before = handler.current_position()
    second = await setup.rooms.message(room, ALICE)
    setup.clock.advance(5)
    await handler.set_receipt(CAROL, room, "m.read", second, "main")
    after = handler.current_position()
    delta = await handler.receipts_for_rooms([room], before, after, for_user=ALICE)
    assert delta == {
        room: {
            "type": "m.receipt",
            "content": {
                second: {"m.read": {CAROL: {"ts": 1_700_000_005_000, "thread_id": "main"}}}
            },
        }
    }
    initial = await handler.receipts_for_rooms([room], 0, after, for_user=ALICE)
    assert set(initial[room]["content"]) == {first, second}


@pytest_twisted.ensureDeferred
async def test_a_receipt_for_an_older_event_changes_nothing(setup: Setup) -> None:
    handler = await setup.handler()
    room = await setup.rooms.public_room(BOB)
    older, newer = await setup.rooms.message(room, ALICE), await setup.rooms.message(room, ALICE)
    await handler.set_receipt(BOB, room, "m.read", newer, None)
    position = handler.current_position()
    await handler.set_receipt(BOB, room, "m.read", older, None)
    assert handler.current_position() == position
    receipts = await handler.receipts_for_rooms([room], 0, position, for_user=BOB)
    assert list(receipts[room]["content"]) == [newer]


@pytest_twisted.ensureDeferred
async def test_private_receipts_are_hidden_from_others(setup: Setup) -> None:
    handler = await setup.handler()
    room = await setup.rooms.public_room(BOB, CAROL)
    event = await setup.rooms.message(room, ALICE)
    await handler.set_receipt(BOB, room, "m.read.private", event, None)
    position = handler.current_position()
    own = await handler.receipts_for_rooms([room], 0, position, for_user=BOB)
    assert own[room]["content"] == {event: {"m.read.private": {BOB: {"ts": 1_700_000_000_000}}}}
    assert await handler.receipts_for_rooms([room], 0, position, for_user=CAROL) == {}
    assert await setup.woken(BOB, room, 0)
    assert not await setup.woken(CAROL, room, 0)


@pytest_twisted.ensureDeferred
async def test_the_position_survives_a_restart(setup: Setup) -> None:
    handler = await setup.handler()
    room = await setup.rooms.public_room(BOB)
    await handler.set_receipt(BOB, room, "m.read", await setup.rooms.message(room, ALICE), None)
    assert (await setup.handler()).current_position() == handler.current_position()


@pytest_twisted.ensureDeferred
async def test_only_members_may_send_receipts_for_events_of_the_room(setup: Setup) -> None:
    handler = await setup.handler()
    room, other = await setup.rooms.public_room(BOB), await setup.rooms.public_room(BOB)
    event, elsewhere = (
        await setup.rooms.message(room, ALICE),
        await setup.rooms.message(other, ALICE),
    )
    assert await error_of(handler.set_receipt(CAROL, room, "m.read", event, None)) == (
        403,
        "M_FORBIDDEN",
    )
    assert await error_of(handler.set_receipt(BOB, "!nope:x", "m.read", event, None)) == (
        403,
        "M_FORBIDDEN",
    )
    for event_id in (elsewhere, "$unknown"):
        assert await error_of(handler.set_receipt(BOB, room, "m.read", event_id, None)) == (
            404,
            "M_NOT_FOUND",
        )
    assert await error_of(handler.set_receipt(BOB, room, "m.seen", event, None)) == (
        400,
        "M_INVALID_PARAM",
    )
    assert handler.current_position() == 0


@pytest_twisted.ensureDeferred
async def test_threaded_receipts_must_match_the_events_thread(setup: Setup) -> None:
    handler = await setup.handler()
    room = await setup.rooms.public_room(BOB)
    root = await setup.rooms.message(room, ALICE, "root")
    reply = await setup.rooms.message(
        room, ALICE, "in thread", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    )
    edit = await setup.rooms.message(
        room, ALICE, "* edit", **{"m.relates_to": {"rel_type": "m.replace", "event_id": reply}}
    )
    plain = await setup.rooms.message(room, ALICE, "main")
    for event_id, thread_id in [
        (plain, "main"),
        (root, "main"),
        (root, root),
        (reply, root),
        (edit, root),
    ]:
        await handler.set_receipt(BOB, room, "m.read", event_id, thread_id)
    for event_id, thread_id in [
        (reply, "main"),
        (edit, "main"),
        (plain, root),
        (reply, plain),
        (plain, ""),
        (plain, "thread"),
    ]:
        assert await error_of(handler.set_receipt(BOB, room, "m.read", event_id, thread_id)) == (
            400,
            "M_INVALID_PARAM",
        ), (event_id, thread_id)


@pytest_twisted.ensureDeferred
async def test_fully_read_goes_to_the_read_marker_callbacks(setup: Setup) -> None:
    handler = await setup.handler()
    room = await setup.rooms.public_room(BOB)
    event = await setup.rooms.message(room, ALICE)
    assert await error_of(handler.set_receipt(BOB, room, "m.fully_read", event, None)) == (
        400,
        "M_INVALID_PARAM",
    )
    markers: list[tuple[str, str, str]] = []

    async def remember(user_id: str, room_id: str, event_id: str) -> None:
        markers.append((user_id, room_id, event_id))

    handler.on_fully_read.append(remember)
    await handler.set_receipt(BOB, room, "m.fully_read", event, None)
    assert markers == [(BOB, room, event)]
    assert await error_of(handler.set_receipt(BOB, room, "m.fully_read", event, "main")) == (
        400,
        "M_INVALID_PARAM",
    )
    assert await error_of(handler.set_receipt(BOB, room, "m.fully_read", "$nope", None)) == (
        404,
        "M_NOT_FOUND",
    )
    # The marker is not a receipt: nothing in the receipts stream.
    assert handler.current_position() == 0
    assert markers == [(BOB, room, event)]
