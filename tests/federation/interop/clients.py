"""What the federation scenarios do as clients: users, rooms, and waiting for what
the other server's users see.

Everything goes through the client API of the two servers (ours and Synapse speak
the same one), so a scenario asserts on what a user of the other server sees.
Waiting is long-polling ``/sync`` until a condition holds or a deadline passes —
never a fixed sleep.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import attrs

from tests.support.federation import FederatedServer, TestCA
from tests.support.matrix import CLIENT, auth, call

T = TypeVar("T")

#: The client API's v1 endpoints (relations, for one).
CLIENT_V1 = "/_matrix/client/v1"
#: How long a scenario waits for something to cross from one server to the other.
#: Generous: a loaded 2-core CI machine, and the first contact fetches keys.
#: ``FEDERATION_WAIT_SECONDS`` shortens it for a quick look at what fails.
FEDERATION_WITHIN = float(os.environ.get("FEDERATION_WAIT_SECONDS", "60"))

_names = itertools.count()


@attrs.frozen
class ServerPair:
    pairing: str
    engine: str
    ca: TestCA
    #: Always our server.
    ours: FederatedServer
    #: Our second server, or Synapse.
    other: FederatedServer

    def both_ways(self) -> list[tuple[FederatedServer, FederatedServer]]:
        """(from, to) in each direction."""
        return [(self.ours, self.other), (self.other, self.ours)]


@attrs.frozen
class User:
    server: FederatedServer
    user_id: str
    access_token: str
    device_id: str

    def call(self, method: str, path: str, body: Any = None, *, api: str = CLIENT) -> Any:
        """A client-API call (``api`` + ``path``) that must succeed; its JSON body."""
        response = self.server.process.request(
            method, api + path, json_body=body, headers=auth(self.access_token)
        )
        assert response.status == 200, (
            f"{method} {path} as {self.user_id}: {response.status} {response.body!r}"
        )
        return response.json()


def new_user(server: FederatedServer, prefix: str = "user") -> User:
    """A freshly registered user (a unique localpart) on ``server``."""
    localpart = f"{prefix}{next(_names)}x{time.monotonic_ns() % 1_000_000}"
    body = {"username": localpart, "password": "correct horse", "auth": {"type": "m.login.dummy"}}
    response = call(server.process, "POST", "/register", body=body)
    assert response.status == 200, (response.status, response.body)
    result = response.json()
    return User(server, result["user_id"], result["access_token"], result["device_id"])


def room_path(room_id: str, *rest: str) -> str:
    return "/rooms/" + "/".join(quote(part, safe="") for part in (room_id, *rest))


def create_room(user: User, **body: Any) -> str:
    room_id: str = user.call("POST", "/createRoom", {"preset": "private_chat", **body})["room_id"]
    return room_id


def invite(user: User, room_id: str, invitee: User) -> None:
    user.call("POST", room_path(room_id, "invite"), {"user_id": invitee.user_id})


def join(user: User, room_id: str, via: Sequence[str]) -> None:
    query = urlencode([("server_name", server) for server in via])
    user.call("POST", f"/join/{quote(room_id, safe='')}?{query}", {})


def send_event(user: User, room_id: str, event_type: str, content: dict[str, Any]) -> str:
    txn = f"t{next(_names)}x{time.monotonic_ns()}"
    event_id: str = user.call("PUT", room_path(room_id, "send", event_type, txn), content)[
        "event_id"
    ]
    return event_id


def send_text(user: User, room_id: str, body: str) -> str:
    return send_event(user, room_id, "m.room.message", {"msgtype": "m.text", "body": body})


class SyncWatcher:
    """A user's ``/sync`` stream, read from the start: every response is shown to a
    check until it returns something, so nothing seen before a wait is missed."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.since: str | None = None

    def responses(self, within: float) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + within
        while True:
            timeout_ms = max(0, min(2_000, int((deadline - time.monotonic()) * 1000)))
            query = {"timeout": str(timeout_ms)}
            if self.since is not None:
                query["since"] = self.since
            # The long poll may run to timeout_ms; allow the HTTP call that plus slack.
            response = self.user.server.process.request(
                "GET",
                f"/_matrix/client/v3/sync?{urlencode(query)}",
                headers={"Authorization": f"Bearer {self.user.access_token}"},
                timeout=timeout_ms / 1000 + 30,
            )
            assert response.status == 200, (response.status, response.body)
            body: dict[str, Any] = response.json()
            self.since = body["next_batch"]
            yield body
            if time.monotonic() >= deadline:
                return

    def wait_for(
        self,
        check: Callable[[dict[str, Any]], T | None],
        *,
        within: float = FEDERATION_WITHIN,
        what: str = "the expected sync data",
    ) -> T:
        """The first truthy ``check(response)``; ``AssertionError`` after ``within`` s."""
        for body in self.responses(within):
            result = check(body)
            if result:
                return result
        raise AssertionError(
            f"{self.user.user_id} on {self.user.server.server_name} did not see {what} "
            f"within {within}s"
        )

    def wait_for_event(
        self,
        room_id: str,
        matches: Callable[[dict[str, Any]], bool],
        *,
        within: float = FEDERATION_WITHIN,
        what: str = "the expected event",
    ) -> dict[str, Any]:
        """The first timeline (or state) event of ``room_id`` that ``matches``."""

        def check(body: dict[str, Any]) -> dict[str, Any] | None:
            room = body.get("rooms", {}).get("join", {}).get(room_id, {})
            for event in room.get("state", {}).get("events", []) + room.get("timeline", {}).get(
                "events", []
            ):
                if matches(event):
                    return dict(event)
            return None

        return self.wait_for(check, within=within, what=f"{what} in {room_id}")

    def wait_for_events(
        self, room_id: str, event_ids: Sequence[str], *, within: float = FEDERATION_WITHIN
    ) -> None:
        """Return once every one of ``event_ids`` was in ``room_id``'s timeline or state."""
        missing = set(event_ids)

        def check(body: dict[str, Any]) -> bool:
            room = body.get("rooms", {}).get("join", {}).get(room_id, {})
            for event in room.get("state", {}).get("events", []) + room.get("timeline", {}).get(
                "events", []
            ):
                missing.discard(event.get("event_id", ""))
            return not missing

        self.wait_for(check, within=within, what=f"events {sorted(missing)} in {room_id}")

    def catch_up(self) -> None:
        """Read the sync stream up to now without waiting: later waits see only what
        comes after."""
        self.wait_for(lambda body: True, within=0)

    def wait_for_invite(self, room_id: str, *, within: float = FEDERATION_WITHIN) -> None:
        self.wait_for(
            lambda body: room_id in body.get("rooms", {}).get("invite", {}),
            within=within,
            what=f"an invite to {room_id}",
        )


