"""/messages and /context in graph order, ``(depth, stream_ordering)``, with topological
tokens; sync tokens still accepted; backfilled events (negative stream positions) in
history by depth and never in an incremental /sync.

spec: client-server-api/_index.md#get_matrixclientv3roomsroomidmessages,
#get_matrixclientv3roomsroomidcontexteventid, #syncing (closing a gap with ``from``
and ``to``)
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.client.test_rooms import create_room, send_text
from tests.support.database import run_sql
from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def messages(server: ServerProcess, token: str, room_id: str, query: str) -> dict[str, Any]:
    page = call(server, "GET", f"/rooms/{room_id}/messages?{query}", token=token)
    assert page.status == 200, page.body
    body: dict[str, Any] = page.json()
    return body


def walk(
    server: ServerProcess,
    token: str,
    room_id: str,
    direction: str,
    limit: int,
    extra: str = "",
    start: str | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Every event ID /messages gives, page after page until there is no ``end``."""
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    position = start
    while True:
        query = f"dir={direction}&limit={limit}{extra}"
        if position is not None:
            query += f"&from={quote(position)}"
        page = messages(server, token, room_id, query)
        pages.append(page)
        seen.extend(event["event_id"] for event in page["chunk"])
        if "end" not in page:
            return seen, pages
        assert page["end"].startswith("t"), page["end"]
        position = page["end"]
        assert len(pages) < 500, "pagination does not end"


def send(
    server: ServerProcess, token: str, room_id: str, count: int, prefix: str = "m"
) -> list[str]:
    ids = []
    for index in range(count):
        response = send_text(server, token, room_id, f"{prefix}{index}", f"{prefix}-t{index}")
        assert response.status == 200, response.body
        ids.append(response.json()["event_id"])
    return ids


def graph_order(database_config: dict[str, Any], room_id: str) -> list[str]:
    """The room's visible events by (depth, stream_ordering), read straight from the DB."""
    rows = run_sql(
        database_config,
        "SELECT e.event_id FROM events e JOIN rooms r ON r.room_nid = e.room_nid"
        " WHERE r.room_id = ? AND e.outlier = ? AND e.soft_failed = ?"
        " AND e.rejected_reason IS NULL ORDER BY e.depth, e.stream_ordering",
        room_id,
        False,
        False,
    )
    return [row[0] for row in rows]


def depth_of(database_config: dict[str, Any], event_id: str) -> int:
    rows = run_sql(database_config, "SELECT depth FROM events WHERE event_id = ?", event_id)
    return int(rows[0][0])


def set_depth(database_config: dict[str, Any], event_id: str, depth: int) -> None:
    run_sql(database_config, "UPDATE events SET depth = ? WHERE event_id = ?", depth, event_id)


def event_columns(database_config: dict[str, Any]) -> list[str]:
    if database_config["name"] == "sqlite3":
        rows = run_sql(database_config, "SELECT name FROM pragma_table_info('events')")
    else:
        rows = run_sql(
            database_config,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'events'"
            " ORDER BY ordinal_position",
        )
    return [row[0] for row in rows]


def plant_backfilled(
    database_config: dict[str, Any], *, like: str, event_id: str, depth: int, stream: int
) -> None:
    """A copy of ``like``'s row (whatever columns the events table has), stored as
    backfill stores events: a negative stream position and a depth placing it in
    history.  Its PDU is ``like``'s; only the row's order columns place it."""
    replaced = {
        "event_nid": "(SELECT MAX(event_nid) + 100000 FROM events)",
        "event_id": "?",
        "depth": "?",
        "stream_ordering": "?",
        "txn_device_id": "NULL",
        "txn_id": "NULL",
    }
    columns = event_columns(database_config)
    values = ", ".join(replaced.get(column, column) for column in columns)
    run_sql(
        database_config,
        f"INSERT INTO events ({', '.join(columns)}) SELECT {values} FROM events WHERE event_id = ?",
        *[
            {"event_id": event_id, "depth": depth, "stream_ordering": stream}[column]
            for column in columns
            if replaced.get(column) == "?"
        ],
        like,
    )


def bodies(chunk: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in chunk if e["type"] == "m.room.message"]


