"""The three ticks of a message against the real server (both engines), with
matrix-nio as the recipient: *sent* (the event ID), *delivered* (a
``dev.homeserver.delivered`` receipt once a /sync response carrying the event reached
the recipient) and *seen* (``m.read``).

Alice, the sender, watches receipts through her own ``/sync``.  Every "nothing
arrived" check is made meaningful by a control: Carol receives the same event, and
only once Alice has seen Carol's delivered receipt — written after the one that must
not exist would have been — is the absence of Bob's asserted.

design: docs/live-status.md ("Message ticks"); spec: client-server-api/modules/receipts.md
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import attrs
import pytest
from nio import ReceiptEvent, RoomReadMarkersResponse

from tests.support.matrix import call, login, register, running_server
from tests.support.nio_client import logged_in, poll, run, synced
from tests.support.server_process import ServerProcess

DELIVERED = "dev.homeserver.delivered"


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config) as process:
        yield process


# -- helpers ---------------------------------------------------------------------------


@attrs.frozen
class Seen:
    """One receipt as a /sync response showed it."""

    room_id: str
    event_id: str
    receipt_type: str
    user_id: str
    ts: int


def sync(server: ServerProcess, account: dict[str, Any], **query: Any) -> dict[str, Any]:
    path = "/sync" + (f"?{urlencode(query)}" if query else "")
    response = call(server, "GET", path, account["access_token"])
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def receipts_in(body: dict[str, Any]) -> list[Seen]:
    seen = []
    for room_id, room in body.get("rooms", {}).get("join", {}).items():
        for event in room.get("ephemeral", {}).get("events", []):
            if event["type"] != "m.receipt":
                continue
            for event_id, by_type in event["content"].items():
                for receipt_type, by_user in by_type.items():
                    for user_id, data in by_user.items():
                        seen.append(Seen(room_id, event_id, receipt_type, user_id, data["ts"]))
    return seen


class Watcher:
    """A user's incremental /syncs, keeping every receipt they showed."""

    def __init__(self, server: ServerProcess, account: dict[str, Any]) -> None:
        self.server = server
        self.account = account
        body = sync(server, account)
        self.since: str = body["next_batch"]
        self.seen: list[Seen] = receipts_in(body)

    def sync(self) -> list[Seen]:
        body = sync(self.server, self.account, since=self.since)
        self.since = body["next_batch"]
        new = receipts_in(body)
        self.seen.extend(new)
        return new

    async def until(self, wanted: Callable[[Seen], bool]) -> Seen:
        """Sync until a receipt matching ``wanted`` shows up (or fail)."""

        async def found() -> Seen | None:
            self.sync()
            return next((s for s in self.seen if wanted(s)), None)

        return await poll(found)

    def delivered_by(self, user_id: str) -> set[str]:
        return {
            s.event_id for s in self.seen if s.receipt_type == DELIVERED and s.user_id == user_id
        }


def is_receipt(receipt_type: str, user_id: str, event_id: str) -> Callable[[Seen], bool]:
    return lambda s: (s.receipt_type, s.user_id, s.event_id) == (receipt_type, user_id, event_id)


def room_with(server: ServerProcess, owner: dict[str, Any], *members: dict[str, Any]) -> str:
    response = call(server, "POST", "/createRoom", owner["access_token"], {"preset": "public_chat"})
    assert response.status == 200, response.body
    room_id: str = response.json()["room_id"]
    for member in members:
        response = call(server, "POST", f"/join/{quote(room_id)}", member["access_token"], {})
        assert response.status == 200, response.body
    return room_id


def send(server: ServerProcess, account: dict[str, Any], room_id: str, body: str) -> str:
    response = call(
        server,
        "PUT",
        f"/rooms/{quote(room_id)}/send/m.room.message/{quote(body)}",
        account["access_token"],
        {"msgtype": "m.text", "body": body},
    )
    assert response.status == 200, response.body
    event_id: str = response.json()["event_id"]
    return event_id


def timeline_ids(response: Any, room_id: str, section: str = "join") -> list[str]:
    rooms = getattr(response.rooms, section)
    if room_id not in rooms:
        return []
    return [event.event_id for event in rooms[room_id].timeline.events]


