"""Who receives our events in a room joined with partial state, on both engines:
the room's member list lacks most members, so the servers the resident named at
the join (``servers_in_room``) receive them too, until the room is complete.

spec: data/api/server-server/joins-v2.yaml (servers_in_room)
"""

from __future__ import annotations

import pytest_twisted

from federation.sender.recipients import EventRecipients
from homeserver.storage.events import EventStore
from homeserver.storage.partial_state import PartialStateRoom, PartialStateStore
from homeserver.storage.state import StateStore
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.streams.consumer import StreamedEvent
from tests.federation.sender.conftest import Harness
from tests.receipts.rooms import SERVER

REMOTE1 = "remote1.test"
BOB = f"@bob:{REMOTE1}"
UNLISTED = ("remote2.test", "remote3.test")


async def last_event(harness: Harness) -> StreamedEvent:
    events = harness.rooms.events
    position = await events.get_max_stream_ordering()
    rows = await StreamConsumerStore(harness.db).events_after(position - 1, position, 1)
    [(pos, event_id)] = rows
    return StreamedEvent(pos, (await events.get_events([event_id]))[event_id])


def partial_store(harness: Harness) -> PartialStateStore:
    state = StateStore(harness.db)
    return PartialStateStore(harness.db, state=state, events=EventStore(harness.db, state))


@pytest_twisted.ensureDeferred
async def test_our_events_reach_the_servers_in_room_while_the_room_is_partial(
    harness: Harness,
) -> None:
    room_id = await harness.rooms.public_room(BOB)
    partial = partial_store(harness)
    await partial.mark(
        PartialStateRoom(
            room_id=room_id,
            join_event_id="$join",
            joined_via=REMOTE1,
            servers_in_room=frozenset({REMOTE1, SERVER, *UNLISTED}),
        ),
        now_ms=1,
    )
    recipients = EventRecipients(
        server_name=SERVER,
        store=harness.store,
        events=harness.rooms.events,
        partial_servers=partial.servers_while_partial,
    )
    await harness.message(room_id, "while partial")
    streamed = await last_event(harness)
    [(_, room_nid, destinations)] = await recipients.for_batch([streamed])
    assert destinations == frozenset({REMOTE1, *UNLISTED})
    # Catch-up of a destination only the resident named finds the event too.
    assert await recipients.due_to(UNLISTED[0], room_nid, streamed.position - 1, [streamed]) == [
        streamed
    ]

    await partial.unmark(room_id)
    await harness.message(room_id, "once complete")
    [(_, _, destinations)] = await recipients.for_batch([await last_event(harness)])
    assert destinations == frozenset({REMOTE1})