def test_messages_walk_the_whole_room_both_ways_in_graph_order(
    open_server: ServerProcess, database_config: dict[str, Any]
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, name="walk")
    sent = send(open_server, alice, room_id, 23)
    expected = graph_order(database_config, room_id)
    # A room created here is a chain: graph order is creation order, then the sends.
    assert expected[-23:] == sent
    backwards, back_pages = walk(open_server, alice, room_id, "b", 5)
    forwards, forward_pages = walk(open_server, alice, room_id, "f", 4)
    assert backwards == expected[::-1]
    assert forwards == expected
    # Each page starts where the last one ended; tokens are topological.
    for pages in (back_pages, forward_pages):
        assert pages[0]["start"].startswith("t")
        for previous, page in zip(pages, pages[1:], strict=False):
            assert page["start"] == previous["end"]
    # Forwards from the first backwards page's start: nothing yet, then what is new.
    later = send(open_server, alice, room_id, 1, prefix="late")
    after_start = messages(
        open_server, alice, room_id, f"dir=f&from={quote(back_pages[0]['start'])}"
    )
    assert [e["event_id"] for e in after_start["chunk"]] == later


def test_events_of_equal_depth_are_ordered_by_stream_position(
    open_server: ServerProcess, database_config: dict[str, Any]
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    m = send(open_server, alice, room_id, 6)
    # m1 and m5 move to m4's depth: depth first puts m2, m3 before m1; at equal depth
    # stream position orders m1, m4, m5.
    shared = depth_of(database_config, m[4])
    set_depth(database_config, m[1], shared)
    set_depth(database_config, m[5], shared)
    order = [m[0], m[2], m[3], m[1], m[4], m[5]]
    # One event per page: a token between two events of equal depth loses nothing.
    forwards, _ = walk(open_server, alice, room_id, "f", 1)
    backwards, _ = walk(open_server, alice, room_id, "b", 1)
    assert forwards[-6:] == order
    assert backwards[:6] == order[::-1]
    assert sorted(forwards) == sorted(backwards) and len(set(forwards)) == len(forwards)
    context = call(open_server, "GET", f"/rooms/{room_id}/context/{m[4]}?limit=2", token=alice)
    assert context.status == 200, context.body
    body = context.json()
    assert [e["event_id"] for e in body["events_before"]] == [m[1]]
    assert [e["event_id"] for e in body["events_after"]] == [m[5]]
    # /context's tokens go on from there, without repeating or skipping anything.
    before = messages(open_server, alice, room_id, f"dir=b&limit=2&from={quote(body['start'])}")
    assert [e["event_id"] for e in before["chunk"]] == [m[3], m[2]]
    after = messages(open_server, alice, room_id, f"dir=f&from={quote(body['end'])}")
    assert after["chunk"] == [] and "end" not in after


def test_a_backfilled_event_is_in_history_by_depth_and_never_new_in_sync(
    open_server: ServerProcess, database_config: dict[str, Any]
) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    m = send(open_server, alice, room_id, 6)
    since = call(open_server, "GET", "/sync?timeout=0", token=alice).json()["next_batch"]
    # Stored as backfill will store it: a negative stream position, and the depth of
    # m3 (so it sorts just before m3: equal depth, lower stream position).
    backfilled = "$backfilled-for-graph-order-test"
    plant_backfilled(
        database_config,
        like=m[2],
        event_id=backfilled,
        depth=depth_of(database_config, m[3]),
        stream=-1,
    )
    incremental = call(open_server, "GET", f"/sync?timeout=0&since={since}", token=alice).json()
    assert room_id not in incremental.get("rooms", {}).get("join", {})
    expected = [m[0], m[1], m[2], backfilled, m[3], m[4], m[5]]
    forwards, _ = walk(open_server, alice, room_id, "f", 3)
    backwards, _ = walk(open_server, alice, room_id, "b", 3)
    assert forwards[-7:] == expected
    assert backwards[:7] == expected[::-1]
    # From the sync token too: every event it covered lies before it.
    from_sync = messages(open_server, alice, room_id, f"dir=b&limit=5&from={since}")
    assert [e["event_id"] for e in from_sync["chunk"]] == expected[:1:-1]
    context = call(
        open_server, "GET", f"/rooms/{room_id}/context/{backfilled}?limit=2", token=alice
    )
    assert context.status == 200, context.body
    assert [e["event_id"] for e in context.json()["events_before"]] == [m[2]]
    assert [e["event_id"] for e in context.json()["events_after"]] == [m[3]]
    # A new event is new; the backfilled one still is not.
    (late,) = send(open_server, alice, room_id, 1, prefix="late")
    synced = call(open_server, "GET", f"/sync?timeout=0&since={since}", token=alice).json()
    timeline = synced["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["event_id"] for e in timeline] == [late]


def test_a_sync_gap_closes_with_from_since_and_to_prev_batch(open_server: ServerProcess) -> None:
    """The spec's own example: a limited sync leaves a gap between ``since`` and
    its ``prev_batch``; ``/messages?dir=f&from=<since>&to=<prev_batch>`` fills it."""
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    send(open_server, alice, room_id, 2, prefix="old")
    since = call(open_server, "GET", "/sync?timeout=0", token=alice).json()["next_batch"]
    send(open_server, alice, room_id, 7, prefix="new")
    small = quote(json.dumps({"room": {"timeline": {"limit": 2}}}))
    synced = call(
        open_server, "GET", f"/sync?timeout=0&since={since}&filter={small}", token=alice
    ).json()
    timeline = synced["rooms"]["join"][room_id]["timeline"]
    assert timeline["limited"] is True and bodies(timeline["events"]) == ["new5", "new6"]
    gap = messages(
        open_server, alice, room_id, f"dir=f&limit=50&from={since}&to={timeline['prev_batch']}"
    )
    assert bodies(gap["chunk"]) == [f"new{i}" for i in range(5)]
    # Backwards over the same gap, from prev_batch down to since.
    back = messages(
        open_server, alice, room_id, f"dir=b&limit=50&from={timeline['prev_batch']}&to={since}"
    )
    assert bodies(back["chunk"]) == [f"new{i}" for i in reversed(range(5))]
    # And from prev_batch down to the start, paging with the topological tokens.
    back_ids, _ = walk(open_server, alice, room_id, "b", 2, start=timeline["prev_batch"])
    forward_ids, _ = walk(open_server, alice, room_id, "f", 50)
    cut = forward_ids.index(timeline["events"][0]["event_id"])
    assert back_ids == forward_ids[:cut][::-1]


def test_to_stops_the_walk_at_an_earlier_page_boundary(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    send(open_server, alice, room_id, 10)
    _, pages = walk(open_server, alice, room_id, "b", 3)
    # From page 1's end to page 3's end: pages 2 and 3, in either direction.
    down = messages(
        open_server,
        alice,
        room_id,
        f"dir=b&limit=50&from={quote(pages[0]['end'])}&to={quote(pages[2]['end'])}",
    )
    assert bodies(down["chunk"]) == ["m6", "m5", "m4", "m3", "m2", "m1"]
    up = messages(
        open_server,
        alice,
        room_id,
        f"dir=f&limit=50&from={quote(pages[2]['end'])}&to={quote(pages[0]['end'])}",
    )
    assert bodies(up["chunk"]) == ["m1", "m2", "m3", "m4", "m5", "m6"]
    # ``to`` on the wrong side of ``from``: nothing.
    wrong = messages(
        open_server,
        alice,
        room_id,
        f"dir=b&from={quote(pages[2]['end'])}&to={quote(pages[0]['end'])}",
    )
    assert wrong["chunk"] == [] and "end" not in wrong


def test_filters_page_in_graph_order_without_gaps(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    for index in range(12):
        sender = alice if index % 3 else bob
        send_text(open_server, sender, room_id, f"m{index}", f"f{index}")
        state = {"topic": f"topic {index}"}
        assert (
            call(
                open_server, "PUT", f"/rooms/{room_id}/state/m.room.topic", token=alice, body=state
            ).status
            == 200
        )
    call(
        open_server,
        "PUT",
        f"/rooms/{room_id}/send/m.room.message/url",
        token=alice,
        body={"msgtype": "m.image", "body": "img", "url": "mxc://localhost/abc"},
    )
    every = [f"m{i}" for i in range(12)]

    def walked(definition: dict[str, Any], direction: str = "b") -> list[str]:
        extra = "&filter=" + quote(json.dumps(definition))
        ids, pages = walk(open_server, alice, room_id, direction, 2, extra)
        assert len(ids) == len(set(ids))
        return [b for page in pages for b in bodies(page["chunk"])]

    assert walked({"types": ["m.room.message"]}, "f") == [*every, "img"]
    assert walked({"types": ["m.room.mess*"]}) == ["img", *every[::-1]]
    assert walked({"types": ["m.room.message"], "senders": ["@bob:localhost"]}) == [
        "m9",
        "m6",
        "m3",
        "m0",
    ]
    assert walked(
        {"not_types": ["m.room.topic", "m.room.member"], "not_senders": ["@bob:localhost"]}
    )[:3] == ["img", "m11", "m10"]
    assert walked({"contains_url": True}) == ["img"]
    assert walked({"not_types": ["m.room.*"]}) == []
    topic_filter = "&filter=" + quote(json.dumps({"types": ["m.room.topic"]}))
    topics, _ = walk(open_server, alice, room_id, "f", 5, topic_filter)
    assert len(topics) == len(set(topics)) == 12


def test_sync_tokens_still_work_and_garbage_is_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    send(open_server, alice, room_id, 4)
    small = quote(json.dumps({"room": {"timeline": {"limit": 1}}}))
    synced = call(open_server, "GET", f"/sync?timeout=0&filter={small}", token=alice).json()
    prev_batch = synced["rooms"]["join"][room_id]["timeline"]["prev_batch"]
    assert prev_batch.startswith("s")
    page = messages(open_server, alice, room_id, f"dir=b&limit=2&from={prev_batch}")
    # ``start`` is ``from`` as given (the spec); ``end`` is topological.
    assert page["start"] == prev_batch and page["end"].startswith("t")
    assert bodies(page["chunk"]) == ["m2", "m1"]
    # An old sync token from before this room existed: nothing of it before it.
    nothing = messages(open_server, alice, room_id, "dir=b&from=s0_0_0_0")
    assert nothing["chunk"] == [] and "end" not in nothing
    for garbage in (
        "zzz",
        "t",
        "t1",
        "t1_",
        "t_1",
        "t-1_2",
        "t1_2_3",
        "t+1_2",
        "t1_--2",
        "t 1_2",
        "t99999999999999999999_1",
        "t9223372036854775808_1",
        "t1_-9223372036854775809",
        "t\uff11_2",
        "s",
        "sx",
    ):
        for param in ("from", "to"):
            refused = call(
                open_server,
                "GET",
                f"/rooms/{room_id}/messages?dir=b&{param}={quote(garbage)}",
                token=alice,
            )
            assert (refused.status, refused.json()["errcode"]) == (400, "M_INVALID_PARAM"), garbage
    bad_at = call(open_server, "GET", f"/rooms/{room_id}/members?at=t1", token=alice)
    assert (bad_at.status, bad_at.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_members_at_a_topological_token(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    before_bob = messages(open_server, alice, room_id, "dir=b&limit=1")["start"]
    assert before_bob.startswith("t")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200

    def members(at: str | None) -> set[str]:
        query = "" if at is None else f"?at={quote(at)}"
        response = call(open_server, "GET", f"/rooms/{room_id}/members{query}", token=alice)
        assert response.status == 200, response.body
        return {e["state_key"] for e in response.json()["chunk"]}

    assert members(before_bob) == {"@alice:localhost"}
    assert members(None) == {"@alice:localhost", "@bob:localhost"}


@pytest.mark.parametrize("limit", [0, 1])
def test_tiny_limits_keep_a_token_to_go_on(open_server: ServerProcess, limit: int) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    send(open_server, alice, room_id, 2)
    page = messages(open_server, alice, room_id, f"dir=b&limit={limit}")
    assert len(page["chunk"]) == limit and page["end"].startswith("t")
    rest = messages(open_server, alice, room_id, f"dir=b&limit=1&from={quote(page['end'])}")
    assert bodies(rest["chunk"]) == ["m1" if limit == 0 else "m0"]
