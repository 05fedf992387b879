"""Rooms with history a late joiner was not there for, and reading it back, for the
history tests of every pairing."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import attrs

from tests.federation.interop.clients import (
    CLIENT_V1,
    SyncWatcher,
    User,
    invite,
    join,
    new_user,
    room_path,
    send_text,
)
from tests.support.federation import FederatedServer
from tests.support.http import Response


@attrs.frozen
class LateJoin:
    """A room of ``home`` with history the joiner of ``away`` was not there for."""

    room_id: str
    creator: User
    joiner: User
    #: The messages sent before the join, oldest first: (event ID, body).
    history: list[tuple[str, str]]


def room_with_history(
    home: FederatedServer, away: FederatedServer, count: int, *, join_it: bool = True
) -> LateJoin:
    """A room (history visibility ``shared``) with ``count`` messages, then the
    joiner's join (unless ``join_it`` is false: then the joiner is not in it)."""
    creator = new_user(home, "historian")
    joiner = new_user(away, "latecomer")
    room_id: str = creator.call(
        "POST",
        "/createRoom",
        {
            "preset": "private_chat",
            "initial_state": [
                {
                    "type": "m.room.history_visibility",
                    "state_key": "",
                    "content": {"history_visibility": "shared"},
                }
            ],
        },
    )["room_id"]
    history = []
    for n in range(count):
        body = f"message {n}"
        history.append((send_text(creator, room_id, body), body))
    if join_it:
        invite(creator, room_id, joiner)
        SyncWatcher(joiner).wait_for_invite(room_id)
        join(joiner, room_id, [home.server_name])
    return LateJoin(room_id, creator, joiner, history)


def page_back(user: User, room_id: str, limit: int) -> list[dict[str, Any]]:
    """Every event ``/messages`` shows going back from now, newest first."""
    seen: list[dict[str, Any]] = []
    start: str | None = None
    for _ in range(100):
        query = f"dir=b&limit={limit}" + (f"&from={quote(start)}" if start else "")
        page: dict[str, Any] = user.call("GET", room_path(room_id, "messages") + "?" + query)
        seen.extend(page["chunk"])
        if "end" not in page or not page["chunk"]:
            return seen
        start = page["end"]
    raise AssertionError("paging back never ended")


def event_ts(user: User, room_id: str, event_id: str) -> int:
    ts: int = user.call("GET", room_path(room_id, "event", event_id))["origin_server_ts"]
    return ts


def timestamp_to_event(user: User, room_id: str, ts: int, direction: str) -> Response:
    """``GET /timestamp_to_event`` as ``user`` (any status)."""
    query = urlencode({"ts": ts, "dir": direction})
    response: Response = user.server.process.request(
        "GET",
        CLIENT_V1 + room_path(room_id, "timestamp_to_event") + "?" + query,
        headers={"Authorization": f"Bearer {user.access_token}"},
    )
    return response


def first_at(room: LateJoin, ts: int) -> str:
    """The first message sent at ``ts`` (messages may share a millisecond)."""
    return next(
        event_id
        for event_id, _ in room.history
        if event_ts(room.creator, room.room_id, event_id) == ts
    )
