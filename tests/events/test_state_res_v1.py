"""The room version 1 state resolution algorithm on hand-built DAGs.

spec: rooms/v1.md#state-resolution
"""

from __future__ import annotations

import hashlib

import pytest

from homeserver.events.state_res import MissingEventsError, resolve_state
from homeserver.events.state_res.v1 import separate_v1
from tests.events.dag_builder import (
    ALICE,
    BOB,
    CHARLIE,
    EVE,
    JR_KEY,
    PL_KEY,
    TOPIC_KEY,
    DagBuilder,
    member_key,
    standard_room,
)


def resolve(builder: DagBuilder, *heads: str) -> dict[tuple[str, str], str]:
    sets = [builder.state(h) for h in heads]
    result = resolve_state(builder.room_version, sets, builder.events)
    assert resolve_state(builder.room_version, sets[::-1], builder.events) == result
    return result


def sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode()).hexdigest()


def test_separate_v1_missing_key_is_not_a_conflict() -> None:
    merged, conflicts = separate_v1([{("a", ""): "$1", ("b", ""): "$2"}, {("a", ""): "$3"}])
    assert merged == {("b", ""): "$2"}
    assert conflicts == {("a", ""): {"$1", "$3"}}


def test_power_levels_deeper_event_applied_when_allowed() -> None:
    b = standard_room("1", levels={BOB: 50})
    fork = b.last
    assert fork is not None
    pl_a = b.power_levels("PL_A", ALICE, {ALICE: 100, BOB: 50, CHARLIE: 10}, prev=fork)
    topic = b.topic("T", ALICE, "x", prev=fork)
    pl_b = b.power_levels("PL_B", ALICE, {ALICE: 100, BOB: 50, CHARLIE: 20}, prev=topic)
    assert b.events[pl_b].depth > b.events[pl_a].depth
    resolved = resolve(b, pl_a, pl_b)
    assert resolved[PL_KEY] == pl_b
    assert resolved[TOPIC_KEY] == topic  # only one fork has a topic: not a conflict


def test_power_levels_stop_at_first_disallowed() -> None:
    b = standard_room("1", levels={BOB: 50})
    fork = b.last
    assert fork is not None
    demote = b.power_levels("PL_DEMOTE", ALICE, {ALICE: 100}, prev=fork)
    topic = b.topic("T", BOB, "x", prev=fork, check=True)
    # Bob (50) gives Charlie 50 on his fork, one event deeper than Alice's demotion.
    grant = b.power_levels(
        "PL_GRANT", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50}, prev=topic, check=True
    )
    assert not b.events[grant].rejected
    resolved = resolve(b, demote, grant)
    # The demotion (shallower) goes in first; Bob's grant is then not allowed.
    assert resolved[PL_KEY] == demote
    # Bob's topic is an "other" conflict checked against R with Bob demoted; it is the
    # only candidate, and the spec leaves that case open: we keep it rather than drop it.
    assert resolved[TOPIC_KEY] == topic


def test_ban_vs_join() -> None:
    b = standard_room("1")
    fork = b.last
    assert fork is not None
    ban = b.member("BAN", ALICE, "ban", EVE, prev=fork)
    join = b.member("J_EVE", EVE, "join", prev=fork)
    assert resolve(b, ban, join)[member_key(EVE)] == ban


def test_join_rules_resolved_before_memberships() -> None:
    b = standard_room("1")
    fork = b.last
    assert fork is not None
    jr = b.join_rules("JR_INVITE", ALICE, "invite", prev=fork)
    t = b.topic("T", ALICE, "pad", prev=jr)
    jr2 = b.join_rules("JR_PUBLIC_AGAIN", ALICE, "public", prev=t)
    join = b.member("J_EVE", EVE, "join", prev=fork)
    resolved = resolve(b, jr2, join)
    assert resolved[JR_KEY] == jr2
    assert resolved[member_key(EVE)] == join


