"""/relations and /threads over HTTP against the real server, on both engines."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from tests.support.http import Response
from tests.support.matrix import auth, call, register
from tests.support.server_process import ServerProcess

V1 = "/_matrix/client/v1"


def v1(server: ServerProcess, path: str, token: str, **query: Any) -> Response:
    suffix = f"?{urlencode(query)}" if query else ""
    return server.request("GET", V1 + path + suffix, headers=auth(token))


def ok(response: Response) -> Any:
    assert response.status == 200, response.body
    return response.json()


def errcode(response: Response) -> tuple[int, str]:
    return response.status, response.json()["errcode"]


def create_room(server: ServerProcess, token: str, **body: Any) -> str:
    room_id: str = ok(call(server, "POST", "/createRoom", token=token, body=body))["room_id"]
    return room_id


def join(server: ServerProcess, token: str, room_id: str) -> None:
    ok(call(server, "POST", f"/rooms/{room_id}/join", token=token, body={}))


class Sender:
    """Sends events with fresh transaction IDs."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.count = 0

    def send(self, token: str, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        self.count += 1
        path = f"/rooms/{room_id}/send/{event_type}/txn{self.count}"
        event_id: str = ok(call(self.server, "PUT", path, token=token, body=content))["event_id"]
        return event_id

    def text(self, token: str, room_id: str, body: str, **extra: Any) -> str:
        return self.send(
            token, room_id, "m.room.message", {"msgtype": "m.text", "body": body, **extra}
        )

    def edit(self, token: str, room_id: str, original: str, body: str) -> str:
        new = {"msgtype": "m.text", "body": body}
        return self.text(
            token,
            room_id,
            f"* {body}",
            **{
                "m.new_content": new,
                "m.relates_to": {"rel_type": "m.replace", "event_id": original},
            },
        )

    def react(self, token: str, room_id: str, target: str, key: str) -> str:
        relates = {"rel_type": "m.annotation", "event_id": target, "key": key}
        return self.send(token, room_id, "m.reaction", {"m.relates_to": relates})

    def reply_in_thread(self, token: str, room_id: str, root: str, body: str) -> str:
        return self.text(
            token, room_id, body, **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
        )


def ids(body: dict[str, Any]) -> list[str]:
    return [event["event_id"] for event in body["chunk"]]


def test_edits_and_reactions_are_listed_by_relation_type(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    join(open_server, bob, room_id)
    s = Sender(open_server)
    message = s.text(alice, room_id, "helo")
    first_edit = s.edit(alice, room_id, message, "hello")
    second_edit = s.edit(alice, room_id, message, "hello!")
    thumbs = s.react(bob, room_id, message, "👍")
    party = s.react(alice, room_id, message, "🎉")
    base = f"/rooms/{room_id}/relations/{message}"

    everything = ok(v1(open_server, base, bob, limit=10))
    assert ids(everything) == [party, thumbs, second_edit, first_edit]
    assert "next_batch" not in everything and "prev_batch" not in everything
    assert "recursion_depth" not in everything

    edits = ok(v1(open_server, base + "/m.replace", bob))
    assert ids(edits) == [second_edit, first_edit]
    assert edits["chunk"][0]["content"]["m.new_content"]["body"] == "hello!"
    forwards = ok(v1(open_server, base + "/m.replace/m.room.message", bob, dir="f"))
    assert ids(forwards) == [first_edit, second_edit]

    reactions = ok(v1(open_server, base + "/m.annotation", alice))
    assert ids(reactions) == [party, thumbs]
    assert [e["content"]["m.relates_to"]["key"] for e in reactions["chunk"]] == ["🎉", "👍"]
    assert [e["sender"] for e in reactions["chunk"]] == ["@alice:localhost", "@bob:localhost"]
    assert ids(ok(v1(open_server, base + "/m.annotation/m.reaction", alice))) == [party, thumbs]
    assert ids(ok(v1(open_server, base + "/m.annotation/m.room.message", alice))) == []
    # The parent shows the latest edit as its bundled aggregation (the same serializer).
    parent = ok(call(open_server, "GET", f"/rooms/{room_id}/event/{message}", token=bob))
    assert parent["unsigned"]["m.relations"]["m.replace"]["event_id"] == second_edit


def test_relations_paginate_both_ways_with_tokens(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    s = Sender(open_server)
    message = s.text(alice, room_id, "vote")
    reactions = [s.react(alice, room_id, message, str(n)) for n in range(5)]
    base = f"/rooms/{room_id}/relations/{message}/m.annotation"

    seen: list[str] = []
    query: dict[str, Any] = {"limit": 2}
    pages = []
    while True:
        page = ok(v1(open_server, base, alice, **query))
        pages.append(page)
        seen.extend(ids(page))
        if "next_batch" not in page:
            break
        assert page["next_batch"] != query.get("from")
        query = {"limit": 2, "from": page["next_batch"]}
    assert seen == reactions[::-1]
    assert [len(page["chunk"]) for page in pages] == [2, 2, 1]
    assert "prev_batch" not in pages[0]
    assert pages[1]["prev_batch"] == pages[0]["next_batch"]

    forwards: list[str] = []
    query = {"limit": 3, "dir": "f"}
    while True:
        page = ok(v1(open_server, base, alice, **query))
        forwards.extend(ids(page))
        if "next_batch" not in page:
            break
        query = {"limit": 3, "dir": "f", "from": page["next_batch"]}
    assert forwards == reactions

    # `to` stops the walk: from page 1's start to page 2's end is the first four.
    first = pages[0]
    bounded = ok(v1(open_server, base, alice, limit=10, to=pages[1]["next_batch"]))
    assert ids(bounded) == reactions[:0:-1]
    assert "next_batch" not in bounded
    # The other way round (from page 2, to page 1) is empty, as the spec says.
    empty = ok(
        v1(
            open_server,
            base,
            alice,
            limit=10,
            **{"from": pages[1]["next_batch"], "to": first["next_batch"]},
        )
    )
    assert ids(empty) == []
    # A /messages token works as `from` too.
    messages = ok(call(open_server, "GET", f"/rooms/{room_id}/messages?dir=b&limit=1", token=alice))
    from_messages = ok(v1(open_server, base, alice, limit=10, **{"from": messages["start"]}))
    assert ids(from_messages) == reactions[::-1]


def test_recurse_follows_relations_of_relations(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    s = Sender(open_server)
    root = s.text(alice, room_id, "root")
    reply = s.reply_in_thread(alice, room_id, root, "reply")
    reply_edit = s.edit(alice, room_id, reply, "reply, edited")
    reaction = s.react(alice, room_id, reply, "👀")
    base = f"/rooms/{room_id}/relations/{root}"

    direct = ok(v1(open_server, base, alice, recurse="false"))
    assert ids(direct) == [reply]
    assert direct["recursion_depth"] == 1
    deep = ok(v1(open_server, base, alice, recurse="true"))
    assert ids(deep) == [reaction, reply_edit, reply]
    assert deep["recursion_depth"] == 3
    # Filters apply to every step: the edit and the reaction hang off an m.thread event.
    only_replace = ok(v1(open_server, base + "/m.replace", alice, recurse="true"))
    assert ids(only_replace) == []
    threads = ok(v1(open_server, base + "/m.thread", alice, recurse="true"))
    assert ids(threads) == [reply]


def test_redacted_and_ignored_relations_are_hidden(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    join(open_server, bob, room_id)
    s = Sender(open_server)
    message = s.text(alice, room_id, "hi")
    kept = s.react(alice, room_id, message, "👍")
    withdrawn = s.react(alice, room_id, message, "👎")
    from_bob = s.react(bob, room_id, message, "❤️")
    base = f"/rooms/{room_id}/relations/{message}/m.annotation"
    assert ids(ok(v1(open_server, base, alice))) == [from_bob, withdrawn, kept]

    redact = call(
        open_server, "PUT", f"/rooms/{room_id}/redact/{withdrawn}/r1", token=alice, body={}
    )
    assert redact.status == 200, redact.body
    assert ids(ok(v1(open_server, base, alice))) == [from_bob, kept]

    ignore: dict[str, Any] = {"ignored_users": {"@bob:localhost": {}}}
    put = call(
        open_server,
        "PUT",
        "/user/@alice:localhost/account_data/m.ignored_user_list",
        token=alice,
        body=ignore,
    )
    assert put.status == 200, put.body
    assert ids(ok(v1(open_server, base, alice))) == [kept]
    # Bob ignores nobody: he still sees his own.
    assert ids(ok(v1(open_server, base, bob))) == [from_bob, kept]


def test_who_may_read_relations(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    eve = register(open_server, "eve")["access_token"]
    room_id = create_room(open_server, alice, preset="private_chat")
    other_room = create_room(open_server, alice)
    s = Sender(open_server)
    message = s.text(alice, room_id, "secret")
    elsewhere = s.text(alice, other_room, "other")

    refused = v1(open_server, f"/rooms/{room_id}/relations/{message}", eve)
    assert errcode(refused) == (403, "M_FORBIDDEN")
    assert errcode(v1(open_server, f"/rooms/{room_id}/threads", eve)) == (403, "M_FORBIDDEN")
    unknown_room = v1(open_server, f"/rooms/!nowhere:localhost/relations/{message}", alice)
    assert errcode(unknown_room) == (403, "M_FORBIDDEN")
    # The parent must be an event of this room.
    for parent in ("$unknown", elsewhere):
        missing = v1(open_server, f"/rooms/{room_id}/relations/{quote(parent)}", alice)
        assert errcode(missing) == (404, "M_NOT_FOUND"), parent


def test_bad_parameters_are_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    message = Sender(open_server).text(alice, room_id, "hi")
    base = f"/rooms/{room_id}/relations/{message}"
    for query in (
        {"dir": "x"},
        {"limit": "ten"},
        {"limit": "0"},
        {"limit": "-1"},
        {"recurse": "yes"},
        {"from": "nonsense"},
        {"to": "s-1"},
    ):
        assert errcode(v1(open_server, base, alice, **query)) == (400, "M_INVALID_PARAM"), query
    assert errcode(v1(open_server, f"/rooms/{room_id}/relations/nodollar", alice)) == (
        400,
        "M_INVALID_PARAM",
    )
    assert errcode(v1(open_server, f"/rooms/not-a-room/relations/{message}", alice)) == (
        400,
        "M_INVALID_PARAM",
    )
    threads = f"/rooms/{room_id}/threads"
    for query in ({"include": "mine"}, {"limit": "0"}, {"from": "s12"}, {"from": "t-3"}):
        assert errcode(v1(open_server, threads, alice, **query)) == (400, "M_INVALID_PARAM"), query


def test_threads_by_latest_activity_and_participation(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    join(open_server, bob, room_id)
    s = Sender(open_server)
    first = s.text(alice, room_id, "first thread")
    second = s.text(bob, room_id, "second thread")
    third = s.text(alice, room_id, "third thread")
    s.text(alice, room_id, "not a thread")
    s.reply_in_thread(alice, room_id, first, "a1")
    s.reply_in_thread(alice, room_id, third, "c1")
    s.reply_in_thread(alice, room_id, second, "b1")
    latest_in_first = s.reply_in_thread(bob, room_id, first, "a2")
    threads = f"/rooms/{room_id}/threads"

    listing = ok(v1(open_server, threads, alice))
    assert ids(listing) == [first, second, third]
    assert "next_batch" not in listing
    summary = listing["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 2
    assert summary["latest_event"]["event_id"] == latest_in_first
    assert summary["current_user_participated"] is True

    # Bob started the second thread and replied in the first.
    bobs = ok(v1(open_server, threads, bob, include="participated"))
    assert ids(bobs) == [first, second]
    assert all(
        e["unsigned"]["m.relations"]["m.thread"]["current_user_participated"] for e in bobs["chunk"]
    )
    third_summary = ok(v1(open_server, threads, bob))["chunk"][2]
    assert (
        third_summary["unsigned"]["m.relations"]["m.thread"]["current_user_participated"] is False
    )

    paged: list[str] = []
    query: dict[str, Any] = {"limit": 1}
    while True:
        page = ok(v1(open_server, threads, alice, **query))
        assert len(page["chunk"]) == 1
        paged.extend(ids(page))
        if "next_batch" not in page:
            break
        query = {"limit": 1, "from": page["next_batch"]}
    assert paged == [first, second, third]

    # A new reply moves a thread to the top.
    s.reply_in_thread(bob, room_id, third, "c2")
    assert ids(ok(v1(open_server, threads, alice))) == [third, first, second]
    assert ids(ok(v1(open_server, threads, bob, include="participated"))) == [third, first, second]


def test_threads_of_ignored_users_are_shown_redacted(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    join(open_server, bob, room_id)
    s = Sender(open_server)
    root = s.text(bob, room_id, "bob's thread")
    reply = s.reply_in_thread(alice, room_id, root, "alice answers")
    ignore: dict[str, Any] = {"ignored_users": {"@bob:localhost": {}}}
    put = call(
        open_server,
        "PUT",
        "/user/@alice:localhost/account_data/m.ignored_user_list",
        token=alice,
        body=ignore,
    )
    assert put.status == 200, put.body
    [shown] = ok(v1(open_server, f"/rooms/{room_id}/threads", alice))["chunk"]
    assert shown["event_id"] == root
    assert shown["content"] == {}
    assert shown["unsigned"]["m.relations"]["m.thread"]["latest_event"]["event_id"] == reply
