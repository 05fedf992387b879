"""The federation sender against a recording peer, on both engines: who receives an
event, batching and order, the same transaction ID on a retry, backoff and catch-up,
restarts (missed events and durable EDUs come from the tables), refused
transactions, EDU coalescing, and the bound on transactions in flight.

spec: server-server-api.md#transactions, #pdus, #edus
"""

from __future__ import annotations

import pytest
import pytest_twisted

from federation.sender.recipients import EventRecipients
from federation.sender.sender import QUEUES_PER_TURN
from homeserver.storage.stream_consumers import StreamConsumerStore
from homeserver.streams.consumer import StreamedEvent
from tests.federation.sender.conftest import Harness, failing, until, until_stored
from tests.federation.sender.peer import ReceivedTransaction
from tests.receipts.rooms import ALICE, SERVER

REMOTE1 = "remote1.test"
REMOTE2 = "remote2.test"
BOB = f"@bob:{REMOTE1}"
CAROL = f"@carol:{REMOTE2}"


def bodies(transactions: list[ReceivedTransaction]) -> list[str]:
    return [body for txn in transactions for body in txn.bodies]


@pytest_twisted.ensureDeferred
async def test_events_go_in_stream_order_at_most_50_per_transaction(harness: Harness) -> None:
    room_id = await harness.rooms.public_room(BOB)
    harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    peer.holding.add(REMOTE1)
    m0 = await harness.message(room_id, "m0")
    await until(lambda: len(peer.to(REMOTE1)) == 1, "the first transaction")
    for n in range(1, 61):
        await harness.message(room_id, f"m{n}")
    await harness.caught_up()
    peer.release()
    await until(lambda: len(bodies(peer.to(REMOTE1))) == 61, "61 PDUs")

    transactions = peer.to(REMOTE1)
    assert [len(txn.body["pdus"]) for txn in transactions] == [1, 50, 10]
    assert bodies(transactions) == [f"m{n}" for n in range(61)]
    assert len({txn.txn_id for txn in transactions}) == 3
    for txn in transactions:
        assert txn.body["origin"] == SERVER
        assert txn.authorization.startswith("X-Matrix ")
        assert f'destination="{REMOTE1}"' in txn.authorization
    # Each PDU is the stored event exactly as signed.
    stored = (await harness.rooms.events.get_events([m0]))[m0]
    assert transactions[0].body["pdus"] == [stored.pdu]


@pytest_twisted.ensureDeferred
async def test_the_servers_with_joined_members_and_a_membership_target_receive_an_event(
    harness: Harness,
) -> None:
    room_id = await harness.rooms.public_room(BOB)
    harness.new_sender()
    await harness.caught_up()
    await harness.rooms.send(room_id, "m.room.member", ALICE, {"membership": "invite"}, CAROL)
    await harness.message(room_id, "hello")
    await harness.rooms.send(room_id, "m.room.member", ALICE, {"membership": "leave"}, BOB)
    await harness.message(room_id, "after the kick")
    # A remote user's own message is theirs to send, not ours.
    await harness.rooms.join(room_id, "@dave:remote3.test")
    await harness.message(room_id, "to dave")
    await harness.caught_up()
    peer = harness.peer
    await until(lambda: "to dave" in bodies(peer.to("remote3.test")), "the last message")

    def seen(destination: str) -> list[str]:
        return [
            pdu["content"].get("body") or f"{pdu['content']['membership']} {pdu['state_key']}"
            for txn in peer.to(destination)
            for pdu in txn.body["pdus"]
        ]

    await until(lambda: len(seen(REMOTE1)) == 3, "three PDUs for remote1")
    assert seen(REMOTE1) == [f"invite {CAROL}", "hello", f"leave {BOB}"]
    assert seen(REMOTE2) == [f"invite {CAROL}"]
    assert seen("remote3.test") == ["to dave"]
    assert peer.to(SERVER) == []


