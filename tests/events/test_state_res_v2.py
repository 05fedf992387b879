"""State resolution v2 (and v12's v2.1) on small hand-built DAGs with known answers.

spec: rooms/fragments/v2-state-res.md, rooms/v12.md#state-resolution
"""

from __future__ import annotations

import math

import pytest

from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.state_res import AuthChainIndex, MissingEventsError, resolve_state
from homeserver.events.state_res.ordering import (
    is_power_event,
    lexicographic_topological_sort,
    mainline_order,
)
from homeserver.events.state_res.v2 import conflicted_state_subgraph, full_conflicted_set, separate
from tests.events.dag_builder import (
    ALICE,
    BOB,
    CHARLIE,
    DAVE,
    EVE,
    JR_KEY,
    PL_KEY,
    TOPIC_KEY,
    DagBuilder,
    member_key,
    standard_room,
)

# v2 uses the v1 event format; 10 and 11 the modern one; 12 runs v2.1 with hydra.
V2_VERSIONS = ["2", "10", "11", "12"]


def resolve_both_orders(builder: DagBuilder, *heads: str) -> dict[tuple[str, str], str]:
    """Resolve the states after ``heads``; the answer must not depend on their order."""
    sets = [builder.state(h) for h in heads]
    forward = resolve_state(builder.room_version, sets, builder.events)
    backward = resolve_state(builder.room_version, sets[::-1], builder.events)
    assert forward == backward
    # A fresh index and a shared warm index agree too.
    index = AuthChainIndex(builder.events)
    assert resolve_state(builder.room_version, sets, builder.events, index) == forward
    assert resolve_state(builder.room_version, sets, builder.events, index) == forward
    return forward


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_ban_wins_over_racing_join(version: str) -> None:
    b = standard_room(version)
    fork = b.last
    assert fork is not None
    ban = b.member("BAN", ALICE, "ban", EVE, prev=fork, check=True)
    join = b.member("J_EVE", EVE, "join", prev=fork, check=True, ts=1)  # even if "earlier"
    assert not b.events[ban].rejected and not b.events[join].rejected
    resolved = resolve_both_orders(b, ban, join)
    assert resolved[member_key(EVE)] == ban


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_kick_wins_over_racing_topic_change(version: str) -> None:
    b = standard_room(version, levels={BOB: 50})
    fork = b.last
    assert fork is not None
    kick = b.member("KICK", ALICE, "leave", BOB, prev=fork, check=True)
    topic = b.topic("T_BOB", BOB, "bob was here", prev=fork, check=True)
    resolved = resolve_both_orders(b, kick, topic)
    assert resolved[member_key(BOB)] == kick
    # Bob's topic is judged after his kick, so it is not allowed.
    assert TOPIC_KEY not in resolved


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_demoted_moderator_cannot_ban_on_other_branch(version: str) -> None:
    b = standard_room(version, levels={BOB: 50})
    fork = b.last
    assert fork is not None
    # Bob's ban comes first by the clock, but Alice's power sorts her demotion first.
    ban = b.member("BAN_C", BOB, "ban", CHARLIE, prev=fork, check=True, ts=100)
    demote = b.power_levels(
        "PL_DEMOTE", ALICE, b.users_with_levels({ALICE: 100, BOB: 0}), prev=fork, ts=200
    )
    assert not b.events[ban].rejected
    resolved = resolve_both_orders(b, ban, demote)
    assert resolved[PL_KEY] == demote
    assert resolved[member_key(CHARLIE)] == b.id("J_CHARLIE")


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_demoted_moderator_topic_change_is_dropped(version: str) -> None:
    b = standard_room(version, levels={BOB: 50})
    t0 = b.topic("T0", ALICE, "original")
    t_bob = b.topic("T_BOB", BOB, "bob's topic", prev=t0, check=True, ts=500)
    demote = b.power_levels("PL_DEMOTE", ALICE, b.users_with_levels({ALICE: 100}), prev=t0)
    assert not b.events[t_bob].rejected
    resolved = resolve_both_orders(b, t_bob, demote)
    assert resolved[PL_KEY] == demote
    assert resolved[TOPIC_KEY] == t0


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_power_level_fork_demotion_beats_grant(version: str) -> None:
    """Bob (50) promotes Charlie on one branch while Alice demotes Bob on the other."""
    b = standard_room(version, levels={BOB: 50})
    fork = b.last
    assert fork is not None
    grant = b.power_levels(
        "PL_GRANT",
        BOB,
        b.users_with_levels({ALICE: 100, BOB: 50, CHARLIE: 50}),
        prev=fork,
        check=True,
        ts=10,
    )
    demote = b.power_levels(
        "PL_DEMOTE", ALICE, b.users_with_levels({ALICE: 100}), prev=fork, check=True, ts=20
    )
    assert not b.events[grant].rejected and not b.events[demote].rejected
    # Charlie, now a moderator on Bob's branch, kicks Dave there.
    kick = b.member("KICK_D", CHARLIE, "leave", DAVE, prev=grant, check=True)
    resolved = resolve_both_orders(b, kick, demote)
    assert resolved[PL_KEY] == demote
    assert member_key(DAVE) not in resolved or resolved[member_key(DAVE)] != kick