@attrs.frozen
class Conversation:
    """A room both servers are in: ``creator`` invited ``joiner``, who joined."""

    room_id: str
    creator: User
    joiner: User
    creator_sync: SyncWatcher
    joiner_sync: SyncWatcher

    def members(self) -> list[tuple[User, SyncWatcher]]:
        return [(self.creator, self.creator_sync), (self.joiner, self.joiner_sync)]

    def watcher_of(self, user: User) -> SyncWatcher:
        return self.creator_sync if user is self.creator else self.joiner_sync

    def other_than(self, user: User) -> tuple[User, SyncWatcher]:
        if user is self.creator:
            return self.joiner, self.joiner_sync
        return self.creator, self.creator_sync


def acting(conversation: Conversation, actor: str) -> tuple[User, SyncWatcher]:
    """The acting user ("creator" or "joiner"), and the sync of the other one."""
    user = conversation.creator if actor == "creator" else conversation.joiner
    return user, conversation.other_than(user)[1]


def start_conversation(
    home: FederatedServer, away: FederatedServer, **create_body: Any
) -> Conversation:
    """A user of ``home`` creates a room and invites a user of ``away``, who joins
    through ``home``; returns once both servers show the join to their user.  (A
    server that joined with partial state, as Synapse does, may leave the room out
    of its user's /sync until it has the full state; what arrives meanwhile, typing
    say, is not shown later.)"""
    creator = new_user(home, "creator")
    joiner = new_user(away, "joiner")
    creator_sync, joiner_sync = SyncWatcher(creator), SyncWatcher(joiner)
    room_id = create_room(creator, **create_body)
    invite(creator, room_id, joiner)
    joiner_sync.wait_for_invite(room_id)
    join(joiner, room_id, [home.server_name])
    creator_sync.wait_for_event(
        room_id,
        lambda event: is_membership(event, joiner.user_id, "join"),
        what=f"{joiner.user_id} joining",
    )
    joiner_sync.wait_for_event(
        room_id,
        lambda event: is_membership(event, joiner.user_id, "join"),
        what="its own join",
    )
    return Conversation(room_id, creator, joiner, creator_sync, joiner_sync)


def is_membership(event: dict[str, Any], user_id: str, membership: str) -> bool:
    return bool(
        event.get("type") == "m.room.member"
        and event.get("state_key") == user_id
        and event.get("content", {}).get("membership") == membership
    )


def has_event_id(event_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("event_id") == event_id
