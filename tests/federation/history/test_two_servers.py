"""History across two of our servers: a late joiner pages back through history its
server fetches from the other (``/backfill``), finds old events by time
(``/timestamp_to_event``), and what the serving side refuses.

spec: server-server-api.md#backfilling-and-retrieving-missing-events,
#get_matrixfederationv1timestamp_to_eventroomid,
client-server-api/_index.md#get_matrixclientv3roomsroomidmessages,
#get_matrixclientv1roomsroomidtimestamp_to_event
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.federation.history.scenarios import (
    LateJoin,
    event_ts,
    first_at,
    page_back,
    timestamp_to_event,
)
from tests.federation.history.scenarios import room_with_history as late_join
from tests.federation.interop.clients import (
    ServerPair,
    SyncWatcher,
    invite,
    join,
    new_user,
    room_path,
    send_text,
)
from tests.support.federation import FederatedServer, federation_request

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation-history")]

MESSAGES = 50


def room_with_history(servers: ServerPair, count: int, *, join_it: bool = True) -> LateJoin:
    return late_join(servers.ours, servers.other, count, join_it=join_it)


def test_joiner_pages_back_through_the_history_of_the_other_server(
    servers: ServerPair,
) -> None:
    room = room_with_history(servers, MESSAGES)
    events = page_back(room.joiner, room.room_id, limit=10)
    ids = [event["event_id"] for event in events]
    assert len(ids) == len(set(ids)), "an event was shown twice"
    messages = [
        (event["event_id"], event["content"]["body"])
        for event in reversed(events)
        if event["type"] == "m.room.message"
    ]
    assert messages == room.history
    # All the way back to the room's creation, state events included.
    assert events[-1]["type"] == "m.room.create"
    assert {"m.room.power_levels", "m.room.join_rules"} <= {e["type"] for e in events}


def test_history_is_fetched_once(servers: ServerPair) -> None:
    """A second reader of the same room is answered from what the first fetched: the
    room's history here reaches its creation, so nothing is asked again."""
    room = room_with_history(servers, 5)
    first = [e["event_id"] for e in page_back(room.joiner, room.room_id, limit=50)]
    second_reader = new_user(servers.other, "reader")
    invite(room.creator, room.room_id, second_reader)
    SyncWatcher(second_reader).wait_for_invite(room.room_id)
    join(second_reader, room.room_id, [servers.ours.server_name])
    second = [e["event_id"] for e in page_back(second_reader, room.room_id, limit=50)]
    # The same history, under the second reader's invite and join.
    assert second[-len(first) :] == first
    assert len(second) == len(first) + 2
    assert servers.other.process.log().count(f"events of {room.room_id} from") == 1


def test_timestamp_to_event_finds_history_held_by_the_other_server(
    servers: ServerPair,
) -> None:
    room = room_with_history(servers, 10)
    wanted_id, _ = room.history[3]
    ts = event_ts(room.creator, room.room_id, wanted_id)
    response = timestamp_to_event(room.joiner, room.room_id, ts, "f")
    assert response.status == 200, response.body
    found = response.json()
    assert found["origin_server_ts"] == ts
    # Events may share a millisecond: the first of them going forward.
    assert found["event_id"] == first_at(room, ts)
    # Fetched and stored: the joiner's server serves it now.
    event = room.joiner.call("GET", room_path(room.room_id, "event", found["event_id"]))
    assert event["origin_server_ts"] == ts


def test_timestamp_before_the_room_finds_nothing_on_either_server(servers: ServerPair) -> None:
    room = room_with_history(servers, 2)
    created = event_ts(room.creator, room.room_id, room.history[0][0])
    response = timestamp_to_event(room.joiner, room.room_id, created - 3_600_000, "b")
    assert response.status == 404, response.body
    assert response.json()["errcode"] == "M_NOT_FOUND"


