"""Properties of state resolution over generated forked rooms (hypothesis).

For every algorithm (v1, v2, v2.1): the result does not depend on the order of the
state sets or on duplicates among them, a single state set resolves to itself, the
result is idempotent, unconflicted state is always kept, and every entry is an event
with that very (type, state_key).  The auth chain index is checked against a naive
walk.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeserver.events.event import Event, StateKey
from homeserver.events.state_res import AuthChainIndex, MissingEventsError, resolve_state
from tests.events.dag_builder import ALICE, BOB, CHARLIE, DAVE, DagBuilder, standard_room

USERS = [ALICE, BOB, CHARLIE, DAVE]
LEVELS = [0, 50, 100]

_action = st.one_of(
    st.tuples(st.just("topic"), st.sampled_from(USERS), st.integers(0, 3)),
    st.tuples(st.just("join"), st.sampled_from(USERS), st.none()),
    st.tuples(st.just("leave"), st.sampled_from(USERS), st.none()),
    st.tuples(st.just("ban"), st.sampled_from(USERS), st.sampled_from(USERS)),
    st.tuples(st.just("kick"), st.sampled_from(USERS), st.sampled_from(USERS)),
    st.tuples(
        st.just("power"),
        st.sampled_from(USERS),
        st.dictionaries(st.sampled_from(USERS), st.sampled_from(LEVELS), max_size=4),
    ),
    st.tuples(
        st.just("join_rule"), st.sampled_from([ALICE, BOB]), st.sampled_from(["public", "invite"])
    ),
    st.tuples(st.just("fork"), st.none(), st.none()),
    st.tuples(st.just("merge"), st.sampled_from(USERS), st.none()),
)


@st.composite
def forked_rooms(
    draw: st.DrawFn, *, hashed_ids: bool = False
) -> tuple[DagBuilder, list[dict[StateKey, str]]]:
    version = draw(st.sampled_from(["1", "2", "10", "12"]))
    b = standard_room(version, members=(BOB, CHARLIE), levels={BOB: 50}, hashed_ids=hashed_ids)
    heads = [b.last or ""] * draw(st.integers(2, 3))
    steps = draw(st.lists(st.tuples(st.integers(0, len(heads) - 1), _action), max_size=20))
    for n, (branch, (kind, who, arg)) in enumerate(steps):
        head = heads[branch]
        name = f"E{n}"
        kw: dict[str, Any] = {"prev": head, "check": True, "ts": draw(st.integers(1, 40))}
        if kind == "fork":
            # Continue this branch from another branch's head (nested forks).
            heads[branch] = heads[(branch + 1) % len(heads)]
            continue
        assert who is not None
        if kind == "merge":
            # Merge another branch in: the state before is the resolution of both heads.
            other = heads[(branch + 1) % len(heads)]
            if other == head:
                continue
            before = resolve_state(b.room_version, [b.state(head), b.state(other)], b.events)
            kw.update(prev=[head, other], state=before)
            heads[branch] = b.topic(name, who, "merged", **kw)
        elif kind == "topic":
            heads[branch] = b.topic(name, who, f"topic {arg}", **kw)
        elif kind in ("join", "leave"):
            heads[branch] = b.member(name, who, kind, **kw)
        elif kind in ("ban", "kick"):
            membership = "ban" if kind == "ban" else "leave"
            heads[branch] = b.member(name, who, membership, arg, **kw)
        elif kind == "power":
            users = b.users_with_levels({ALICE: 100, **arg})
            heads[branch] = b.power_levels(name, who, users, **kw)
        else:
            heads[branch] = b.join_rules(name, who, arg, **kw)
    return b, [b.state(h) for h in heads]


PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(forked_rooms(), st.randoms(use_true_random=False))
def test_resolution_properties(
    room: tuple[DagBuilder, list[dict[StateKey, str]]], rnd: random.Random
) -> None:
    b, sets = room
    rv = b.room_version
    result = resolve_state(rv, sets, b.events)

    # Independent of the order of the state sets, and of duplicates among them.
    shuffled = list(sets)
    rnd.shuffle(shuffled)
    assert resolve_state(rv, shuffled, b.events) == result
    assert resolve_state(rv, [*sets, sets[0]], b.events) == result

    # Idempotent; a single state set is its own resolution.
    assert resolve_state(rv, [result, result], b.events) == result
    assert resolve_state(rv, [result], b.events) == result
    for state in sets:
        assert resolve_state(rv, [state], b.events) == state
        assert resolve_state(rv, [state, dict(state)], b.events) == state

    # Unconflicted state is always kept.
    for key, value in sets[0].items():
        if all(s.get(key) == value for s in sets[1:]):
            assert result[key] == value

    # Every entry is an event with exactly that key.
    for key, event_id in result.items():
        assert b.events[event_id].state_key_tuple == key

    # A warm index shared across calls gives the same answer as a cold one.
    index = AuthChainIndex(b.events)
    assert resolve_state(rv, sets, b.events, index) == result
    assert resolve_state(rv, shuffled, b.events, index) == result


def _naive_chain(event_id: str, events: Mapping[str, Event]) -> set[str]:
    seen: set[str] = set()
    todo = list(events[event_id].auth_event_ids)
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(events[current].auth_event_ids)
    return seen


@PROPERTY_SETTINGS
@given(forked_rooms())
def test_auth_chain_index_matches_naive_walk(
    room: tuple[DagBuilder, list[dict[StateKey, str]]],
) -> None:
    b, sets = room
    index = AuthChainIndex(b.events)
    for event_id in b.events:
        assert index.auth_chain(event_id) == _naive_chain(event_id, b.events)
    full_chains = [
        set(s.values()).union(*(_naive_chain(e, b.events) for e in s.values())) for s in sets
    ]
    naive = full_chains[0].union(*full_chains[1:]) - full_chains[0].intersection(*full_chains[1:])
    assert index.auth_difference(sets) == naive
    assert AuthChainIndex().auth_difference(sets, b.events) == naive


def test_auth_chain_deeper_than_the_recursion_limit() -> None:
    depth = sys.getrecursionlimit() + 500
    b = DagBuilder("10")
    b.add("CREATE", "m.room.create", ALICE, {}, "")
    b.member("IMA", ALICE, "join")
    previous = b.power_levels("PL0", ALICE, {ALICE: 100})
    for n in range(depth):
        previous = b.power_levels(f"PL{n + 1}", ALICE, {ALICE: 100, BOB: n % 100})
    index = AuthChainIndex(b.events)
    assert len(index.auth_chain(previous)) == depth + 2  # earlier PLs, the join, the create
    assert index.auth_difference([b.state(previous), b.state(b.id("PL1"))]) == {
        b.id(f"PL{n}") for n in range(2, depth + 1)
    } | {previous}


def test_auth_chain_index_reports_every_missing_event_and_reuses_its_memo() -> None:
    b = standard_room("10", members=(BOB, CHARLIE))
    events = dict(b.events)
    del events[b.id("PL0")], events[b.id("IMA")]
    index = AuthChainIndex()
    try:
        index.ensure([b.id("J_BOB"), b.id("J_CHARLIE")], events)
    except MissingEventsError as exc:
        assert exc.event_ids == {b.id("PL0"), b.id("IMA")}
    else:
        raise AssertionError("expected MissingEventsError")
    # Once indexed, chains need no events at all.
    warm = AuthChainIndex(b.events)
    chain = warm.auth_chain(b.id("J_BOB"))
    assert warm.auth_chain(b.id("J_BOB"), {}) == chain
    assert b.id("J_BOB") in warm and len(warm) >= len(chain)
