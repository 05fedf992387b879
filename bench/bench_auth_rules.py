"""Benchmark: authorization rule checks per second, ours vs Synapse.

Builds a realistic room (create, power levels listing 50 users, public join rules,
name/topic/history visibility/encryption, N members on 25 servers; real reference-hash
event IDs) and times one auth check of:

- ``message``: an ``m.room.message`` from a member;
- ``join``: a new user joining the (public) room;
- ``power_levels``: the admin changing the power levels (the change rules walk every
  level and user, so this is the heaviest common check);

each against the event's selected auth events (what receipt step 4 and state
resolution pass).  ``message (full state)`` gives ours the whole room state instead, to
show the cost does not grow with the state.  Synapse's side runs
``synapse.event_auth.check_state_dependent_auth_rules`` on the same events under its
own venv (``bench/synapse_auth_rules.py``); rounds alternate and the best of each is
reported.

    python -m bench.bench_auth_rules [--members 500] [--room-version 12] [--seconds 1]
                                     [--rounds 3] [--no-synapse]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import ops_per_second, run_in_synapse
from homeserver.events.auth import auth_types_for_event, check_auth_rules
from homeserver.events.event import Event, StateKey
from homeserver.events.hashing import add_content_hash, compute_event_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

SERVER = "example.org"
ADMIN = f"@admin:{SERVER}"
CREATE_KEY: StateKey = ("m.room.create", "")


class RoomBuilder:
    """A linear room history with correct auth events and event IDs."""

    def __init__(self, room_version: RoomVersion) -> None:
        self.room_version = room_version
        self.state: dict[StateKey, Event] = {}
        self.pdus: list[dict[str, Any]] = []
        self.last: str | None = None
        self.ts = 1_700_000_000_000
        self.room_id = f"!bench:{SERVER}"

    def build(
        self, event_type: str, sender: str, content: dict[str, Any], state_key: str | None = None
    ) -> Event:
        rv = self.room_version
        selected = auth_types_for_event(rv, event_type, sender, state_key, content)
        pdu: dict[str, Any] = {
            "type": event_type,
            "sender": sender,
            "content": content,
            "prev_events": [self.last] if self.last else [],
            "auth_events": sorted(self.state[k].event_id for k in selected if k in self.state),
            "depth": len(self.pdus) + 1,
            "origin_server_ts": self.ts + len(self.pdus),
            "signatures": {},
        }
        if not (rv.hydra and event_type == "m.room.create"):
            pdu["room_id"] = self.room_id
        if state_key is not None:
            pdu["state_key"] = state_key
        add_content_hash(pdu)
        event = Event(pdu, rv, compute_event_id(pdu, rv))
        if event_type == "m.room.create" and rv.hydra:
            self.room_id = "!" + event.event_id[1:]
        return event

    def add(
        self, event_type: str, sender: str, content: dict[str, Any], state_key: str | None = None
    ) -> Event:
        event = self.build(event_type, sender, content, state_key)
        self.pdus.append(event.pdu)
        self.last = event.event_id
        if event.is_state():
            self.state[event.state_key_tuple] = event
        return event


def member_id(n: int) -> str:
    return f"@user{n}:server{n % 25}.example"


def build_room(room_version: RoomVersion, members: int) -> tuple[RoomBuilder, dict[str, Event]]:
    room = RoomBuilder(room_version)
    create: dict[str, Any] = {"room_version": room_version.identifier}
    if not room_version.implicit_room_creator:
        create["creator"] = ADMIN
    room.add("m.room.create", ADMIN, create, "")
    room.add("m.room.member", ADMIN, {"membership": "join", "displayname": "Admin"}, ADMIN)
    users = {member_id(n): 50 if n % 5 == 0 else 10 for n in range(50)}
    if not room_version.hydra:
        users[ADMIN] = 100  # v12 creators may not be listed
    power_levels = {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 150 if room_version.hydra else 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "notifications": {"room": 50},
    }
    room.add("m.room.power_levels", ADMIN, power_levels, "")
    room.add("m.room.join_rules", ADMIN, {"join_rule": "public"}, "")
    room.add("m.room.history_visibility", ADMIN, {"history_visibility": "shared"}, "")
    room.add("m.room.name", ADMIN, {"name": "Benchmark room"}, "")
    room.add("m.room.topic", ADMIN, {"topic": "Where auth rules are timed"}, "")
    room.add("m.room.encryption", ADMIN, {"algorithm": "m.megolm.v1.aes-sha2"}, "")
    for n in range(members):
        user = member_id(n)
        room.add("m.room.member", user, {"membership": "join", "displayname": f"User {n}"}, user)

    sender = member_id(members // 2)
    message = room.build(
        "m.room.message", sender, {"msgtype": "m.text", "body": "Hello everyone, how is it going?"}
    )
    newcomer = "@newcomer:elsewhere.example"
    join = room.build("m.room.member", newcomer, {"membership": "join"}, newcomer)
    new_levels = json.loads(json.dumps(power_levels))
    new_levels["users"][member_id(7)] = 50
    new_levels["events"]["m.room.topic"] = 10
    change = room.build("m.room.power_levels", ADMIN, new_levels, "")
    return room, {"message": message, "join": join, "power_levels": change}


def auth_state(room: RoomBuilder, event: Event) -> dict[StateKey, Event]:
    """The event's auth events as a state map (plus the implied create event in v12)."""
    by_id = {e.event_id: e for e in room.state.values()}
    state = {by_id[i].state_key_tuple: by_id[i] for i in event.auth_event_ids}
    state[CREATE_KEY] = room.state[CREATE_KEY]
    return state


