"""``POST /search`` over HTTP, on both engines: fuzzy matching (typos, prefixes), the
spec's filter and our ``dev.homeserver.*`` fields, ordering and pagination (keyset
tokens, group tokens), counts that never include hidden events, history visibility,
encrypted rooms, ignored users, redactions, context, groups and state, refusals and
the rate limit.

spec: client-server-api/modules/search.md, data/api/client-server/search.yaml
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.api.client.test_rooms import create_room, send_text
from tests.support.matrix import call, register, running_server
from tests.support.server_process import ServerProcess


def search(
    server: ServerProcess,
    token: str,
    term: str,
    *,
    next_batch: str | None = None,
    status: int = 200,
    **criteria: Any,
) -> dict[str, Any]:
    path = "/search" if next_batch is None else f"/search?next_batch={next_batch}"
    body = {"search_categories": {"room_events": {"search_term": term, **criteria}}}
    response = call(server, "POST", path, token=token, body=body)
    assert response.status == status, response.body
    result: dict[str, Any] = response.json()
    return result["search_categories"]["room_events"] if status == 200 else result


def bodies(found: dict[str, Any]) -> list[str]:
    return [result["result"]["content"]["body"] for result in found["results"]]


def send(server: ServerProcess, token: str, room_id: str, body: str, txn: str) -> str:
    response = send_text(server, token, room_id, body, txn)
    assert response.status == 200, response.body
    event_id: str = response.json()["event_id"]
    return event_id


def send_content(
    server: ServerProcess, token: str, room_id: str, content: dict[str, Any], txn: str
) -> str:
    response = call(
        server, "PUT", f"/rooms/{room_id}/send/m.room.message/{txn}", token=token, body=content
    )
    assert response.status == 200, response.body
    event_id: str = response.json()["event_id"]
    return event_id


def test_misspelled_words_and_prefixes_find_the_message(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    send(open_server, alice, room_id, "The Encryption message arrived late", "1")
    send(open_server, alice, room_id, "Café au lait", "2")
    # A typo (two letters swapped), a prefix, a typo in the first letter of a long word.
    assert bodies(search(open_server, alice, "messgae")) == ["The Encryption message arrived late"]
    found = search(open_server, alice, "encrypt")
    assert bodies(found) == ["The Encryption message arrived late"]
    assert "Encryption" in found["highlights"]
    assert bodies(search(open_server, alice, "xncryption")) == [
        "The Encryption message arrived late"
    ]
    # Case and diacritics do not matter; every word must match.
    assert bodies(search(open_server, alice, "CAFE")) == ["Café au lait"]
    assert bodies(search(open_server, alice, "cafe message")) == []
    nothing = search(open_server, alice, "unrelated")
    assert (nothing["results"], nothing["count"]) == ([], 0)


def test_room_names_and_topics_are_searched_by_key(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat", name="Gardening club")
    call(
        open_server,
        "PUT",
        f"/rooms/{room_id}/state/m.room.topic",
        token=alice,
        body={"topic": "tomatoes", "m.topic": {"m.text": [{"body": "Heirloom tomatoes"}]}},
    )
    send(open_server, alice, room_id, "gardening tips", "1")
    types = [r["result"]["type"] for r in search(open_server, alice, "gardening")["results"]]
    assert sorted(types) == ["m.room.message", "m.room.name"]
    only_names = search(open_server, alice, "gardening", keys=["content.name"])
    assert [r["result"]["type"] for r in only_names["results"]] == ["m.room.name"]
    topics = search(open_server, alice, "heirloom", keys=["content.topic"])
    assert [r["result"]["type"] for r in topics["results"]] == ["m.room.topic"]


def test_filters_narrow_the_results(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    first = create_room(open_server, alice, preset="public_chat")
    second = create_room(open_server, alice, preset="public_chat")
    for room_id in (first, second):
        assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    send(open_server, alice, first, "holiday plans from alice", "a1")
    send(open_server, bob, first, "holiday plans from bob", "b1")
    send(open_server, alice, second, "holiday photos", "a2")
    send_content(
        open_server,
        bob,
        second,
        {"msgtype": "m.image", "body": "holiday.png", "url": "mxc://localhost/abc"},
        "b2",
    )
    send_content(
        open_server,
        bob,
        second,
        {"msgtype": "m.file", "body": "holiday.pdf", "url": "mxc://localhost/def"},
        "b3",
    )
    everything = search(open_server, alice, "holiday", order_by="recent")
    assert len(everything["results"]) == 5
    assert everything["count"] == 5
    in_first = search(open_server, alice, "holiday", filter={"rooms": [first]})
    assert sorted(bodies(in_first)) == ["holiday plans from alice", "holiday plans from bob"]
    not_first = search(open_server, alice, "holiday", filter={"not_rooms": [first]})
    assert len(not_first["results"]) == 3
    by_bob = search(open_server, alice, "holiday", filter={"senders": ["@bob:localhost"]})
    assert sorted(bodies(by_bob)) == ["holiday plans from bob", "holiday.pdf", "holiday.png"]
    not_bob = search(open_server, alice, "holiday", filter={"not_senders": ["@bob:localhost"]})
    assert sorted(bodies(not_bob)) == ["holiday photos", "holiday plans from alice"]
    with_url = search(open_server, alice, "holiday", filter={"contains_url": True})
    assert sorted(bodies(with_url)) == ["holiday.pdf", "holiday.png"]
    without_url = search(open_server, alice, "holiday", filter={"contains_url": False})
    assert len(without_url["results"]) == 3
    images = search(open_server, alice, "holiday", filter={"dev.homeserver.media": ["image"]})
    assert bodies(images) == ["holiday.png"]
    media = search(
        open_server, alice, "holiday", filter={"dev.homeserver.media": ["image", "file"]}
    )
    assert sorted(bodies(media)) == ["holiday.pdf", "holiday.png"]
    no_messages = search(open_server, alice, "holiday", filter={"not_types": ["m.room.*"]})
    assert no_messages["results"] == []
    # Date range: inclusive bounds on origin_server_ts.
    stamps = sorted(r["result"]["origin_server_ts"] for r in everything["results"])
    since = search(open_server, alice, "holiday", filter={"dev.homeserver.since_ts": stamps[2]})
    assert len(since["results"]) == sum(1 for ts in stamps if ts >= stamps[2])
    until = search(open_server, alice, "holiday", filter={"dev.homeserver.until_ts": stamps[1]})
    assert len(until["results"]) == sum(1 for ts in stamps if ts <= stamps[1])


def test_unread_only_finds_messages_after_the_read_receipt(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    read = send(open_server, alice, room_id, "meeting at noon", "1")
    send(open_server, bob, room_id, "meeting sounds good", "2")
    receipt = call(
        open_server, "POST", f"/rooms/{room_id}/receipt/m.read/{read}", token=bob, body={}
    )
    assert receipt.status == 200
    send(open_server, alice, room_id, "meeting moved to one", "3")
    unread = search(open_server, bob, "meeting", filter={"dev.homeserver.unread_only": True})
    # Bob's own message is not unread for him.
    assert bodies(unread) == ["meeting moved to one"]
    assert len(search(open_server, bob, "meeting")["results"]) == 3


def test_recent_order_pages_through_every_result(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    sent = [send(open_server, alice, room_id, f"apple number {i}", f"t{i}") for i in range(12)]
    seen: list[str] = []
    token = None
    for _ in range(5):
        page = search(
            open_server, alice, "apple", next_batch=token, order_by="recent", filter={"limit": 5}
        )
        seen.extend(r["result"]["event_id"] for r in page["results"])
        token = page.get("next_batch")
        if token is None:
            break
    assert seen == sent[::-1]
    refused = search(open_server, alice, "apple", next_batch="bm90IGEgdG9rZW4", status=400)
    assert refused["errcode"] == "M_INVALID_PARAM"
    # A token of one ordering is no token of the other.
    first = search(open_server, alice, "apple", order_by="recent", filter={"limit": 5})
    wrong = search(open_server, alice, "apple", next_batch=first["next_batch"], status=400)
    assert wrong["errcode"] == "M_INVALID_PARAM"


def test_rank_order_puts_the_most_relevant_first(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    send(open_server, alice, room_id, "banana and a long sentence about other fruit entirely", "1")
    send(open_server, alice, room_id, "banana banana banana", "2")
    send(open_server, alice, room_id, "one banana among many words in a rather long line", "3")
    found = search(open_server, alice, "banana")
    assert bodies(found)[0] == "banana banana banana"
    ranks = [r["rank"] for r in found["results"]]
    assert ranks == sorted(ranks, reverse=True)
    pages = []
    token = None
    for _ in range(4):
        page = search(open_server, alice, "banana", next_batch=token, filter={"limit": 1})
        pages.extend(bodies(page))
        token = page.get("next_batch")
        if token is None:
            break
    assert pages == bodies(found)


def test_only_history_the_user_could_see_is_searched(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(
        open_server,
        alice,
        preset="public_chat",
        initial_state=[
            {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}
        ],
    )
    send(open_server, alice, room_id, "secret before bob joined", "1")
    assert search(open_server, bob, "secret")["results"] == []
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    send(open_server, alice, room_id, "secret while bob is here", "2")
    assert bodies(search(open_server, bob, "secret")) == ["secret while bob is here"]
    assert call(open_server, "POST", f"/rooms/{room_id}/leave", token=bob, body={}).status == 200
    send(open_server, alice, room_id, "secret after bob left", "3")
    # A former member searches the room up to their leave.
    assert bodies(search(open_server, bob, "secret")) == ["secret while bob is here"]
    assert len(search(open_server, alice, "secret")["results"]) == 3
    forget = call(open_server, "POST", f"/rooms/{room_id}/forget", token=bob, body={})
    assert forget.status == 200
    assert search(open_server, bob, "secret")["results"] == []


def test_redacted_messages_are_not_found(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    event_id = send(open_server, alice, room_id, "password is hunter2", "1")
    send(open_server, alice, room_id, "password reset done", "2")
    assert len(search(open_server, alice, "password")["results"]) == 2
    redact = call(
        open_server, "PUT", f"/rooms/{room_id}/redact/{event_id}/r1", token=alice, body={}
    )
    assert redact.status == 200
    assert bodies(search(open_server, alice, "password")) == ["password reset done"]
    assert search(open_server, alice, "hunter2")["results"] == []


def test_context_groups_and_state(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    call(
        open_server,
        "PUT",
        "/profile/@alice:localhost/displayname",
        token=alice,
        body={"displayname": "Alice A."},
    )
    room_id = create_room(open_server, alice, preset="public_chat", name="Context room")
    before = send(open_server, alice, room_id, "first words", "1")
    target = send(open_server, alice, room_id, "the zebra crossing", "2")
    after = send(open_server, alice, room_id, "last words", "3")
    found = search(
        open_server,
        alice,
        "zebra",
        event_context={"before_limit": 1, "after_limit": 1, "include_profile": True},
        groupings={"group_by": [{"key": "room_id"}, {"key": "sender"}]},
        include_state=True,
    )
    (result,) = found["results"]
    assert result["result"]["event_id"] == target
    context = result["context"]
    assert [e["event_id"] for e in context["events_before"]] == [before]
    assert [e["event_id"] for e in context["events_after"]] == [after]
    assert context["start"] and context["end"]
    assert context["profile_info"]["@alice:localhost"]["displayname"] == "Alice A."
    assert found["groups"]["room_id"][room_id]["results"] == [target]
    assert found["groups"]["sender"]["@alice:localhost"]["results"] == [target]
    state_types = {event["type"] for event in found["state"][room_id]}
    assert {"m.room.create", "m.room.name", "m.room.member"} <= state_types


def test_invalid_requests_are_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]

    def refused(body: Any) -> str:
        response = call(open_server, "POST", "/search", token=alice, body=body)
        assert response.status == 400, response.body
        errcode: str = response.json()["errcode"]
        return errcode

    assert refused({}) == "M_BAD_JSON"
    assert refused({"search_categories": {"room_events": {}}}) == "M_MISSING_PARAM"
    for criteria in (
        {"search_term": 5},
        {"search_term": "x", "order_by": "oldest"},
        {"search_term": "x", "keys": ["content.url"]},
        {"search_term": "x", "filter": {"senders": "bob"}},
        {"search_term": "x", "filter": {"dev.homeserver.media": ["sticker"]}},
        {"search_term": "x", "filter": {"dev.homeserver.since_ts": "yesterday"}},
        {"search_term": "x", "filter": {"dev.homeserver.unread_only": "yes"}},
        {"search_term": "x", "event_context": {"before_limit": -1}},
        {"search_term": "x", "groupings": {"group_by": [{"key": "type"}]}},
    ):
        assert refused({"search_categories": {"room_events": criteria}}) == "M_BAD_JSON", criteria
    # Categories we do not know are ignored.
    response = call(
        open_server, "POST", "/search", token=alice, body={"search_categories": {"other": {}}}
    )
    assert (response.status, response.json()) == (200, {"search_categories": {}})


def test_search_can_be_disabled(tmp_path: Path, database_config: dict[str, Any]) -> None:
    with running_server(tmp_path, database_config, enable_search=False) as server:
        alice = register(server, "alice")["access_token"]
        refused = search(server, alice, "anything", status=400)
        assert refused["errcode"] == "M_UNKNOWN"


def _token(body: dict[str, Any]) -> str:
    raw = json.dumps(body).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_crafted_tokens_are_refused(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    send(open_server, alice, room_id, "crafted token check", "1")
    for order, token in (
        ("recent", {"o": "recent", "p": -5}),
        ("rank", {"o": "rank", "p": -1, "r": 0.5}),
        ("rank", {"o": "rank", "p": 3}),  # no rank
        ("rank", {"o": "rank", "p": 3, "r": 10**400}),
        ("recent", {"o": "recent", "p": 3, "r": 1.0}),
    ):
        refused = search(
            open_server, alice, "crafted", next_batch=_token(token), order_by=order, status=400
        )
        assert refused["errcode"] == "M_INVALID_PARAM", token


def test_encrypted_rooms_are_not_searched(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    plain = create_room(open_server, alice, preset="public_chat", name="Walrus plain")
    encrypted = create_room(
        open_server,
        alice,
        preset="public_chat",
        name="Walrus encrypted",
        initial_state=[
            {"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
        ],
    )
    later = create_room(open_server, alice, preset="public_chat")
    send(open_server, alice, plain, "walrus in the clear", "1")
    send(open_server, alice, encrypted, "walrus sent in plaintext anyway", "2")
    send(open_server, alice, later, "walrus before encryption", "3")
    assert len(search(open_server, alice, "walrus", filter={"rooms": [later]})["results"]) == 1
    enable = call(
        open_server,
        "PUT",
        f"/rooms/{later}/state/m.room.encryption",
        token=alice,
        body={"algorithm": "m.megolm.v1.aes-sha2"},
    )
    assert enable.status == 200
    found = search(open_server, alice, "walrus")
    # Neither messages nor the room name of an encrypted room, past or present.
    assert {r["result"]["room_id"] for r in found["results"]} == {plain}
    assert found["count"] == 2


def test_ignored_users_are_not_found_or_counted(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    for i in range(3):
        send(open_server, alice, room_id, f"llama from alice {i}", f"a{i}")
        send(open_server, bob, room_id, f"llama from bob {i}", f"b{i}")
    ignore = call(
        open_server,
        "PUT",
        "/user/@bob:localhost/account_data/m.ignored_user_list",
        token=bob,
        body={"ignored_users": {"@alice:localhost": {}}},
    )
    assert ignore.status == 200
    found = search(open_server, bob, "llama", order_by="recent", filter={"limit": 2})
    assert {r["result"]["sender"] for r in found["results"]} == {"@bob:localhost"}
    assert found["count"] == 3


def test_count_spans_pages_and_never_counts_hidden_history(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    room_id = create_room(
        open_server,
        alice,
        preset="public_chat",
        initial_state=[
            {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}
        ],
    )
    for i in range(8):
        send(open_server, alice, room_id, f"otter hidden {i}", f"h{i}")
    assert call(open_server, "POST", f"/join/{room_id}", token=bob, body={}).status == 200
    seen = [send(open_server, alice, room_id, f"otter seen {i}", f"s{i}") for i in range(7)]
    for order in ("recent", "rank"):
        first = search(open_server, bob, "otter", order_by=order, filter={"limit": 3})
        # More than one page: the count is every visible one, none of the hidden.
        assert first["count"] == 7
        found = [r["result"]["event_id"] for r in first["results"]]
        token = first.get("next_batch")
        while token is not None:
            page = search(
                open_server, bob, "otter", order_by=order, next_batch=token, filter={"limit": 3}
            )
            assert page["count"] == 7
            found.extend(r["result"]["event_id"] for r in page["results"])
            token = page.get("next_batch")
        assert sorted(found) == sorted(seen)
    assert search(open_server, alice, "otter", filter={"limit": 3})["count"] == 15


def test_a_groups_token_pages_within_that_group(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    big = create_room(open_server, alice, preset="public_chat")
    small = create_room(open_server, alice, preset="public_chat")
    in_big = [send(open_server, alice, big, "heron " + "word " * i, f"b{i}") for i in range(6)]
    in_small = [send(open_server, alice, small, "heron heron " + "x " * i, f"s{i}") for i in (0, 1)]
    for order in ("rank", "recent"):
        first = search(
            open_server,
            alice,
            "heron",
            order_by=order,
            filter={"limit": 4},
            groupings={"group_by": [{"key": "room_id"}]},
        )
        groups = first["groups"]["room_id"]
        shown = {room: set(group["results"]) for room, group in groups.items()}
        # The small room's two (more relevant, and newer) results are all in the
        # first page: though the page has more, that group has no token.
        assert first["next_batch"]
        assert shown[small] == set(in_small)
        assert "next_batch" not in groups[small]
        token = groups[big]["next_batch"]
        rest: list[str] = []
        while token is not None:
            page = search(
                open_server, alice, "heron", order_by=order, next_batch=token, filter={"limit": 4}
            )
            assert {r["result"]["room_id"] for r in page["results"]} == {big}
            rest.extend(r["result"]["event_id"] for r in page["results"])
            token = page.get("next_batch")
        # The group's pages give the rest of the group: nothing skipped, nothing twice.
        assert sorted(shown[big] | set(rest)) == sorted(in_big)
        assert len(rest) + len(shown[big]) == len(in_big)


def test_event_context_is_capped(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice, preset="public_chat")
    for i in range(24):
        send(open_server, alice, room_id, f"filler {i}", f"f{i}")
    send(open_server, alice, room_id, "the pelican", "target")
    found = search(open_server, alice, "pelican", event_context={"before_limit": 1000})
    assert len(found["results"][0]["context"]["events_before"]) == 20


def test_search_is_rate_limited(tmp_path: Path, database_config: dict[str, Any]) -> None:
    limits = {"rc_search": {"per_second": 0.001, "burst_count": 2}}
    with running_server(tmp_path, database_config, **limits) as server:
        alice = register(server, "alice")["access_token"]
        for _ in range(2):
            search(server, alice, "anything")
        refused = search(server, alice, "anything", status=429)
        assert refused["errcode"] == "M_LIMIT_EXCEEDED"
