"""Synapse's side of bench_auth_rules: run under Synapse's venv (bench.common.run_in_synapse).

Usage: python synapse_auth_rules.py DATA.json MIN_SECONDS

Loads the room and workloads written by bench_auth_rules.py, checks Synapse computes
the same event IDs and allows every workload, then times
``synapse.event_auth.check_state_dependent_auth_rules`` on each, given the same auth
events ours gets.  Prints one JSON object of ops/s on the last line.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import synapse.event_auth  # noqa: F401  (import first: breaks synapse.state's import cycle)
from common import ops_per_second
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
from synapse.event_auth import check_state_dependent_auth_rules
from synapse.events import make_event_from_dict


def main() -> None:
    data_file, min_seconds_arg = sys.argv[1:3]
    min_seconds = float(min_seconds_arg)
    data = json.loads(open(data_file).read())
    room_version = KNOWN_ROOM_VERSIONS[data["room_version"]]
    events = {}
    for pdu in data["state"]:
        event = make_event_from_dict(pdu, room_version)
        events[event.event_id] = event

    figures = {}
    for name, workload in data["workloads"].items():
        event = make_event_from_dict(workload["pdu"], room_version)
        if event.event_id != workload["event_id"]:
            raise SystemExit(f"{name}: Synapse computes event ID {event.event_id}")
        auth_events = [events[i] for i in workload["auth_ids"]]
        check_state_dependent_auth_rules(event, auth_events)  # raises if not allowed

        def check(event: Any = event, auth_events: list[Any] = auth_events) -> None:
            check_state_dependent_auth_rules(event, auth_events)

        figures[name] = ops_per_second(check, min_seconds=min_seconds)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