@pytest.mark.parametrize("version", ["2", "10", "11"])
def test_equal_power_admins_tie_break_on_timestamp_then_id(version: str) -> None:
    b = standard_room(version, levels={DAVE: 100}, members=(DAVE,))
    fork = b.last
    assert fork is not None
    users = {ALICE: 100, DAVE: 100}
    pl_dave = b.power_levels("PL_DAVE", DAVE, users, extra={"users_default": 10}, prev=fork, ts=50)
    pl_alice = b.power_levels("PL_ALICE", ALICE, users, extra={"ban": 60}, prev=fork, ts=60)
    # Earlier first, so the later one is applied last and wins.
    assert resolve_both_orders(b, pl_dave, pl_alice)[PL_KEY] == pl_alice

    b2 = standard_room(version, levels={DAVE: 100}, members=(DAVE,))
    fork2 = b2.last
    assert fork2 is not None
    pl_dave2 = b2.power_levels(
        "PL_DAVE", DAVE, users, extra={"users_default": 10}, prev=fork2, ts=70
    )
    pl_alice2 = b2.power_levels("PL_ALICE", ALICE, users, extra={"ban": 60}, prev=fork2, ts=60)
    assert resolve_both_orders(b2, pl_dave2, pl_alice2)[PL_KEY] == pl_dave2

    b3 = standard_room(version, levels={DAVE: 100}, members=(DAVE,))
    fork3 = b3.last
    assert fork3 is not None
    pl_a = b3.power_levels("PL_A", DAVE, users, extra={"users_default": 10}, prev=fork3, ts=70)
    pl_b = b3.power_levels("PL_B", ALICE, users, extra={"ban": 60}, prev=fork3, ts=70)
    # Same power, same timestamp: the smaller event ID goes first, the larger wins.
    assert resolve_both_orders(b3, pl_a, pl_b)[PL_KEY] == pl_b


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_join_rules_change_races_join(version: str) -> None:
    b = standard_room(version)
    fork = b.last
    assert fork is not None
    invite_only = b.join_rules("JR_INVITE", ALICE, "invite", prev=fork, ts=50)
    join = b.member("J_EVE", EVE, "join", prev=fork, check=True, ts=40)
    assert not b.events[join].rejected
    resolved = resolve_both_orders(b, invite_only, join)
    assert resolved[JR_KEY] == invite_only
    assert member_key(EVE) not in resolved


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_topic_conflict_same_mainline_later_timestamp_wins(version: str) -> None:
    b = standard_room(version)
    fork = b.last
    assert fork is not None
    ta = b.topic("TA", ALICE, "a", prev=fork, ts=300)
    tb = b.topic("TB", ALICE, "b", prev=fork, ts=200)
    assert resolve_both_orders(b, ta, tb)[TOPIC_KEY] == ta


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_topic_conflict_mainline_beats_timestamp(version: str) -> None:
    b = standard_room(version)
    fork = b.last
    assert fork is not None
    pl1 = b.power_levels(
        "PL1", ALICE, b.users_with_levels({ALICE: 100}), extra={"events_default": 0}, prev=fork
    )
    ta = b.topic("TA", ALICE, "newer power levels, older clock", prev=pl1, ts=100)
    tb = b.topic("TB", ALICE, "older power levels, newer clock", prev=fork, ts=900)
    resolved = resolve_both_orders(b, ta, tb)
    assert resolved[PL_KEY] == pl1
    # TB hangs off PL0, further down PL1's mainline, so it sorts first and TA wins.
    assert resolved[TOPIC_KEY] == ta


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_offtopic_power_levels(version: str) -> None:
    """A PL change on one branch decides a conflict about an unrelated key on the other."""
    b = standard_room(version, levels={BOB: 50, CHARLIE: 50})
    fork = b.last
    assert fork is not None
    # Branch 1: Alice raises state_default to 60: moderators can no longer set topics.
    pl1 = b.power_levels(
        "PL1",
        ALICE,
        b.users_with_levels({ALICE: 100, BOB: 50, CHARLIE: 50}),
        extra={"state_default": 60},
        prev=fork,
        ts=10,
    )
    # Branch 2: Bob, a moderator, sets the topic (allowed there).
    topic = b.topic("T_BOB", BOB, "offtopic", prev=fork, check=True, ts=20)
    assert not b.events[topic].rejected
    resolved = resolve_both_orders(b, pl1, topic)
    assert resolved[PL_KEY] == pl1
    assert TOPIC_KEY not in resolved


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_unconflicted_state_is_kept(version: str) -> None:
    b = standard_room(version)
    fork = b.last
    assert fork is not None
    a = b.topic("TA", ALICE, "a", prev=fork)
    c = b.topic("TB", ALICE, "b", prev=fork)
    resolved = resolve_both_orders(b, a, c)
    for key, value in b.state(fork).items():
        assert resolved[key] == value