def nio_receipts(response: Any, room_id: str) -> list[tuple[str, str, str]]:
    """(event ID, receipt type, user ID) of the receipts in nio's parsed ephemeral."""
    room = response.rooms.join.get(room_id)
    if room is None:
        return []
    return [
        (receipt.event_id, receipt.receipt_type, receipt.user_id)
        for event in room.ephemeral
        if isinstance(event, ReceiptEvent)
        for receipt in event.receipts
    ]


# -- the three ticks -------------------------------------------------------------------


def test_sent_then_delivered_once_bob_syncs_then_seen_once_he_reads(
    server: ServerProcess,
) -> None:
    alice, bob, carol = (register(server, name) for name in ("alice", "bob", "carol"))
    room_id = room_with(server, alice, bob, carol)

    async def scenario() -> None:
        async with logged_in(server, bob) as nio_bob:
            await synced(nio_bob)
            carol_view = Watcher(server, carol)
            alice_view = Watcher(server, alice)
            # Sent: the server accepted it and named it.
            message = send(server, alice, room_id, "hello bob")
            assert message.startswith("$")
            # Carol receives it, and Alice sees Carol's tick: any tick of Bob's written
            # by now would have shown up too.
            carol_view.sync()
            await alice_view.until(is_receipt(DELIVERED, carol["user_id"], message))
            assert message not in alice_view.delivered_by(bob["user_id"])
            # Bob's client receives it: delivered.
            received = await synced(nio_bob)
            assert message in timeline_ids(received, room_id)
            tick = await alice_view.until(is_receipt(DELIVERED, bob["user_id"], message))
            assert tick.room_id == room_id
            assert abs(tick.ts - time.time() * 1000) < 60_000
            # Not seen yet...
            assert not any(
                s.receipt_type == "m.read" and s.user_id == bob["user_id"] for s in alice_view.seen
            )
            # ... until Bob reads it.
            read = await nio_bob.room_read_markers(room_id, message, read_event=message)
            assert isinstance(read, RoomReadMarkersResponse), read
            await alice_view.until(is_receipt("m.read", bob["user_id"], message))
            # Bob is never shown his own delivered receipts.
            again = await synced(nio_bob)
            assert (message, "m.read", bob["user_id"]) in nio_receipts(again, room_id)
            assert not [r for r in nio_receipts(again, room_id) if r[1] == DELIVERED]

    run(scenario())


def test_a_delivered_receipt_looks_like_any_receipt_to_the_sender(server: ServerProcess) -> None:
    alice, bob = register(server, "alice"), register(server, "bob")
    room_id = room_with(server, alice, bob)
    before = sync(server, alice)["next_batch"]
    message = send(server, alice, room_id, "hi")
    sync(server, bob)

    async def arrived() -> dict[str, Any] | None:
        body = sync(server, alice, since=before)
        events = body["rooms"]["join"].get(room_id, {}).get("ephemeral", {}).get("events", [])
        for event in events:
            if DELIVERED in event["content"].get(message, {}):
                found: dict[str, Any] = event
                return found
        return None

    event = run(poll(arrived))
    assert event["type"] == "m.receipt"
    assert list(event["content"][message][DELIVERED]) == [bob["user_id"]]
    assert set(event["content"][message][DELIVERED][bob["user_id"]]) == {"ts"}


