"""The announcer consumes the ``device_lists`` stream from a stored position (both
engines): each announcement, its durable EDUs for every server sharing a room and
the position commit together, so a failed (or crashed) announcement is done again
and nothing is lost or sent twice.

spec: server-server-api.md#device-management
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pytest_twisted
from twisted.internet import task

from federation.e2ee.announcer import CONSUMER_NAME, DeviceListAnnouncer
from homeserver.storage.database import Database
from homeserver.storage.device_list_outbound import DeviceListOutboundStore
from homeserver.storage.federation_outbound import FederationOutboundStore
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.storage.transaction import Transaction

ALICE = "@alice:here.test"


class _Keys:
    def __init__(self) -> None:
        self.devices: dict[str, Any] = {"D1": {"keys": {"ed25519:D1": "k1"}}}
        self.failing = False

    async def query_local(
        self, requester: str, device_keys: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        if self.failing:
            raise RuntimeError("database down")
        return {"device_keys": {ALICE: dict(self.devices)}}


class _Sender:
    def __init__(self) -> None:
        self.woken: list[str] = []

    def allows(self, destination: str) -> bool:
        return destination != "blocked.test"

    def durable_edus_stored(self, destinations: Collection[str]) -> None:
        self.woken.extend(sorted(destinations))


class _Stream:
    def __init__(self) -> None:
        self.position = 0

    async def visible_position(self) -> int:
        return self.position


async def _setup(db: Database) -> None:
    def write(txn: Transaction) -> None:
        txn.executemany(
            "INSERT INTO room_memberships (room_nid, user_id, membership, event_nid)"
            " VALUES (?, ?, ?, ?)",
            [
                (1, ALICE, "join", 1),
                (1, "@bob:remote.test", "join", 2),
                (1, "@carol:blocked.test", "join", 3),
                (1, "@dan:gone.test", "leave", 4),
            ],
        )

    await db.run_interaction("test_memberships", write)


async def _change(db: Database, stream: _Stream, user_id: str) -> None:
    stream.position += 1
    await db.execute(
        "test_change",
        "INSERT INTO device_list_changes (stream_id, user_id, only_for) VALUES (?, ?, NULL)",
        stream.position,
        user_id,
    )


@pytest_twisted.ensureDeferred
async def test_a_failed_announcement_is_done_again_from_the_stored_position(
    db: Database,
) -> None:
    await _setup(db)
    keys, sender, stream = _Keys(), _Sender(), _Stream()
    positions = StreamConsumerStore(db)
    outbound = FederationOutboundStore(db)

    def announcer() -> DeviceListAnnouncer:
        return DeviceListAnnouncer(
            server_name="here.test",
            store=DeviceListOutboundStore(db),
            keys=keys,
            sender=sender,
            stream=stream,
            positions=positions,
            reactor=task.Clock(),
        )

    first = announcer()
    first._follower._stopped = False  # driven by hand, without timers
    await first.catch_up()  # first run: starts at the stream's position
    assert await positions.get_position(CONSUMER_NAME) == 0

    await _change(db, stream, ALICE)
    await _change(db, stream, "@bob:remote.test")  # remote users are not announced
    keys.failing = True
    try:
        await first.catch_up()
    except RuntimeError:
        pass
    assert await positions.get_position(CONSUMER_NAME) == 0
    assert await outbound.pending_edus("remote.test", 10) == []

    # A restart (a new announcer) redoes the work from the stored position.
    keys.failing = False
    second = announcer()
    second._follower._stopped = False
    await second.catch_up()
    assert await positions.get_position(CONSUMER_NAME) == 2
    pending = await outbound.pending_edus("remote.test", 10)
    assert [(e.edu_type, e.content["device_id"], e.content["stream_id"]) for e in pending] == [
        ("m.device_list_update", "D1", 1)
    ]
    assert await outbound.pending_edus("blocked.test", 10) == []
    assert await outbound.pending_edus("gone.test", 10) == []
    assert sender.woken == ["remote.test"]

    # Done again (a crash after the commit, before anything else): nothing twice.
    await _change(db, stream, ALICE)
    third = announcer()
    third._follower._stopped = False
    await third.catch_up()
    assert len(await outbound.pending_edus("remote.test", 10)) == 1
    assert await positions.get_position(CONSUMER_NAME) == 3


@pytest_twisted.ensureDeferred
async def test_a_join_sends_the_devices_to_servers_sharing_no_other_room(db: Database) -> None:
    from federation.e2ee.announcer import JoinAnnouncer
    from homeserver.clock import Clock
    from homeserver.events.event import Event
    from homeserver.storage.device_list_outbound import Announced

    def write(txn: Transaction) -> None:
        txn.executemany(
            "INSERT INTO rooms (room_nid, room_id, room_version, created_ts) VALUES (?, ?, ?, ?)",
            [(1, "!old:here.test", "10", 0), (2, "!new:here.test", "10", 0)],
        )
        txn.executemany(
            "INSERT INTO room_memberships (room_nid, user_id, membership, event_nid)"
            " VALUES (?, ?, ?, ?)",
            [
                (1, ALICE, "join", 1),
                (1, "@bob:known.test", "join", 2),
                (2, ALICE, "join", 3),
                (2, "@carl:known.test", "join", 4),
                (2, "@dora:new.test", "join", 5),
                (2, "@erin:blocked.test", "join", 6),
            ],
        )

    await db.run_interaction("test_rooms", write)
    store = DeviceListOutboundStore(db)
    assert await store.servers_new_to(ALICE, "!new:here.test") == {
        "new.test",
        "blocked.test",
    }

    class _NoEvents:
        async def get_events(self, event_ids: Sequence[str]) -> Mapping[str, Event]:
            return {}

    keys, sender = _Keys(), _Sender()
    joins = JoinAnnouncer(
        server_name="here.test",
        store=store,
        keys=keys,
        sender=sender,
        events=_NoEvents(),
        clock=Clock(task.Clock()),
    )
    await store.announce(ALICE, lambda before: (Announced(3, {"D1": "x"}, {}), None))

    class _Join:
        type = "m.room.member"
        membership = "join"
        state_key = ALICE
        room_id = "!new:here.test"
        event_id = "$join"

        class internal:  # the shape of Event.internal
            replaces_state = None

    await joins.joined(_Join())  # type: ignore[arg-type]
    pending = await FederationOutboundStore(db).pending_edus("new.test", 10)
    assert [
        (e.content["device_id"], e.content["stream_id"], e.content["prev_id"]) for e in pending
    ] == [("D1", 3, [2])]
    assert await FederationOutboundStore(db).pending_edus("known.test", 10) == []
    assert await FederationOutboundStore(db).pending_edus("blocked.test", 10) == []
    assert sender.woken == ["new.test"]


@pytest_twisted.ensureDeferred
async def test_a_completed_partial_room_sends_our_members_devices_to_its_new_servers(
    db: Database,
) -> None:
    """A room joined with partial state gets its members later: the servers they add
    are told our member's devices as a join would have told them."""
    from federation.e2ee.announcer import JoinAnnouncer
    from homeserver.clock import Clock
    from homeserver.events.event import Event
    from homeserver.storage.device_list_outbound import Announced

    def write(txn: Transaction) -> None:
        txn.execute(
            "INSERT INTO rooms (room_nid, room_id, room_version, created_ts) VALUES (?, ?, ?, ?)",
            (1, "!partial:far.test", "10", 0),
        )
        # As completion leaves the index: our member, and those the full state added.
        txn.executemany(
            "INSERT INTO room_memberships (room_nid, user_id, membership, event_nid)"
            " VALUES (?, ?, ?, ?)",
            [(1, ALICE, "join", 1), (1, "@fay:far.test", "join", 2)],
        )

    await db.run_interaction("test_rooms", write)
    store = DeviceListOutboundStore(db)

    class _NoEvents:
        async def get_events(self, event_ids: Sequence[str]) -> Mapping[str, Event]:
            return {}

    sender = _Sender()
    joins = JoinAnnouncer(
        server_name="here.test",
        store=store,
        keys=_Keys(),
        sender=sender,
        events=_NoEvents(),
        clock=Clock(task.Clock()),
    )
    await store.announce(ALICE, lambda before: (Announced(3, {"D1": "x"}, {}), None))

    await joins.room_completed("!partial:far.test", [ALICE])

    pending = await FederationOutboundStore(db).pending_edus("far.test", 10)
    assert [(e.content["user_id"], e.content["device_id"]) for e in pending] == [(ALICE, "D1")]
    assert sender.woken == ["far.test"]