def signed_get(servers: ServerPair, path: str) -> Any:
    """A GET of ``ours``' federation API, signed by ``other``."""
    origin: FederatedServer = servers.other
    return federation_request(
        servers.ca,
        servers.ours,
        "GET",
        path,
        origin=origin.server_name,
        signing_key=origin.signing_key(),
    )


def backfill_path(room_id: str, from_ids: list[str], limit: int) -> str:
    query = urlencode([*(("v", event_id) for event_id in from_ids), ("limit", str(limit))])
    return f"/_matrix/federation/v1/backfill/{quote(room_id, safe='')}?{query}"


def test_backfill_serves_newest_first_up_to_the_limit(servers: ServerPair) -> None:
    room = room_with_history(servers, 8)
    newest_id = room.history[-1][0]
    response = signed_get(servers, backfill_path(room.room_id, [newest_id], 5))
    assert response.status == 200, response.body
    body = response.json()
    assert body["origin"] == servers.ours.server_name
    # (PDUs of these room versions carry no event ID: their bodies tell them apart.)
    bodies = [pdu["content"].get("body") for pdu in body["pdus"]]
    assert bodies == [text for _, text in reversed(room.history[-5:])]


def test_backfill_is_refused_to_a_server_not_in_the_room(servers: ServerPair) -> None:
    room = room_with_history(servers, 2, join_it=False)
    response = signed_get(servers, backfill_path(room.room_id, [room.history[-1][0]], 10))
    assert response.status == 403, response.body
    assert response.json()["errcode"] == "M_FORBIDDEN"
    ts_path = f"/_matrix/federation/v1/timestamp_to_event/{quote(room.room_id, safe='')}?ts=0&dir=f"
    assert signed_get(servers, ts_path).status == 403


@pytest.mark.parametrize(
    "query",
    ["limit=10", "v=%24x&limit=ten", "v=%24x"],
    ids=["without-v", "limit-not-a-number", "without-limit"],
)
def test_malformed_backfill_requests_are_refused(servers: ServerPair, query: str) -> None:
    room = room_with_history(servers, 1)
    path = f"/_matrix/federation/v1/backfill/{quote(room.room_id, safe='')}?{query}"
    response = signed_get(servers, path)
    assert response.status == 400, response.body
    assert response.json()["errcode"] in ("M_MISSING_PARAM", "M_INVALID_PARAM")


def test_history_missed_while_away_is_filled_in_when_paging_back(servers: ServerPair) -> None:
    """The joiner's server is down while many messages are sent; back up, it hears
    of the newest and fills in what it can through ``/get_missing_events``; paging
    back, the joiner sees every message, the hole left being backfilled."""
    room = room_with_history(servers, 2)
    watcher = SyncWatcher(room.joiner)
    watcher.catch_up()
    servers.other.process.stop()
    try:
        missed = [send_text(room.creator, room.room_id, f"while away {n}") for n in range(40)]
    finally:
        servers.other.process.start()
    latest = send_text(room.creator, room.room_id, "back again")
    watcher.wait_for_events(room.room_id, [latest])
    events = page_back(room.joiner, room.room_id, limit=10)
    shown = [e["event_id"] for e in reversed(events) if e["type"] == "m.room.message"]
    assert shown == [*(event_id for event_id, _ in room.history), *missed, latest]


@pytest.mark.parametrize(
    "query",
    ["dir=f", "ts=1&dir=sideways", "ts=1", "ts=99999999999999999999&dir=b", "ts=-1&dir=f"],
    ids=["without-ts", "bad-dir", "without-dir", "ts-too-large", "ts-negative"],
)
def test_malformed_timestamp_requests_are_refused(servers: ServerPair, query: str) -> None:
    room = room_with_history(servers, 1)
    path = f"/_matrix/federation/v1/timestamp_to_event/{quote(room.room_id, safe='')}?{query}"
    response = signed_get(servers, path)
    assert response.status == 400, response.body
    assert response.json()["errcode"] in ("M_MISSING_PARAM", "M_INVALID_PARAM")