@pytest_twisted.ensureDeferred
async def test_an_event_before_a_remote_join_or_leave_in_one_batch_goes_where_it_was_due(
    harness: Harness,
) -> None:
    room_id = await harness.rooms.public_room()
    early = await harness.message(room_id, "before bob joined")
    join = await harness.rooms.join(room_id, BOB)
    during = await harness.message(room_id, "while bob was there")
    await harness.rooms.leave(room_id, BOB)
    late = await harness.message(room_id, "after bob left")
    events = harness.rooms.events
    position = await events.get_max_stream_ordering()
    rows = await StreamConsumerStore(harness.db).events_after(position - 5, position, 10)
    loaded = await events.get_events([event_id for _, event_id in rows])
    batch = [StreamedEvent(pos, loaded[event_id]) for pos, event_id in rows]
    assert [s.event.event_id for s in batch][:3] == [early, join, during]

    recipients = EventRecipients(server_name=SERVER, store=harness.store, events=events)
    found = {
        s.event.event_id: destinations for s, _, destinations in await recipients.for_batch(batch)
    }
    assert found == {during: frozenset({REMOTE1})}
    assert late not in found


@pytest_twisted.ensureDeferred
async def test_a_failed_transaction_is_sent_again_with_the_same_id(harness: Harness) -> None:
    room_id = await harness.rooms.public_room(BOB)
    harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    peer.status[REMOTE1] = 500
    await harness.message(room_id, "a")
    await until(lambda: len(peer.to(REMOTE1)) == 1, "the first attempt")
    await failing(harness, REMOTE1)
    await harness.message(room_id, "b")
    await harness.caught_up()
    assert len(peer.to(REMOTE1)) == 1  # backing off: nothing more was tried

    del peer.status[REMOTE1]
    harness.later(20)
    await until(lambda: len(peer.to(REMOTE1)) == 3, "the retry and the catch-up")
    first, retried, caught_up = peer.to(REMOTE1)
    assert retried.txn_id == first.txn_id
    assert retried.body["pdus"] == first.body["pdus"]
    assert caught_up.txn_id != first.txn_id
    assert caught_up.bodies == ["b"]


@pytest_twisted.ensureDeferred
async def test_a_destination_back_from_an_outage_gets_the_newest_event_of_each_room(
    harness: Harness,
) -> None:
    room1 = await harness.rooms.public_room(BOB)
    room2 = await harness.rooms.public_room(BOB)
    harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    peer.refusing.add(REMOTE1)
    await harness.message(room1, "a")
    await failing(harness, REMOTE1)
    await harness.message(room1, "b")
    await harness.message(room1, "c")
    await harness.message(room2, "d")
    await harness.caught_up()
    assert peer.to(REMOTE1) == []

    peer.refusing.clear()
    harness.later(20)
    await until(lambda: len(peer.to(REMOTE1)) == 2, "the retry and the catch-up")
    retried, caught_up = peer.to(REMOTE1)
    assert retried.bodies == ["a"]
    # Few events missed: all of them, in stream order.
    assert caught_up.bodies == ["b", "c", "d"]

    # Live sending resumes.
    last = await harness.message(room2, "e")
    await until(lambda: len(peer.to(REMOTE1)) == 3, "a live transaction")
    assert peer.to(REMOTE1)[2].bodies == ["e"]
    stored = (await harness.rooms.events.get_events([last]))[last]
    await until_stored(
        lambda: _acked_is(harness, REMOTE1, stored.internal.stream_ordering), "acknowledged"
    )


async def _acked_is(harness: Harness, destination: str, position: int | None) -> bool:
    return await harness.store.get_acked_position(destination) == position


@pytest_twisted.ensureDeferred
async def test_waking_a_destination_retries_it_at_once(harness: Harness) -> None:
    room_id = await harness.rooms.public_room(BOB)
    sender = harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    peer.status[REMOTE1] = 503
    await harness.message(room_id, "a")
    await failing(harness, REMOTE1)
    del peer.status[REMOTE1]
    sender.wake_destination(REMOTE1)  # no time passes: the backoff is ignored
    await until(lambda: len(peer.to(REMOTE1)) == 2, "the retry")
    assert peer.to(REMOTE1)[1].txn_id == peer.to(REMOTE1)[0].txn_id