@pytest.mark.parametrize("version", ["10", "12"])
def test_rejected_events_reauthed_but_never_used_as_auth_events(version: str) -> None:
    """spec "Rejected events": a rejected join is re-checked like any event and may enter
    the state; but a rejected event is never an auth event for another."""
    b = standard_room(version, members=(), levels={BOB: 50})
    t0 = b.topic("T0", ALICE, "original")
    join = b.member("J_BOB", BOB, "join", prev=t0)
    topic = b.topic("T_BOB", BOB, "sneaky", prev=join, ts=100)
    b.events[join].internal.rejected_reason = "pretend it failed against its state"
    state_b = b.state(t0)
    state_b[TOPIC_KEY] = topic  # Bob's topic is in this fork's state; his join is not.
    resolved = resolve_state(b.room_version, [b.state(t0), state_b], b.events)
    # The join passes the auth rules during resolution, so it is admitted...
    assert resolved[member_key(BOB)] == join
    # ...but Bob's topic was checked with the rejected join excluded, and failed.
    assert resolved[TOPIC_KEY] == t0


def test_v12_creator_outranks_power_level_100_unlike_v10() -> None:
    """Equal level 100 in v10 ties on the clock; in v12 the creator's power is infinite."""
    results = {}
    for version in ("10", "12"):
        b = standard_room(version, levels={BOB: 100})
        fork = b.last
        assert fork is not None
        # Bob (100) locks the room down first; Alice tries to demote Bob afterwards.
        lock = b.power_levels(
            "PL_BOB",
            BOB,
            b.users_with_levels({ALICE: 100, BOB: 100}),
            extra={"state_default": 100},
            prev=fork,
            ts=10,
        )
        demote = b.power_levels(
            "PL_ALICE", ALICE, b.users_with_levels({ALICE: 100, BOB: 0}), prev=fork, ts=20
        )
        results[version] = (resolve_both_orders(b, lock, demote)[PL_KEY], lock, demote)
    pl, lock, _ = results["10"]
    assert pl == lock  # Alice (100) may not demote Bob (100) once his PL is in place
    pl, _, demote = results["12"]
    assert pl == demote  # the creator goes first; Bob, now 0, may not change PLs


