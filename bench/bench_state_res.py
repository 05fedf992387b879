"""Benchmark: resolving two forks of a 10,000-member room (state resolution v2 / v2.1).

Builds a realistic room (create, power levels, join rules, N joins each citing its
proper auth events, real reference-hash event IDs), forks it and adds a few hundred
events per side:

- side A (the admin): demotes the moderator, changes the topic, promotes a few users,
  some members leave, new users join;
- side B (the moderator, not yet demoted there): bans and kicks members, changes the
  topic and name, some of the same members leave, new users join.

Then times ``resolve_state`` on the two fork states with a cold AuthChainIndex (built
from scratch inside the timed call) and a warm one (reused across calls), and, unless
``--no-synapse``, runs the same DAG through Synapse's state res v2 in its own venv
(``bench/synapse_state_res.py``) and prints both with the ratio.

    python -m bench.bench_state_res [--members 10000] [--per-side 300] [--room-version 10]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeserver.events.auth import AuthError, auth_types_for_event, check_auth_rules
from homeserver.events.event import Event, StateKey
from homeserver.events.hashing import add_content_hash, compute_event_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.events.state_res import AuthChainIndex, resolve_state

SERVER = "example.org"
ALICE = f"@alice:{SERVER}"  # creator / admin
BOB = f"@bob:{SERVER}"  # moderator (50), demoted on side A
CREATE_KEY: StateKey = ("m.room.create", "")


class RoomDag:
    """Events plus the state after the head of each line of history being built."""

    def __init__(self, room_version: RoomVersion) -> None:
        self.room_version = room_version
        self.events: dict[str, Event] = {}
        self.order: list[str] = []
        self.room_id = f"!bench:{SERVER}"
        self.create_id: str | None = None
        self.ts = 1_700_000_000_000

    def add(
        self,
        state: dict[StateKey, str],
        prev: str | None,
        event_type: str,
        sender: str,
        content: dict[str, Any],
        state_key: str | None,
        *,
        check: bool = True,
    ) -> str:
        """Append an event after ``prev`` whose state before is ``state`` (updated in place)."""
        rv = self.room_version
        keys = auth_types_for_event(rv, event_type, sender, state_key, content)
        self.ts += 1
        pdu: dict[str, Any] = {
            "type": event_type,
            "sender": sender,
            "content": content,
            "prev_events": [prev] if prev else [],
            "auth_events": sorted(state[k] for k in keys if k in state),
            "depth": (self.events[prev].depth + 1) if prev else 1,
            "origin_server_ts": self.ts,
            "origin": SERVER,
            "signatures": {},
            "unsigned": {},
        }
        if not (rv.hydra and event_type == "m.room.create"):
            pdu["room_id"] = self.room_id
        if state_key is not None:
            pdu["state_key"] = state_key
        add_content_hash(pdu)
        event = Event(pdu, rv, compute_event_id(pdu, rv))
        if event_type == "m.room.create":
            self.create_id = event.event_id
            if rv.hydra:
                self.room_id = "!" + event.event_id[1:]
        elif check:
            auth_state = {k: self.events[v] for k, v in state.items() if k in keys}
            if rv.hydra and self.create_id is not None:
                auth_state[CREATE_KEY] = self.events[self.create_id]
            try:
                check_auth_rules(rv, event, auth_state)
            except AuthError as exc:
                raise AssertionError(f"benchmark DAG built a disallowed event: {exc}") from exc
        self.events[event.event_id] = event
        self.order.append(event.event_id)
        if state_key is not None:
            state[(event_type, state_key)] = event.event_id
        return event.event_id


def build_room(
    version: str, members: int, per_side: int, seed: int = 0
) -> tuple[RoomDag, dict[StateKey, str], dict[StateKey, str]]:
    rv = KNOWN_ROOM_VERSIONS[version]
    rnd = random.Random(seed)
    dag = RoomDag(rv)
    state: dict[StateKey, str] = {}
    create_content: dict[str, Any] = {"room_version": version}
    if not rv.implicit_room_creator:
        create_content["creator"] = ALICE
    head = dag.add(state, None, "m.room.create", ALICE, create_content, "")
    head = dag.add(state, head, "m.room.member", ALICE, {"membership": "join"}, ALICE)
    users_levels = {BOB: 50} if rv.hydra else {ALICE: 100, BOB: 50}
    pl_content = {"users": users_levels, "users_default": 0, "state_default": 50, "ban": 50}
    head = dag.add(state, head, "m.room.power_levels", ALICE, pl_content, "")
    head = dag.add(state, head, "m.room.join_rules", ALICE, {"join_rule": "public"}, "")
    head = dag.add(state, head, "m.room.name", ALICE, {"name": "bench"}, "")
    head = dag.add(state, head, "m.room.member", BOB, {"membership": "join"}, BOB)
    users = [f"@user{n}:{SERVER}" for n in range(members)]
    for user in users:
        # The base history is built by construction; checking 10k joins adds nothing.
        head = dag.add(
            state, head, "m.room.member", user, {"membership": "join"}, user, check=False
        )

    def side(
        sender_actions: list[Callable[[dict[StateKey, str], str], str]],
    ) -> dict[StateKey, str]:
        fork_state = dict(state)
        fork_head = head
        for action in sender_actions:
            fork_head = action(fork_state, fork_head)
        return fork_state

    def member(sender: str, membership: str, target: str) -> Callable[..., str]:
        def act(s: dict[StateKey, str], h: str) -> str:
            return dag.add(s, h, "m.room.member", sender, {"membership": membership}, target)

        return act

    def simple(sender: str, event_type: str, content: dict[str, Any]) -> Callable[..., str]:
        def act(s: dict[StateKey, str], h: str) -> str:
            return dag.add(s, h, event_type, sender, content, "")

        return act

    def power(sender: str, levels: dict[str, int]) -> Callable[..., str]:
        def act(s: dict[StateKey, str], h: str) -> str:
            content = dict(pl_content, users=dict(levels))
            return dag.add(s, h, "m.room.power_levels", sender, content, "")

        return act

    shuffled = users[:]
    rnd.shuffle(shuffled)
    quarter = per_side // 4
    both_leave = shuffled[:quarter]  # leave on both sides: conflicting leave events
    a_leave = shuffled[quarter : 2 * quarter]
    b_banned = shuffled[2 * quarter : 3 * quarter]
    b_kicked = shuffled[3 * quarter : 3 * quarter + quarter // 2]
    new_a = [f"@new_a{n}:{SERVER}" for n in range(quarter // 2)]
    new_b = [f"@new_b{n}:{SERVER}" for n in range(quarter // 2)]

    promoted: dict[str, int] = {} if rv.hydra else {ALICE: 100}
    actions_a: list[Callable[..., str]] = [power(ALICE, dict(promoted))]  # Bob demoted
    for n, user in enumerate(both_leave + a_leave):
        actions_a.append(member(user, "leave", user))
        if n % 10 == 0:
            actions_a.append(simple(ALICE, "m.room.topic", {"topic": f"A topic {n}"}))
        if n % 25 == 0:
            promoted[users[n]] = 10
            actions_a.append(power(ALICE, dict(promoted)))
    actions_a += [member(user, "join", user) for user in new_a]

    actions_b: list[Callable[..., str]] = []
    for n, user in enumerate(b_banned):
        actions_b.append(member(BOB, "ban", user))
        actions_b.append(member(both_leave[n], "leave", both_leave[n]))
        if n % 10 == 0:
            actions_b.append(simple(BOB, "m.room.topic", {"topic": f"B topic {n}"}))
    actions_b += [member(BOB, "leave", user) for user in b_kicked]
    actions_b.append(simple(BOB, "m.room.name", {"name": "bob's room now"}))
    actions_b += [member(user, "join", user) for user in new_b]

    state_a = side(actions_a)
    state_b = side(actions_b)
    return dag, state_a, state_b


def timed(func: Callable[[], object], repeat: int) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def dump_dag(
    path: Path, dag: RoomDag, state_sets: list[dict[StateKey, str]], expected: dict[StateKey, str]
) -> None:
    payload = {
        "room_version": dag.room_version.identifier,
        "room_id": dag.room_id,
        "events": [
            {
                "event_id": e,
                "pdu": dag.events[e].pdu,
                "rejected": dag.events[e].internal.rejected_reason,
            }
            for e in dag.order
        ],
        "state_sets": [[[t, k, v] for (t, k), v in s.items()] for s in state_sets],
        "expected": [[t, k, v] for (t, k), v in expected.items()],
    }
    path.write_text(json.dumps(payload))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--per-side", type=int, default=300)
    parser.add_argument("--room-version", default="10")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-synapse", action="store_true")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    dag, state_a, state_b = build_room(args.room_version, args.members, args.per_side)
    build_s = time.perf_counter() - start
    rv = dag.room_version
    sets = [state_a, state_b]
    conflicted = {k for k in state_a.keys() | state_b.keys() if state_a.get(k) != state_b.get(k)}
    print(
        f"room v{rv.identifier}: {len(dag.events)} events, state sizes "
        f"{len(state_a)}/{len(state_b)}, {len(conflicted)} conflicted keys "
        f"(built in {build_s:.1f}s)"
    )

    cold_s, result = timed(
        lambda: resolve_state(rv, sets, dag.events, AuthChainIndex()), args.repeat
    )
    index = AuthChainIndex(dag.events)
    resolve_state(rv, sets, dag.events, index)  # warm it
    warm_s, warm_result = timed(lambda: resolve_state(rv, sets, dag.events, index), args.repeat)
    assert warm_result == result
    assert isinstance(result, dict)
    print(f"ours     cold index: {cold_s * 1000:8.1f} ms   warm index: {warm_s * 1000:8.1f} ms")
    figures: dict[str, float] = {"ours_cold_ms": cold_s * 1000, "ours_warm_ms": warm_s * 1000}

    if not args.no_synapse:
        from bench.common import run_in_synapse

        with tempfile.TemporaryDirectory() as tmp:
            dag_file = Path(tmp) / "dag.json"
            dump_dag(dag_file, dag, sets, result)
            theirs = run_in_synapse(
                Path(__file__).resolve().parent / "synapse_state_res.py",
                str(dag_file),
                str(args.repeat),
            )
        print(
            f"synapse  cold store: {theirs['cold_ms']:8.1f} ms   warm store: "
            f"{theirs['warm_ms']:8.1f} ms   same result: {bool(theirs['same_result'])}"
        )
        print(
            f"ratio (synapse / ours): cold {theirs['cold_ms'] / figures['ours_cold_ms']:.1f}x, "
            f"warm {theirs['warm_ms'] / figures['ours_warm_ms']:.1f}x"
        )
        figures.update({f"synapse_{k}": v for k, v in theirs.items()})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