@pytest_twisted.ensureDeferred
async def test_a_restarted_sender_catches_up_from_the_table(harness: Harness) -> None:
    room1 = await harness.rooms.public_room(BOB)
    room2 = await harness.rooms.public_room(BOB)
    first = harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    peer.refusing.add(REMOTE1)
    await harness.message(room1, "a")
    await failing(harness, REMOTE1)
    await harness.message(room1, "b")
    await harness.message(room2, "c")
    await harness.caught_up()
    await harness.stop_sender(first)

    peer.refusing.clear()
    harness.later(20)
    harness.new_sender()
    # A new event at once must not be acknowledged past what was missed before it.
    await harness.message(room2, "d")
    await until(lambda: len(bodies(peer.to(REMOTE1))) == 4, "the catch-up")
    # The failed transaction was in the first process's memory: the table has it.
    assert sorted(bodies(peer.to(REMOTE1))) == ["a", "b", "c", "d"]


@pytest_twisted.ensureDeferred
async def test_durable_edus_survive_a_restart_and_go_once_acknowledged(harness: Harness) -> None:
    peer = harness.peer
    peer.refusing.add(REMOTE1)
    first = harness.new_sender()
    await first.send_durable_edu(REMOTE1, "m.direct_to_device", {"n": 1})
    await failing(harness, REMOTE1)
    await first.send_durable_edu(REMOTE1, "m.direct_to_device", {"n": 2})
    await harness.stop_sender(first)
    assert len(await harness.store.pending_edus(REMOTE1, 10)) == 2

    peer.refusing.clear()
    harness.later(20)
    harness.new_sender()
    await until(lambda: len(peer.to(REMOTE1)) == 1, "the EDUs")
    assert peer.to(REMOTE1)[0].edus == [
        {"edu_type": "m.direct_to_device", "content": {"n": 1}},
        {"edu_type": "m.direct_to_device", "content": {"n": 2}},
    ]

    async def deleted() -> bool:
        return await harness.store.pending_edus(REMOTE1, 10) == []

    await until_stored(deleted, "the EDU rows deleted")


@pytest_twisted.ensureDeferred
async def test_transactions_are_filled_up_to_about_4_mib(harness: Harness) -> None:
    big = "a" * 1_500_000
    for n in range(6):
        await harness.store.add_edus([REMOTE1], "m.direct_to_device", {"n": n, "x": big}, 0)
    harness.new_sender()
    peer = harness.peer
    await until(lambda: len(peer.to(REMOTE1)) == 3, "three transactions")
    assert [len(txn.edus) for txn in peer.to(REMOTE1)] == [2, 2, 2]
    assert [edu["content"]["n"] for txn in peer.to(REMOTE1) for edu in txn.edus] == list(range(6))


@pytest_twisted.ensureDeferred
async def test_one_edu_larger_than_the_limit_still_goes(harness: Harness) -> None:
    await harness.store.add_edus([REMOTE1], "m.direct_to_device", {"x": "a" * 5_000_000}, 0)
    harness.new_sender()
    await until(lambda: len(harness.peer.to(REMOTE1)) == 1, "the transaction")


@pytest_twisted.ensureDeferred
async def test_an_unsent_edu_is_replaced_by_a_later_one_with_the_same_key(
    harness: Harness,
) -> None:
    sender = harness.new_sender()
    peer = harness.peer
    peer.holding.add(REMOTE1)
    sender.send_edu(REMOTE1, "m.typing", {"n": 0}, coalesce_key="!room")
    await until(lambda: len(peer.to(REMOTE1)) == 1, "the first transaction")
    sender.send_edu(REMOTE1, "m.typing", {"n": 1}, coalesce_key="!room")
    sender.send_edu(REMOTE1, "m.receipt", {"r": 1})
    sender.send_edu(REMOTE1, "m.typing", {"n": 2}, coalesce_key="!room")
    sender.send_edu(REMOTE1, "m.typing", {"n": 3}, coalesce_key="!other")
    peer.release()
    await until(lambda: len(peer.to(REMOTE1)) == 2, "the second transaction")
    assert peer.to(REMOTE1)[1].edus == [
        {"edu_type": "m.receipt", "content": {"r": 1}},
        {"edu_type": "m.typing", "content": {"n": 2}},
        {"edu_type": "m.typing", "content": {"n": 3}},
    ]