def test_v12_starts_iterative_auth_checks_from_empty_state() -> None:
    """An old topic by a user who has since left (unconflicted) competes with a newer one.

    v2 checks the old topic against the unconflicted state, where its sender has left,
    and drops it.  v2.1 starts from the empty state and uses the topic's own auth
    events, so with a skewed clock on the newer topic the old one is applied last.
    """
    results = {}
    for version in ("10", "12"):
        b = standard_room(version, levels={BOB: 50}, members=(BOB,))
        fork = b.last
        assert fork is not None
        t_bob = b.topic("T_BOB", BOB, "bob's", prev=fork, ts=100)
        leave = b.member("L_BOB", BOB, "leave", prev=t_bob, ts=110)
        t_alice = b.topic("T_ALICE", ALICE, "alice's", prev=fork, ts=50)  # clock skew
        other = b.state(t_alice)
        other[member_key(BOB)] = leave  # both forks have seen Bob leave
        sets = [b.state(leave), other]
        resolved = resolve_state(b.room_version, sets, b.events)
        assert resolved == resolve_state(b.room_version, sets[::-1], b.events)
        assert resolved[member_key(BOB)] == leave
        results[version] = (resolved[TOPIC_KEY], t_bob, t_alice)
    topic, _, t_alice = results["10"]
    assert topic == t_alice
    topic, t_bob, _ = results["12"]
    assert topic == t_bob


def _pl_chain_with_reset(version: str) -> tuple[DagBuilder, list[dict[tuple[str, str], str]]]:
    """PL1 <- PL2 <- PL3 on one fork; the other fork holds PL1 and a topic citing PL2.

    PL2 is in both forks' auth chains (so not in the auth difference) but lies on the
    path PL3 -> PL2 -> PL1 between two conflicted events.
    """
    b = standard_room(version)
    users = b.users_with_levels({ALICE: 100})
    pl1 = b.power_levels("PL1", ALICE, users, extra={"ban": 51})
    pl2 = b.power_levels("PL2", ALICE, users, extra={"ban": 52})
    topic = b.topic("T2", ALICE, "cites PL2")
    pl3 = b.power_levels("PL3", ALICE, users, extra={"ban": 53}, prev=pl2)
    reset = b.state(topic)
    reset[PL_KEY] = pl1
    assert b.events[topic].auth_event_ids.count(pl2) == 1
    assert b.events[pl3].auth_event_ids.count(pl2) == 1
    return b, [b.state(pl3), reset]


def test_v12_full_conflicted_set_includes_conflicted_subgraph() -> None:
    for version, expect_pl2 in (("10", False), ("12", True)):
        b, sets = _pl_chain_with_reset(version)
        index = AuthChainIndex(b.events)
        _, keys = separate(sets)
        conflicted, full = full_conflicted_set(b.room_version, sets, keys, b.events, index)
        assert conflicted == {b.id("PL1"), b.id("PL3"), b.id("T2")}
        assert (b.id("PL2") in full) is expect_pl2
        assert b.id("PL2") not in index.auth_difference(sets)
        subgraph = conflicted_state_subgraph(conflicted, index, b.events)
        assert subgraph == {b.id("PL1"), b.id("PL2"), b.id("PL3"), b.id("T2")}
        resolved = resolve_state(b.room_version, sets, b.events, index)
        assert resolved[PL_KEY] == b.id("PL3")
        assert resolved == resolve_state(b.room_version, sets[::-1], b.events)


