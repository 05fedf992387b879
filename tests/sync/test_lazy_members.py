"""The record of membership events each device holds, for lazy-loading /sync."""

from __future__ import annotations

from homeserver.sync.lazy_members import LazyMembersSent

ALICE, BOB = "@alice:example.org", "@bob:example.org"
ROOM = "!room:example.org"


def test_members_count_as_held_once_their_response_is_acknowledged() -> None:
    sent = LazyMembersSent()
    sent.record(ALICE, "PHONE", ROOM, {BOB: "$join"}, 10, fresh=True)
    assert sent.held(ALICE, "PHONE", ROOM, since=9) == {}  # response at 10 lost
    assert sent.held(ALICE, "PHONE", ROOM, since=10) == {BOB: "$join"}
    assert sent.held(ALICE, "LAPTOP", ROOM, since=10) == {}
    assert sent.held(BOB, "PHONE", ROOM, since=10) == {}


def test_resending_the_same_member_keeps_the_earlier_acknowledgement() -> None:
    sent = LazyMembersSent()
    sent.record(ALICE, "PHONE", ROOM, {BOB: "$join"}, 10, fresh=True)
    sent.record(ALICE, "PHONE", ROOM, {BOB: "$join"}, 20, fresh=False)
    assert sent.held(ALICE, "PHONE", ROOM, since=15) == {BOB: "$join"}
    # A changed membership is held only from its own response on.
    sent.record(ALICE, "PHONE", ROOM, {BOB: "$rename"}, 30, fresh=False)
    assert sent.held(ALICE, "PHONE", ROOM, since=25) == {}
    assert sent.held(ALICE, "PHONE", ROOM, since=30) == {BOB: "$rename"}


def test_a_fresh_room_forgets_what_was_held_before() -> None:
    sent = LazyMembersSent()
    sent.record(ALICE, "PHONE", ROOM, {BOB: "$join"}, 10, fresh=True)
    sent.record(ALICE, "PHONE", ROOM, {ALICE: "$me"}, 20, fresh=True)
    assert sent.held(ALICE, "PHONE", ROOM, since=20) == {ALICE: "$me"}


def test_the_oldest_rooms_are_forgotten_past_the_bound() -> None:
    sent = LazyMembersSent(max_rooms=2)
    for index in range(3):
        sent.record(ALICE, "PHONE", f"!r{index}:example.org", {BOB: "$join"}, 5, fresh=True)
    assert sent.held(ALICE, "PHONE", "!r0:example.org", since=5) == {}
    assert sent.held(ALICE, "PHONE", "!r2:example.org", since=5) == {BOB: "$join"}
