"""Pruning ``federation_forwarded_events`` (FederationOutboundStore.prune_forwarded)
on both engines: a remote event passed on is forgotten once the sender's consumer
handled it and every destination acknowledged past it, never before, and never
while it is not persisted.

spec: server-server-api.md#joining-rooms (the resident server sends the join on),
#transactions
"""

from __future__ import annotations

import pytest_twisted

from homeserver.storage.database import Database
from homeserver.storage.federation_outbound import FederationOutboundStore, QueuedPdu
from tests.receipts.rooms import Rooms

BOB = "@bob:remote.test"
DAVE = "@dave:remote3.test"


async def _two_passed_on_joins(
    rooms: Rooms, store: FederationOutboundStore
) -> tuple[int, str, int, str, int]:
    """A room whose two remote joins were made through us (Bob's, then Dave's), to be
    passed on; their positions and IDs, and the room's."""
    room_id = await rooms.public_room()
    room_nid = (await rooms.events.get_room(room_id)).room_nid  # type: ignore[union-attr]
    bob_join = await rooms.join(room_id, BOB)
    bob_at = await rooms.events.get_max_stream_ordering()  # the join's
    await store.add_forwarded(bob_join, "remote.test", 1)
    dave_join = await rooms.join(room_id, DAVE)
    dave_at = await rooms.events.get_max_stream_ordering()
    await store.add_forwarded(dave_join, "remote3.test", 2)
    return room_nid, bob_join, bob_at, dave_join, dave_at


@pytest_twisted.ensureDeferred
async def test_a_passed_on_event_goes_once_every_destination_acknowledged_past_it(
    db: Database,
) -> None:
    rooms = Rooms.on(db)
    store = FederationOutboundStore(db)
    room_nid, bob_join, bob_at, dave_join, dave_at = await _two_passed_on_joins(rooms, store)
    # other.test acknowledged past both joins, slow.test only Bob's.
    await store.record_queued(
        [QueuedPdu("other.test", room_nid, bob_at), QueuedPdu("slow.test", room_nid, bob_at)]
    )
    await store.set_acked_positions({"other.test": dave_at, "slow.test": bob_at})

    assert await store.prune_forwarded(dave_at) == 1
    assert await store.forwarded_origins([bob_join, dave_join]) == {dave_join: "remote3.test"}

    await store.set_acked_position("slow.test", dave_at)
    assert await store.prune_forwarded(dave_at) == 1
    assert await store.forwarded_origins([bob_join, dave_join]) == {}


@pytest_twisted.ensureDeferred
async def test_a_passed_on_event_stays_until_handled_and_while_not_persisted(
    db: Database,
) -> None:
    rooms = Rooms.on(db)
    store = FederationOutboundStore(db)
    _, bob_join, bob_at, dave_join, dave_at = await _two_passed_on_joins(rooms, store)
    # Recorded before its event is persisted (send_join does it in that order).
    await store.add_forwarded("$not-persisted-yet", "remote4.test", 3)
    everything = [bob_join, dave_join, "$not-persisted-yet"]

    # No destination yet: the consumer's position alone bounds.
    assert await store.prune_forwarded(bob_at - 1) == 0
    assert len(await store.forwarded_origins(everything)) == 3
    assert await store.prune_forwarded(bob_at) == 1
    assert sorted(await store.forwarded_origins(everything)) == sorted(everything[1:])

    # A destination acknowledged past Dave's join, the consumer not yet.
    await store.set_acked_position("other.test", dave_at + 10)
    assert await store.prune_forwarded(dave_at - 1) == 0
    assert await store.prune_forwarded(dave_at + 10) == 1
    assert await store.forwarded_origins(everything) == {"$not-persisted-yet": "remote4.test"}