def test_missing_events_are_reported() -> None:
    b = standard_room("10")
    fork = b.last
    assert fork is not None
    ta = b.topic("TA", ALICE, "a", prev=fork)
    tb = b.topic("TB", ALICE, "b", prev=fork)
    partial = {k: v for k, v in b.events.items() if v.event_id not in (tb, b.id("PL0"))}
    with pytest.raises(MissingEventsError) as info:
        resolve_state(b.room_version, [b.state(ta), b.state(tb)], partial)
    assert tb in info.value.event_ids
    # Nothing missing, nothing raised.
    resolve_state(b.room_version, [b.state(ta), b.state(tb)], b.events)


def test_trivial_inputs() -> None:
    b = standard_room("10")
    state = b.state(b.last or "")
    rv = KNOWN_ROOM_VERSIONS["10"]
    assert resolve_state(rv, [], b.events) == {}
    assert resolve_state(rv, [state], {}) == state
    assert resolve_state(rv, [state, dict(state)], {}) == state


# --- the orderings in isolation --------------------------------------------------------


def test_is_power_event() -> None:
    b = standard_room("10", members=(BOB,))
    assert is_power_event(b.events[b.id("PL0")])
    assert is_power_event(b.events[b.id("JR0")])
    assert not is_power_event(b.events[b.id("J_BOB")])
    leave = b.member("LEAVE", BOB, "leave")
    kick = b.member("KICK", ALICE, "leave", BOB, prev=b.id("J_BOB"))
    ban = b.member("BAN", ALICE, "ban", BOB, prev=b.id("J_BOB"))
    assert not is_power_event(b.events[leave])
    assert is_power_event(b.events[kick]) and is_power_event(b.events[ban])
    assert not is_power_event(b.events[b.topic("T", ALICE, "x")])


def test_lexicographic_topological_sort_respects_edges_then_key() -> None:
    parents = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}
    keys = {"a": 3, "b": 2, "c": 1, "d": 0, "e": 4}
    order = lexicographic_topological_sort(set(parents), parents.__getitem__, keys.__getitem__)
    assert order == ["a", "c", "b", "d", "e"]


def test_mainline_order_positions() -> None:
    # Mainline P0 <- P1 <- P2; Q hangs off P1; X is off the mainline entirely.
    pl_parent = {"P0": "P1", "P1": "P2", "P2": None, "Q": "P1", "X": None, "R": "Q"}
    events_pl = {"e_p0": "P0", "e_q": "Q", "e_r": "R", "e_none": None, "e_p2": "P2"}
    parent_of = {**pl_parent, **events_pl}
    ts = {"e_p0": 1, "e_q": 1, "e_r": 0, "e_none": 5, "e_p2": 9}
    order = mainline_order(ts, "P0", parent_of.__getitem__, ts.__getitem__)
    # Positions: e_none ∞, e_p2 2, e_q 1 (Q -> P1), e_r 1 (R -> Q -> P1), e_p0 0.
    assert order == ["e_none", "e_p2", "e_r", "e_q", "e_p0"]
    assert mainline_order(["b", "a"], None, lambda e: None, lambda e: 0) == ["a", "b"]
    assert math.inf > 0  # positions off the mainline sort first via -inf


def test_power_order_follows_auth_edges_inside_full_conflicted_set() -> None:
    """JR1's auth ancestry reaches JR0 only through Alice's re-join, which both forks
    share.  v2 (as deployed) orders by the auth edges inside the full conflicted set,
    so the two are unrelated and JR1's skewed clock puts it first: JR0 wins.  In v12
    the re-join is on a path between conflicted events (the conflicted state
    subgraph), so JR0 -> re-join -> JR1 is ordered by ancestry and JR1 wins."""
    winners = {}
    for version in ("10", "12"):
        b = standard_room(version)
        rejoin = b.member("A_REJOIN", ALICE, "join", ts=20)
        jr1 = b.join_rules("JR1", ALICE, "public", ts=1)  # clock skew
        assert b.id("JR0") in b.events[rejoin].auth_event_ids
        assert b.id("JR0") not in b.events[jr1].auth_event_ids
        winners[version] = resolve_both_orders(b, rejoin, jr1)[JR_KEY]
    assert winners == {"10": standard_room("10").id("JR0"), "12": "$JR1"}