@pytest.mark.parametrize("status", [400, 401, 404, 413])
@pytest_twisted.ensureDeferred
async def test_a_rejected_transaction_is_not_acknowledged_but_caught_up(
    harness: Harness, status: int
) -> None:
    room_id = await harness.rooms.public_room(BOB)
    harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    peer.status[REMOTE1] = status
    await harness.message(room_id, "a")
    await until(lambda: len(peer.to(REMOTE1)) == 1, "the rejected transaction")
    await failing(harness, REMOTE1)
    del peer.status[REMOTE1]
    harness.later(20)
    await until(lambda: len(peer.to(REMOTE1)) == 2, "the catch-up")
    rejected, caught_up = peer.to(REMOTE1)
    # Nothing dropped: the event goes again, in a transaction built anew.
    assert caught_up.bodies == ["a"]
    assert caught_up.txn_id != rejected.txn_id


@pytest_twisted.ensureDeferred
async def test_durable_edus_of_a_rejected_transaction_are_kept(harness: Harness) -> None:
    peer = harness.peer
    peer.status[REMOTE1] = 401
    sender = harness.new_sender()
    await sender.send_durable_edu(REMOTE1, "m.direct_to_device", {"n": 1})
    await until(lambda: len(peer.to(REMOTE1)) == 1, "the rejected transaction")
    await failing(harness, REMOTE1)
    assert len(await harness.store.pending_edus(REMOTE1, 10)) == 1
    del peer.status[REMOTE1]
    harness.later(20)
    await until(lambda: len(peer.to(REMOTE1)) == 2, "the EDU again")
    assert peer.to(REMOTE1)[1].edus == [{"edu_type": "m.direct_to_device", "content": {"n": 1}}]


@pytest_twisted.ensureDeferred
async def test_transactions_in_flight_are_bounded(harness: Harness) -> None:
    servers = [f"remote{n}.test" for n in range(1, 6)]
    room_id = await harness.rooms.public_room(*(f"@u:{server}" for server in servers))
    harness.new_sender(max_concurrent=2)
    await harness.caught_up()
    peer = harness.peer
    peer.holding.update(servers)
    await harness.message(room_id, "to everyone")
    for answered in (2, 4):
        await until(lambda n=answered: len(peer.received) == n, f"{answered} transactions")  # type: ignore[misc]
        peer.release(keep_holding=True)
    await until(lambda: len(peer.received) == 5, "every transaction")
    peer.release()
    assert peer.most_in_flight == 2
    assert sorted(txn.destination for txn in peer.received) == servers


@pytest_twisted.ensureDeferred
async def test_a_join_made_through_us_is_passed_on_to_the_other_servers(
    harness: Harness,
) -> None:
    room_id = await harness.rooms.public_room(BOB)
    first = harness.new_sender()
    await harness.caught_up()
    await harness.stop_sender(first)
    # carol's server joined through us (send_join): carol's join is a remote event.
    join = await harness.rooms.join(room_id, CAROL)
    # Recorded before a running sender can read the join from the stream (send_join
    # records it before persisting): a sender started first could race past it.
    await first.send_on_behalf_of(join, REMOTE2)
    harness.new_sender()
    await harness.message(room_id, "welcome")
    await harness.caught_up()
    peer = harness.peer
    await until(lambda: "welcome" in bodies(peer.to(REMOTE2)), "the welcome")
    await until(lambda: len(peer.to(REMOTE1)) >= 1, "remote1's transactions")
    pdus_to_remote1 = [pdu for txn in peer.to(REMOTE1) for pdu in txn.body["pdus"]]
    assert pdus_to_remote1[0]["state_key"] == CAROL
    # Never back to the server it came from.
    assert all(
        pdu.get("state_key") != CAROL for txn in peer.to(REMOTE2) for pdu in txn.body["pdus"]
    )


@pytest_twisted.ensureDeferred
async def test_a_join_to_pass_on_survives_a_restart(harness: Harness) -> None:
    room_id = await harness.rooms.public_room(BOB)
    first = harness.new_sender()
    await harness.caught_up()
    await harness.stop_sender(first)
    join = await harness.rooms.join(room_id, CAROL)
    # Recorded by a process that stops before its consumer reads the join.
    await first.send_on_behalf_of(join, REMOTE2)
    harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    await until(lambda: len(peer.to(REMOTE1)) >= 1, "remote1's transactions")
    assert [pdu["state_key"] for txn in peer.to(REMOTE1) for pdu in txn.body["pdus"]] == [CAROL]
    assert peer.to(REMOTE2) == []


