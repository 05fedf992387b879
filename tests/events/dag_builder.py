"""Build small room DAGs by hand for state resolution tests.

Events get readable explicit IDs (``$NAME``, or ``$NAME:test`` for v1/v2 formats),
``prev_events`` default to the previous event added, ``auth_events`` are selected from
the state before the event with the real auth-event selection, and timestamps increase
by one per event unless given.  Nothing is signed or hashed: state resolution does not
look at signatures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from homeserver.events.auth import AuthError, auth_types_for_event, check_auth_rules
from homeserver.events.event import Event, StateKey
from homeserver.events.hashing import add_content_hash, compute_event_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, RoomVersion

ALICE = "@alice:test"
BOB = "@bob:test"
CHARLIE = "@charlie:test"
DAVE = "@dave:test"
EVE = "@eve:test"

PL_KEY: StateKey = ("m.room.power_levels", "")
JR_KEY: StateKey = ("m.room.join_rules", "")
TOPIC_KEY: StateKey = ("m.room.topic", "")
CREATE_KEY: StateKey = ("m.room.create", "")


def room_version_format_is_hashed(room_version: RoomVersion) -> bool:
    return room_version.event_format is not EventFormat.V1


def member_key(user_id: str) -> StateKey:
    return ("m.room.member", user_id)


class DagBuilder:
    """An append-only room DAG with the state after every event."""

    def __init__(self, room_version: str | RoomVersion = "10", *, hashed_ids: bool = False) -> None:
        self.room_version = (
            room_version
            if isinstance(room_version, RoomVersion)
            else KNOWN_ROOM_VERSIONS[room_version]
        )
        self.events: dict[str, Event] = {}
        self.state_after: dict[str, dict[StateKey, str]] = {}
        self.last: str | None = None
        self.room_id = "!room:test"
        self._ts = 0
        # With hashed_ids (v3+), IDs are real reference hashes, so other
        # implementations compute the same ones; names then map to them.
        self.hashed_ids = hashed_ids and room_version_format_is_hashed(self.room_version)
        self._names: dict[str, str] = {}

    # --- IDs ----------------------------------------------------------------------

    def id(self, name: str) -> str:
        """The event ID for a short name (as passed to :meth:`add`)."""
        if name in self._names:
            return self._names[name]
        if self.room_version.event_format is EventFormat.V1:
            return f"${name}:test"
        return f"${name}"

    def _refs(self, event_ids: Iterable[str]) -> list[Any]:
        if self.room_version.event_format is EventFormat.V1:
            return [[e, {"sha256": "x"}] for e in event_ids]
        return list(event_ids)

    # --- building -----------------------------------------------------------------

    def add(
        self,
        name: str,
        event_type: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        *,
        prev: str | list[str] | None = None,
        state: Mapping[StateKey, str] | None = None,
        auth: list[str] | None = None,
        ts: int | None = None,
        check: bool = False,
    ) -> str:
        """Add an event and return its ID.

        ``prev`` defaults to the last event added; with several ``prev`` events the
        state before must be given as ``state``.  ``auth`` overrides the selected auth
        events.  With ``check``, an event failing the auth rules against the state
        before it is marked rejected and leaves the state unchanged.
        """
        assert name not in self._names, f"duplicate event {name}"
        if prev is None:
            prevs = [self.last] if self.last is not None else []
        elif isinstance(prev, str):
            prevs = [prev]
        else:
            prevs = list(prev)
        if state is None:
            assert len(prevs) <= 1, "give the state before a merge explicitly"
            state = self.state_after[prevs[0]] if prevs else {}
        if ts is None:
            self._ts += 1
            ts = self._ts
        else:
            self._ts = max(self._ts, ts)

        if auth is None:
            keys = auth_types_for_event(self.room_version, event_type, sender, state_key, content)
            auth = sorted(state[k] for k in keys if k in state)
        pdu: dict[str, Any] = {
            "type": event_type,
            "sender": sender,
            "content": dict(content),
            "prev_events": self._refs(prevs),
            "auth_events": self._refs(auth),
            "depth": 1 + max((self.events[p].depth for p in prevs), default=0),
            "origin_server_ts": ts,
            "hashes": {"sha256": "x"},
            "origin": "test",
            "signatures": {},
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        if not (self.room_version.hydra and event_type == "m.room.create"):
            pdu["room_id"] = self.room_id
        if self.hashed_ids:
            add_content_hash(pdu)
            event_id = compute_event_id(pdu, self.room_version)
        else:
            event_id = self.id(name)
        self._names[name] = event_id
        if self.room_version.hydra and event_type == "m.room.create":
            self.room_id = "!" + event_id[1:]
        event = Event(pdu, self.room_version, event_id)
        self.events[event_id] = event

        after = dict(state)
        if check and event_type != "m.room.create":
            auth_state = {k: self.events[v] for k, v in state.items()}
            if self.room_version.hydra:
                create_id = "$" + self.room_id[1:]
                auth_state[CREATE_KEY] = self.events[create_id]
            try:
                check_auth_rules(self.room_version, event, auth_state)
            except AuthError as exc:
                event.internal.rejected_reason = exc.reason
        if state_key is not None and not event.rejected:
            after[(event_type, state_key)] = event_id
        self.state_after[event_id] = after
        self.last = event_id
        return event_id

    # --- conveniences ---------------------------------------------------------------

    def state(self, event_id: str) -> dict[StateKey, str]:
        return dict(self.state_after[event_id])

    def member(
        self, name: str, sender: str, membership: str, target: str | None = None, **kw: Any
    ) -> str:
        return self.add(
            name, "m.room.member", sender, {"membership": membership}, target or sender, **kw
        )

    def power_levels(self, name: str, sender: str, users: Mapping[str, int], **kw: Any) -> str:
        content: dict[str, Any] = {"users": dict(users), **kw.pop("extra", {})}
        return self.add(name, "m.room.power_levels", sender, content, "", **kw)

    def topic(self, name: str, sender: str, topic: str, **kw: Any) -> str:
        return self.add(name, "m.room.topic", sender, {"topic": topic}, "", **kw)

    def join_rules(self, name: str, sender: str, rule: str, **kw: Any) -> str:
        return self.add(name, "m.room.join_rules", sender, {"join_rule": rule}, "", **kw)

    def users_with_levels(self, levels: Mapping[str, int]) -> dict[str, int]:
        """``levels`` minus the creator in v12, whose power is implied (and unlistable)."""
        if self.room_version.hydra:
            return {u: lvl for u, lvl in levels.items() if u != ALICE}
        return dict(levels)


def standard_room(
    room_version: str = "10",
    members: Iterable[str] = (BOB, CHARLIE),
    levels: Mapping[str, int] | None = None,
    join_rule: str = "public",
    *,
    hashed_ids: bool = False,
) -> DagBuilder:
    """Alice creates the room; PL (Alice 100 plus ``levels``); join rules; members join.

    Event names: CREATE, IMA (Alice joins), PL0, JR0, then J_<LOCALPART> per member.
    """
    builder = DagBuilder(room_version, hashed_ids=hashed_ids)
    content: dict[str, Any] = {"room_version": builder.room_version.identifier}
    if not builder.room_version.implicit_room_creator:
        content["creator"] = ALICE
    builder.add("CREATE", "m.room.create", ALICE, content, "")
    builder.member("IMA", ALICE, "join")
    builder.power_levels("PL0", ALICE, builder.users_with_levels({ALICE: 100, **(levels or {})}))
    builder.join_rules("JR0", ALICE, join_rule)
    for user in members:
        builder.member(f"J_{user[1:].split(':')[0].upper()}", user, "join")
    return builder