def test_private_reads_never_show_others_a_receipt(server: ServerProcess) -> None:
    alice, bob, carol = (register(server, name) for name in ("alice", "bob", "carol"))
    room_id = room_with(server, alice, bob, carol)

    async def scenario() -> None:
        async with logged_in(server, bob) as nio_bob:
            bob_received = set(timeline_ids(await synced(nio_bob), room_id))
            carol_view = Watcher(server, carol)
            alice_view = Watcher(server, alice)
            first = send(server, alice, room_id, "first")
            bob_received.update(timeline_ids(await synced(nio_bob), room_id))
            await alice_view.until(is_receipt(DELIVERED, bob["user_id"], first))
            # A message Bob's client never received, privately marked read by him.
            unseen = send(server, alice, room_id, "second")
            marked = await nio_bob.room_read_markers(room_id, unseen, private_read_event=unseen)
            assert isinstance(marked, RoomReadMarkersResponse), marked
            carol_view.sync()
            await alice_view.until(is_receipt(DELIVERED, carol["user_id"], unseen))
            assert not [s for s in alice_view.seen if s.receipt_type == "m.read.private"]
            assert unseen not in alice_view.delivered_by(bob["user_id"])
            assert alice_view.delivered_by(bob["user_id"]) <= bob_received
            # Bob sees his own private receipt.
            mine = await synced(nio_bob)
            bob_received.update(timeline_ids(mine, room_id))
            assert (unseen, "m.read.private", bob["user_id"]) in nio_receipts(mine, room_id)
            # That sync did carry the message: now, and only now, it is delivered; the
            # private read stays private.
            await alice_view.until(is_receipt(DELIVERED, bob["user_id"], unseen))
            carol_view.sync()
            last = send(server, alice, room_id, "third")
            carol_view.sync()
            await alice_view.until(is_receipt(DELIVERED, carol["user_id"], last))
            assert not [s for s in alice_view.seen if s.receipt_type == "m.read.private"]
            assert not [
                s
                for s in alice_view.seen
                if s.receipt_type == "m.read" and s.user_id == bob["user_id"]
            ]
            assert alice_view.delivered_by(bob["user_id"]) <= bob_received

    run(scenario())


def test_clients_cannot_set_a_delivered_receipt(server: ServerProcess) -> None:
    alice, bob = register(server, "alice"), register(server, "bob")
    room_id = room_with(server, alice, bob)
    message = send(server, alice, room_id, "hi")
    response = call(
        server,
        "POST",
        f"/rooms/{quote(room_id)}/receipt/{DELIVERED}/{quote(message)}",
        bob["access_token"],
        {},
    )
    assert (response.status, response.json()["errcode"]) == (400, "M_INVALID_PARAM")


# -- who gets none ---------------------------------------------------------------------


def test_a_user_who_left_gets_no_delivered_receipt(server: ServerProcess) -> None:
    alice, bob, carol = (register(server, name) for name in ("alice", "bob", "carol"))
    room_id = room_with(server, alice, bob, carol)

    async def scenario() -> None:
        async with logged_in(server, bob) as nio_bob:
            await synced(nio_bob)
            carol_view = Watcher(server, carol)
            alice_view = Watcher(server, alice)
            before_leave = send(server, alice, room_id, "before you go")
            response = call(
                server, "POST", f"/rooms/{quote(room_id)}/leave", bob["access_token"], {}
            )
            assert response.status == 200, response.body
            after_leave = send(server, alice, room_id, "after you left")
            # Bob's client learns of his leave, with the message he never received
            # before leaving in that room's (left) timeline.
            left = await synced(nio_bob)
            assert room_id in left.rooms.leave
            assert before_leave in timeline_ids(left, room_id, "leave")
            assert after_leave not in timeline_ids(left, room_id, "leave")
            carol_view.sync()
            await alice_view.until(is_receipt(DELIVERED, carol["user_id"], after_leave))
            assert alice_view.delivered_by(bob["user_id"]) & {before_leave, after_leave} == set()

    run(scenario())