def test_other_conflicts_highest_depth_that_passes_auth() -> None:
    b = standard_room("1", levels={BOB: 50})
    fork = b.last
    assert fork is not None
    t_alice = b.topic("T_ALICE", ALICE, "a", prev=fork)
    demote = b.power_levels("PL_DEMOTE", ALICE, {ALICE: 100}, prev=t_alice)
    pad = b.topic("T_PAD", BOB, "pad", prev=fork)
    t_bob = b.topic("T_BOB", BOB, "b", prev=pad)
    assert b.events[t_bob].depth > b.events[t_alice].depth
    # The forks differ on PL (PL0 vs the demotion), which resolves to the demotion;
    # Bob's deeper topic then fails auth in R, so Alice's shallower one is picked.
    resolved = resolve(b, demote, t_bob)
    assert resolved[PL_KEY] == demote
    assert resolved[TOPIC_KEY] == t_alice


def test_other_conflicts_same_depth_lowest_sha1() -> None:
    b = standard_room("1")
    fork = b.last
    assert fork is not None
    ta = b.topic("TA", ALICE, "a", prev=fork)
    tb = b.topic("TB", ALICE, "b", prev=fork)
    expected = min((ta, tb), key=sha1)
    assert resolve(b, ta, tb)[TOPIC_KEY] == expected


def test_missing_conflicted_event() -> None:
    b = standard_room("1")
    fork = b.last
    assert fork is not None
    ta = b.topic("TA", ALICE, "a", prev=fork)
    tb = b.topic("TB", ALICE, "b", prev=fork)
    events = dict(b.events)
    del events[tb]
    with pytest.raises(MissingEventsError) as info:
        resolve_state(b.room_version, [b.state(ta), b.state(tb)], events)
    assert info.value.event_ids == {tb}


def test_other_conflicts_deeper_event_wins_when_both_allowed() -> None:
    b = standard_room("1")
    fork = b.last
    assert fork is not None
    shallow = b.topic("T_SHALLOW", ALICE, "a", prev=fork, ts=900)
    pad = b.topic("T_PAD", ALICE, "pad", prev=fork)
    deep = b.topic("T_DEEP", ALICE, "b", prev=pad, ts=1)
    assert resolve(b, shallow, deep)[TOPIC_KEY] == deep


def test_power_levels_same_depth_descending_sha1() -> None:
    """Same depth: the larger sha1 goes in first, then the smaller one if allowed."""
    b = standard_room("1")
    fork = b.last
    assert fork is not None
    pls = [b.power_levels(f"PL_{n}", ALICE, {ALICE: 100, BOB: n}, prev=fork) for n in range(1, 5)]
    sets = [b.state(p) for p in pls]
    resolved = resolve_state(b.room_version, sets, b.events)
    # Each is allowed after the others, so the last applied (smallest sha1) wins.
    assert resolved[PL_KEY] == min(pls, key=sha1)
    assert resolve_state(b.room_version, sets[::-1], b.events) == resolved


def test_power_levels_pass_stops_entirely_at_first_disallowed() -> None:
    b = standard_room("1", levels={BOB: 50})
    fork = b.last
    assert fork is not None
    demote = b.power_levels("PL_DEMOTE", ALICE, {ALICE: 100}, prev=fork)  # depth d+1
    pad = b.topic("T_PAD", BOB, "pad", prev=fork)
    grant = b.power_levels("PL_GRANT", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50}, prev=pad)
    pad2 = b.topic("T_PAD2", ALICE, "pad", prev=fork)
    pad3 = b.topic("T_PAD3", ALICE, "pad", prev=pad2)
    later = b.power_levels("PL_LATER", ALICE, {ALICE: 100, CHARLIE: 10}, prev=pad3)  # d+3
    sets = [b.state(demote), b.state(grant), b.state(later)]
    resolved = resolve_state(b.room_version, sets, b.events)
    # Bob's grant (depth d+2) is not allowed after the demotion, so the pass stops and
    # Alice's deeper change is never considered.
    assert resolved[PL_KEY] == demote
