"""The sender forgets the remote events it passed on (``federation_forwarded_events``)
in a periodic task, once every destination acknowledged past them, and keeps those a
destination that is down still has to catch up on; on both engines.

spec: server-server-api.md#joining-rooms ("The resident server will then send the
event to other servers in the room"), #transactions
"""

from __future__ import annotations

import pytest_twisted

from tests.federation.sender.conftest import Harness, failing, until, until_stored

REMOTE1 = "remote1.test"
REMOTE2 = "remote2.test"
REMOTE3 = "remote3.test"
BOB = f"@bob:{REMOTE1}"
CAROL = f"@carol:{REMOTE2}"
DAVE = f"@dave:{REMOTE3}"
PRUNE_S = 600.0


@pytest_twisted.ensureDeferred
async def test_passed_on_joins_are_forgotten_once_acknowledged_and_kept_for_a_server_down(
    harness: Harness,
) -> None:
    room_id = await harness.rooms.public_room(BOB)
    first = harness.new_sender(prune_interval_s=PRUNE_S)
    await harness.caught_up()
    await harness.stop_sender(first)
    # Carol's join, made through us: recorded before any running sender reads it (as
    # send_join records before persisting).
    carol_join = await harness.rooms.join(room_id, CAROL)
    carol_at = await harness.rooms.events.get_max_stream_ordering()  # the join's
    await first.send_on_behalf_of(carol_join, REMOTE2)
    second = harness.new_sender(prune_interval_s=PRUNE_S)
    await harness.caught_up()

    async def remote1_acknowledged_carol() -> bool:
        acked = await harness.store.get_acked_position(REMOTE1)
        return acked is not None and acked >= carol_at

    await until_stored(remote1_acknowledged_carol, "remote1 acknowledging carol's join")
    await harness.stop_sender(second)

    # remote1 goes down; then Dave's join is made through us.
    harness.peer.refusing.add(REMOTE1)
    dave_join = await harness.rooms.join(room_id, DAVE)
    await second.send_on_behalf_of(dave_join, REMOTE3)
    harness.new_sender(prune_interval_s=PRUNE_S)
    await harness.caught_up()
    await failing(harness, REMOTE1)
    await until(lambda: len(harness.peer.to(REMOTE2)) >= 1, "dave's join to remote2")

    harness.later(PRUNE_S)

    async def carol_forgotten() -> bool:
        return await harness.store.forwarded_origins([carol_join]) == {}

    await until_stored(carol_forgotten, "carol's join forgotten")
    # Pruned in the same statement, so this is after the prune: remote1 has yet to
    # catch up on Dave's join, and must still be told to pass it on.
    assert await harness.store.forwarded_origins([carol_join, dave_join]) == {dave_join: REMOTE3}