def run_ours(room: RoomBuilder, workloads: dict[str, Event], seconds: float) -> dict[str, float]:
    rv = room.room_version
    figures: dict[str, float] = {}
    cases = [(name, event, auth_state(room, event)) for name, event in workloads.items()]
    cases.append(("message (full state)", workloads["message"], dict(room.state)))
    for name, event, state in cases:
        check_auth_rules(rv, event, state)  # must be allowed, or the figure means nothing
        figures[name] = ops_per_second(
            partial(check_auth_rules, rv, event, state), min_seconds=seconds
        )
    return figures


def run_synapse(
    room: RoomBuilder, workloads: dict[str, Event], seconds: float, data_file: Path
) -> dict[str, float]:
    data = {
        "room_version": room.room_version.identifier,
        "state": room.pdus,
        "workloads": {
            name: {
                "pdu": event.pdu,
                "event_id": event.event_id,
                "auth_ids": [e.event_id for e in auth_state(room, event).values()],
            }
            for name, event in workloads.items()
        },
    }
    data_file.write_text(json.dumps(data))
    script = Path(__file__).resolve().parent / "synapse_auth_rules.py"
    return run_in_synapse(script, str(data_file), str(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--room-version", default="12")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-synapse", action="store_true")
    args = parser.parse_args()

    room_version = KNOWN_ROOM_VERSIONS[args.room_version]
    room, workloads = build_room(room_version, args.members)
    ours: dict[str, float] = {}
    theirs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "auth_bench.json"
        for _ in range(args.rounds):
            rounds = [(ours, run_ours(room, workloads, args.seconds))]
            if not args.no_synapse:
                rounds.append((theirs, run_synapse(room, workloads, args.seconds, data_file)))
            for best, figures in rounds:
                for key, value in figures.items():
                    best[key] = max(best.get(key, 0.0), value)

    print(
        f"room version {room_version.identifier}, {args.members} members, "
        f"{len(room.state)} state events, best of {args.rounds} rounds"
    )
    print(
        f"{'check_auth_rules workload':<28} {'ours ops/s':>12} {'Synapse ops/s':>14} {'ratio':>7}"
    )
    for name, rate in ours.items():
        their = theirs.get(name)
        if their:
            print(f"{name:<28} {rate:>12,.0f} {their:>14,.0f} {rate / their:>6.2f}x")
        else:
            print(f"{name:<28} {rate:>12,.0f} {'-':>14} {'-':>7}")


if __name__ == "__main__":
    main()
