"""Building rooms and events for the auth rule tests, without I/O or hashing.

Events are made directly as ``Event(pdu, room_version, event_id)``: the auth rules do
not look at hashes or verify signatures, so IDs are just unique strings (with the
sender's domain in v1/v2, where the redaction rule reads it).

A test case is a row: a name, the room versions it applies to, a ``setup`` that adds
state to a standard room, the ``event`` to check, and whether it is allowed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from homeserver.events.auth import AuthError, auth_types_for_event, check_auth_rules
from homeserver.events.event import Event, StateKey
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, RoomVersion

ALICE = "@alice:a.test"  # creates the rooms
BOB = "@bob:b.test"
CAROL = "@carol:c.test"
DAVE = "@dave:d.test"
ERIN = "@erin:a.test"  # on the creator's server

ALL = tuple(KNOWN_ROOM_VERSIONS)


def versions(first: int = 1, last: int = 12) -> tuple[str, ...]:
    """Room versions ``first``..``last`` inclusive, as identifiers."""
    return tuple(str(n) for n in range(first, last + 1))


def domain(identifier: str) -> str:
    return identifier.split(":", 1)[1]


_ids = itertools.count(1)


class Room:
    """A room's state, built event by event (nothing is auth-checked while building)."""

    def __init__(
        self,
        version: str,
        *,
        creator: str = ALICE,
        create_content: dict[str, Any] | None = None,
    ) -> None:
        self.rv: RoomVersion = KNOWN_ROOM_VERSIONS[version]
        self.creator = creator
        self.state: dict[StateKey, Event] = {}
        self.events: dict[str, Event] = {}
        content: dict[str, Any] = {"room_version": version}
        if not self.rv.implicit_room_creator:
            content["creator"] = creator
        content.update(create_content or {})
        pdu: dict[str, Any] = {
            "type": "m.room.create",
            "sender": creator,
            "state_key": "",
            "content": content,
            "prev_events": [],
            "auth_events": [],
            "depth": 1,
            "origin_server_ts": 1,
            "signatures": {domain(creator): {"ed25519:a": "x"}},
        }
        event_id = self._new_id(creator)
        if self.rv.hydra:
            self.room_id = "!" + event_id[1:]
        else:
            self.room_id = f"!room{next(_ids)}:{domain(creator)}"
            pdu["room_id"] = self.room_id
        self.create = Event(pdu, self.rv, event_id)
        self._store(self.create)

    # --- building -------------------------------------------------------------------

    def _new_id(self, sender: str) -> str:
        n = next(_ids)
        if self.rv.event_format is EventFormat.V1:
            return f"${n}:{domain(sender)}"
        return f"$event{n}"

    def _ref(self, event_id: str) -> Any:
        if self.rv.event_format is EventFormat.V1:
            return [event_id, {"sha256": "x"}]
        return event_id

    def build(
        self,
        event_type: str,
        sender: str,
        content: Any,
        state_key: str | None = None,
        *,
        prev: Sequence[str] | None = None,
        signed_by: Iterable[str] | None = None,
        **extra: Any,
    ) -> Event:
        """An event as ``sender`` would create it now, citing the auth events it selects.

        Signed (with dummy signatures) by the sender's server and, for restricted joins,
        the authorising user's server, unless ``signed_by`` names the servers.
        """
        cited = auth_types_for_event(
            self.rv, event_type, sender, state_key, content if isinstance(content, dict) else {}
        )
        auth_ids = [self.state[key].event_id for key in sorted(cited) if key in self.state]
        prev_ids = list(prev) if prev is not None else [self.last_id]
        if signed_by is None:
            signed_by = [domain(sender)]
            authoriser = (
                content.get("join_authorised_via_users_server")
                if isinstance(content, dict)
                else None
            )
            if isinstance(authoriser, str) and ":" in authoriser:
                signed_by.append(domain(authoriser))
        pdu: dict[str, Any] = {
            "type": event_type,
            "room_id": self.room_id,
            "sender": sender,
            "content": content,
            "prev_events": [self._ref(i) for i in prev_ids],
            "auth_events": [self._ref(i) for i in auth_ids],
            "depth": len(self.events) + 1,
            "origin_server_ts": len(self.events) + 1,
            "signatures": {server: {"ed25519:a": "x"} for server in signed_by},
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        pdu.update(extra)
        return Event(pdu, self.rv, self._new_id(sender))

    def _store(self, event: Event) -> Event:
        self.events[event.event_id] = event
        self.last_id = event.event_id
        if event.is_state():
            self.state[event.state_key_tuple] = event
        return event

    def add(
        self, event_type: str, sender: str, content: Any, state_key: str | None = None, **kw: Any
    ) -> Event:
        """Build an event and make it part of the room (and its state)."""
        return self._store(self.build(event_type, sender, content, state_key, **kw))

    # --- shorthands for state ------------------------------------------------------

    def member_event(
        self,
        target: str,
        membership: str,
        sender: str | None = None,
        *,
        signed_by: Iterable[str] | None = None,
        prev: Sequence[str] | None = None,
        **content: Any,
    ) -> Event:
        return self.build(
            "m.room.member",
            sender or target,
            {"membership": membership, **content},
            target,
            signed_by=signed_by,
            prev=prev,
        )

    def set_member(
        self, target: str, membership: str, sender: str | None = None, **content: Any
    ) -> Event:
        return self._store(self.member_event(target, membership, sender, **content))

    def pl_users(self, **levels: int) -> dict[str, int]:
        """``users`` for power levels: the creator at 100 before v12 (v12 may not list it)."""
        users = {} if self.rv.hydra else {self.creator: 100}
        users.update({_USERS[name]: level for name, level in levels.items()})
        return users

    def set_power_levels(self, users: dict[str, Any] | None = None, **levels: Any) -> Event:
        content = {"users": self.pl_users() if users is None else users, **levels}
        return self.add("m.room.power_levels", self.creator, content, "")

    def set_join_rule(self, rule: str, **extra: Any) -> Event:
        return self.add("m.room.join_rules", self.creator, {"join_rule": rule, **extra}, "")

    def check(self, event: Event) -> None:
        check_auth_rules(self.rv, event, self.state)

    def allowed(self, event: Event) -> bool:
        try:
            self.check(event)
        except AuthError:
            return False
        return True


_USERS = {"alice": ALICE, "bob": BOB, "carol": CAROL, "dave": DAVE, "erin": ERIN}


def standard_room(
    version: str,
    *,
    join_rule: str = "public",
    members: Iterable[str] = (BOB,),
    create_content: dict[str, Any] | None = None,
    power_levels: bool = True,
) -> Room:
    """create; creator joins; power levels (creator 100, spec defaults); join rule; members."""
    room = Room(version, create_content=create_content)
    room.add("m.room.member", ALICE, {"membership": "join"}, ALICE)
    if power_levels:
        room.set_power_levels()
    room.set_join_rule(join_rule)
    for user in members:
        room.set_member(user, "join")
    return room


@dataclass(frozen=True)
class Case:
    """One row: in these versions, after ``setup``, is ``event`` allowed?"""

    name: str
    versions: Sequence[str]
    event: Callable[[Room], Event]
    allowed: bool
    setup: Callable[[Room], object] = lambda room: None
    #: Substring the AuthError reason must contain, for denials.
    reason: str = ""
    room: Callable[[str], Room] = field(default=standard_room)


def params(cases: Iterable[Case]) -> list[Any]:
    """One pytest param per (case, version), named ``case-vN``."""
    return [
        pytest.param(case, version, id=f"{case.name}-v{version}")
        for case in cases
        for version in case.versions
    ]


def run_case(case: Case, version: str) -> None:
    room = case.room(version)
    case.setup(room)
    event = case.event(room)
    if case.allowed:
        room.check(event)
        return
    with pytest.raises(AuthError) as info:
        room.check(event)
    assert case.reason in info.value.reason


def steps(*actions: Callable[[Room], object]) -> Callable[[Room], None]:
    """Several setup actions in order."""

    def run(room: Room) -> None:
        for action in actions:
            action(room)

    return run