@pytest_twisted.ensureDeferred
async def test_a_passed_on_join_is_caught_up_by_a_server_that_was_down(harness: Harness) -> None:
    room_id = await harness.rooms.public_room(BOB)
    first = harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    peer.status[REMOTE1] = 500
    await harness.message(room_id, "before")
    await failing(harness, REMOTE1)
    await harness.stop_sender(first)
    join = await harness.rooms.join(room_id, CAROL)
    await first.send_on_behalf_of(join, REMOTE2)
    await harness.message(room_id, "welcome")
    del peer.status[REMOTE1]
    harness.later(20)
    harness.new_sender()
    await harness.caught_up()
    await until(lambda: "welcome" in bodies(peer.to(REMOTE1)), "the catch-up")
    caught_up = [pdu for txn in peer.to(REMOTE1)[1:] for pdu in txn.body["pdus"]]
    assert [pdu.get("state_key") for pdu in caught_up] == [None, CAROL, None]
    # carol's server never gets its own join back.
    assert all(
        pdu.get("state_key") != CAROL for txn in peer.to(REMOTE2) for pdu in txn.body["pdus"]
    )


@pytest_twisted.ensureDeferred
async def test_a_durable_edu_for_several_servers_reaches_each_but_ourselves(
    harness: Harness,
) -> None:
    sender = harness.new_sender()
    await sender.send_durable_edus([REMOTE1, REMOTE2, SERVER], "m.device_list_update", {"n": 1})
    peer = harness.peer
    await until(lambda: len(peer.received) == 2, "both transactions")
    assert sorted(txn.destination for txn in peer.received) == [REMOTE1, REMOTE2]
    assert all(
        txn.edus == [{"edu_type": "m.device_list_update", "content": {"n": 1}}]
        for txn in peer.received
    )


@pytest_twisted.ensureDeferred
async def test_a_busy_room_is_caught_up_with_its_newest_event_only(harness: Harness) -> None:
    room_id = await harness.rooms.public_room(BOB)
    harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    peer.refusing.add(REMOTE1)
    await harness.message(room_id, "first")
    await failing(harness, REMOTE1)
    for n in range(12):
        await harness.message(room_id, f"missed {n}")
    await harness.caught_up()
    peer.refusing.clear()
    harness.later(20)
    await until(lambda: len(peer.to(REMOTE1)) == 2, "the retry and the catch-up")
    # The remote fetches the rest with get_missing_events.
    assert [txn.bodies for txn in peer.to(REMOTE1)] == [["first"], ["missed 11"]]


@pytest_twisted.ensureDeferred
async def test_catch_up_never_sends_what_came_before_the_destination_joined(
    harness: Harness,
) -> None:
    room_id = await harness.rooms.public_room(BOB)
    harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    peer.refusing.update({REMOTE1, REMOTE2})
    await harness.message(room_id, "for bob")
    await failing(harness, REMOTE1)
    await harness.message(room_id, "still for bob only")
    await harness.rooms.join(room_id, CAROL)
    await harness.message(room_id, "for both")
    await harness.caught_up()
    await failing(harness, REMOTE2)
    peer.refusing.clear()
    harness.later(20)
    await until(lambda: "for both" in bodies(peer.to(REMOTE2)), "remote2's catch-up")
    await until(lambda: "for both" in bodies(peer.to(REMOTE1)), "remote1's catch-up")
    assert bodies(peer.to(REMOTE2)) == ["for both"]
    assert bodies(peer.to(REMOTE1)) == ["for bob", "still for bob only", "for both"]


@pytest_twisted.ensureDeferred
async def test_an_event_for_more_servers_than_one_slice_reaches_each_once(
    harness: Harness,
) -> None:
    # Queues are handed PDUs a slice at a time, the reactor served in between.
    servers = [f"remote{n}.test" for n in range(1, 3 * QUEUES_PER_TURN + 3)]
    room_id = await harness.rooms.public_room(*(f"@u:{server}" for server in servers))
    harness.new_sender()
    await harness.caught_up()
    peer = harness.peer
    await harness.message(room_id, "one")
    await harness.message(room_id, "two")
    for server in servers:
        await until(lambda s=server: len(bodies(peer.to(s))) == 2, f"both at {server}")  # type: ignore[misc]
    for server in servers:
        assert bodies(peer.to(server)) == ["one", "two"]
