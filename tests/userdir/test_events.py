"""What the user directory takes from the events stream, on both engines: rooms built
through the real event pipeline, read by the ``user_directory`` consumer as the
server runs it.  Public rooms (a public join rule or world-readable history), remote
users' profiles only from rooms public at the time of their join, and remote users
removed once they are in no room here."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from homeserver.clock import Clock
from homeserver.config.user_directory import UserDirectoryConfig
from homeserver.rooms.state import RoomStateReader
from homeserver.storage.database import Database
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.storage.timeline import TimelineStore
from homeserver.storage.user_directory import UserDirectoryStore
from homeserver.storage.users import UserStore
from homeserver.streams.consumer import EventStreamConsumer
from homeserver.userdir.events import DirectoryEventHandler
from homeserver.userdir.handler import UserDirectoryHandler
from tests.receipts.rooms import ALICE, BOB, SERVER, Rooms

REMOTE = "@remy:remote.test"


class Directory:
    """The directory's event handler behind a consumer, and its search handler."""

    def __init__(self, db: Database, rooms: Rooms) -> None:
        self.rooms = rooms
        self.store = UserDirectoryStore(db)
        state = RoomStateReader(rooms.events, rooms.state, TimelineStore(db, rooms.events))
        events = DirectoryEventHandler(server_name=SERVER, store=self.store, state=state)
        self.consumer = EventStreamConsumer(
            name="user_directory",
            store=StreamConsumerStore(db),
            events=rooms.events,
            reactor=reactor,
            handle=events.handle,
            start_from_beginning=True,
        )
        self.search = UserDirectoryHandler(
            server_name=SERVER,
            config=UserDirectoryConfig(),
            store=self.store,
            clock=Clock(reactor),
        )

    async def caught_up(self) -> None:
        self.consumer.poke()
        assert await self.consumer.wait_for(await self.rooms.events.get_max_stream_ordering(), 30)

    async def found(self, searcher: str, term: str) -> list[tuple[str, str | None]]:
        results = (await self.search.search(searcher, term, 10)).results
        return [(hit.user_id, hit.display_name) for hit in results]


async def started(db: Database) -> Directory:
    for user_id in (ALICE, BOB):
        await UserStore(db).create_user(user_id, password_hash=None, created_ts=1)
    directory = Directory(db, Rooms.on(db))
    directory.consumer.start()
    return directory


async def private_room(rooms: Rooms, *members: str) -> str:
    """An invite-only room ALICE made; ``members`` are invited and join."""
    room_id = await rooms.public_room()
    await rooms.send(room_id, "m.room.join_rules", ALICE, {"join_rule": "invite"}, "")
    for member in members:
        await rooms.send(room_id, "m.room.member", ALICE, {"membership": "invite"}, member)
        await rooms.join(room_id, member)
    return room_id


async def join_as(rooms: Rooms, room_id: str, user_id: str, name: str) -> None:
    content = {"membership": "join", "displayname": name}
    await rooms.send(room_id, "m.room.member", user_id, content, user_id)


@pytest_twisted.ensureDeferred
async def test_a_remote_users_name_comes_from_public_rooms_only(db: Database) -> None:
    directory = await started(db)
    rooms = directory.rooms
    try:
        public = await rooms.public_room()
        await join_as(rooms, public, REMOTE, "Remy Public")
        await directory.caught_up()
        assert await directory.found(BOB, "remy") == [(REMOTE, "Remy Public")]
        # A nickname in a private room (shared with ALICE only) is not shown to BOB,
        # who finds REMY through the public room.
        private = await private_room(rooms, REMOTE)
        await join_as(rooms, private, REMOTE, "Remy Secret Nickname")
        await directory.caught_up()
        assert await directory.found(BOB, "remy") == [(REMOTE, "Remy Public")]
        assert await directory.found(BOB, "secret") == []
        # A new name in a public room is taken.
        await join_as(rooms, public, REMOTE, "Remy Renamed")
        await directory.caught_up()
        assert await directory.found(BOB, "remy") == [(REMOTE, "Remy Renamed")]
    finally:
        await directory.consumer.stop()


@pytest_twisted.ensureDeferred
async def test_a_remote_user_seen_only_in_private_rooms_has_no_profile_here(
    db: Database,
) -> None:
    directory = await started(db)
    rooms = directory.rooms
    try:
        private = await private_room(rooms, "@quiet:remote.test")
        await join_as(rooms, private, "@quiet:remote.test", "Quiet Nickname")
        await directory.caught_up()
        # ALICE shares the room: she finds the user by ID, without the room's name.
        assert await directory.found(ALICE, "quiet") == [("@quiet:remote.test", None)]
        assert await directory.found(ALICE, "nickname") == []
        # The room turns public later: the name given while it was private stays out.
        await rooms.send(private, "m.room.join_rules", ALICE, {"join_rule": "public"}, "")
        await directory.caught_up()
        assert await directory.found(BOB, "quiet") == [("@quiet:remote.test", None)]
    finally:
        await directory.consumer.stop()


@pytest_twisted.ensureDeferred
async def test_world_readable_history_makes_a_room_public(db: Database) -> None:
    directory = await started(db)
    rooms = directory.rooms
    try:
        room = await private_room(rooms)
        visibility = {"history_visibility": "world_readable"}
        await rooms.send(room, "m.room.history_visibility", ALICE, visibility, "")
        # Its join rule is invite: the remote user is let in by invitation.
        await rooms.send(room, "m.room.member", ALICE, {"membership": "invite"}, REMOTE)
        await join_as(rooms, room, REMOTE, "Remy Readable")
        await directory.caught_up()
        # BOB shares no room with either: the room's world-readable history shows them.
        assert await directory.found(BOB, "readable") == [(REMOTE, "Remy Readable")]
        assert await directory.found(BOB, "alice") == [(ALICE, None)]
        await rooms.send(
            room, "m.room.history_visibility", ALICE, {"history_visibility": "shared"}, ""
        )
        await directory.caught_up()
        assert await directory.found(BOB, "readable") == []
    finally:
        await directory.consumer.stop()


@pytest_twisted.ensureDeferred
async def test_a_remote_user_who_left_every_room_is_removed(db: Database) -> None:
    directory = await started(db)
    rooms = directory.rooms
    try:
        first = await rooms.public_room()
        second = await rooms.public_room()
        await join_as(rooms, first, REMOTE, "Remy")
        await join_as(rooms, second, REMOTE, "Remy")
        await rooms.leave(first, REMOTE)
        await directory.caught_up()
        assert await directory.found(BOB, "remy") == [(REMOTE, "Remy")]
        await rooms.leave(second, REMOTE)
        await directory.caught_up()
        rows = await db.execute_read(
            "test", "SELECT 1 FROM user_directory WHERE user_id = ?", REMOTE
        )
        assert rows == []
    finally:
        await directory.consumer.stop()