def test_rooms_above_max_joined_members_get_no_delivered_receipts(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(
        tmp_path, database_config, delivery_receipts={"max_joined_members": 2}
    ) as server:
        alice, bob, carol = (register(server, name) for name in ("alice", "bob", "carol"))
        big = room_with(server, alice, bob, carol)
        small = room_with(server, alice, bob)

        async def scenario() -> None:
            async with logged_in(server, bob) as nio_bob:
                await synced(nio_bob)
                alice_view = Watcher(server, alice)
                in_big = send(server, alice, big, "to three")
                in_small = send(server, alice, small, "to two")
                received = await synced(nio_bob)
                assert in_big in timeline_ids(received, big)
                assert in_small in timeline_ids(received, small)
                sync(server, carol)
                # A room at the limit gets them (written with, or after, the big room's).
                await alice_view.until(is_receipt(DELIVERED, bob["user_id"], in_small))
                assert [
                    s for s in alice_view.seen if s.room_id == big and s.receipt_type == DELIVERED
                ] == []

        run(scenario())


def test_delivered_receipts_can_be_turned_off(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(tmp_path, database_config, delivery_receipts={"enabled": False}) as server:
        alice, bob = register(server, "alice"), register(server, "bob")
        room_id = room_with(server, alice, bob)

        async def scenario() -> None:
            async with logged_in(server, bob) as nio_bob:
                await synced(nio_bob)
                alice_view = Watcher(server, alice)
                message = send(server, alice, room_id, "hi")
                assert message in timeline_ids(await synced(nio_bob), room_id)
                # Control: Bob's read receipt, set after his sync, reaches Alice.
                await nio_bob.room_read_markers(room_id, message, read_event=message)
                await alice_view.until(is_receipt("m.read", bob["user_id"], message))
                assert not [s for s in alice_view.seen if s.receipt_type == DELIVERED]

        run(scenario())


# -- at most one -----------------------------------------------------------------------


def test_a_second_device_or_sync_adds_no_second_delivered_receipt(server: ServerProcess) -> None:
    alice, bob, carol = (register(server, name) for name in ("alice", "bob", "carol"))
    room_id = room_with(server, alice, bob, carol)
    second_device = login(server, "bob")
    assert second_device["device_id"] != bob["device_id"]

    async def scenario() -> None:
        async with logged_in(server, bob) as nio_bob:
            await synced(nio_bob)
            before_message = nio_bob.next_batch
            alice_view = Watcher(server, alice)
            message = send(server, alice, room_id, "once")
            assert message in timeline_ids(await synced(nio_bob), room_id)
            await alice_view.until(is_receipt(DELIVERED, bob["user_id"], message))
            mark = len(alice_view.seen)
            # The same event reaches Bob again: the same sync repeated, an initial sync
            # on the same device, and his second device.
            async with logged_in(server, bob) as fresh, logged_in(server, second_device) as other:
                for response in (
                    await synced(nio_bob, since=before_message),
                    await synced(fresh),
                    await synced(other),
                ):
                    assert message in timeline_ids(response, room_id)
            # Control: Carol's first receipt of it, written after any of those.
            sync(server, carol)
            await alice_view.until(is_receipt(DELIVERED, carol["user_id"], message))
            # Counting every receipt change Alice was shown since Bob's: only Carol's.
            changes = alice_view.seen[mark:]
            assert [(s.receipt_type, s.user_id, s.event_id) for s in changes] == [
                (DELIVERED, carol["user_id"], message)
            ]

    run(scenario())


# -- unread counts ---------------------------------------------------------------------


def test_delivered_receipts_do_not_count_as_read_for_unread_counts(
    server: ServerProcess,
) -> None:
    alice, bob = register(server, "alice"), register(server, "bob")
    room_id = room_with(server, alice, bob)

    def notifications(response: Any) -> int:
        count: int = response.rooms.join[room_id].unread_notifications.notification_count
        return count

    async def scenario() -> None:
        async with logged_in(server, bob) as nio_bob:
            await synced(nio_bob)
            alice_view = Watcher(server, alice)
            first = send(server, alice, room_id, "one")
            second = send(server, alice, room_id, "two")
            received = await synced(nio_bob)
            assert timeline_ids(received, room_id)[-2:] == [first, second]
            assert notifications(received) == 2
            await alice_view.until(is_receipt(DELIVERED, bob["user_id"], second))
            # Counted afresh after the delivery: still unread.
            async with logged_in(server, bob) as fresh:
                assert notifications(await synced(fresh)) == 2
            # A real read does count (so the count above could have moved).
            await nio_bob.room_read_markers(room_id, first, read_event=first)
            async with logged_in(server, bob) as fresh:
                assert notifications(await synced(fresh)) == 1
            # The other way round: Bob's reply delivered to Alice leaves her count alone.
            bob_view = Watcher(server, bob)
            reply = send(server, bob, room_id, "three")
            body = sync(server, alice, since=alice_view.since)
            alice_view.since = body["next_batch"]
            assert body["rooms"]["join"][room_id]["unread_notifications"]["notification_count"] == 1
            await bob_view.until(is_receipt(DELIVERED, alice["user_id"], reply))
            fresh_body = sync(server, alice)
            assert fresh_body["rooms"]["join"][room_id]["unread_notifications"] == {
                "notification_count": 1,
                "highlight_count": 0,
            }

    run(scenario())
