"""A room's directory summary from its state: shapes the spec gives, defaults otherwise."""

from __future__ import annotations

from typing import Any

from homeserver.directory.summary import search_text, summarise_room, topic_of
from homeserver.events.event import Event, StateKey
from homeserver.events.room_versions import get_room_version

V10 = get_room_version("10")


def state(**contents: dict[str, Any]) -> dict[StateKey, Event]:
    """``name_of_type=content`` for each state event, e.g. ``join_rules={...}``."""
    result = {}
    for index, (short_type, content) in enumerate(contents.items()):
        event_type = f"m.room.{short_type}"
        pdu = {"type": event_type, "state_key": "", "content": content, "sender": "@a:hs"}
        result[(event_type, "")] = Event(pdu, V10, f"$e{index}")
    return result


def test_an_empty_room_is_invite_only_and_unlisted() -> None:
    summary = summarise_room("!r:hs", {}, 0)
    assert (summary.join_rule, summary.history_visibility, summary.guest_access) == (
        "invite",
        "shared",
        "forbidden",
    )
    assert (summary.name, summary.topic, summary.room_type) == (None, None, None)
    assert summary.federatable and not summary.listed and summary.search_text == ""


def test_public_rooms_with_members_are_listed() -> None:
    public = state(join_rules={"join_rule": "public"})
    assert summarise_room("!r:hs", public, 1).listed
    assert not summarise_room("!r:hs", public, 0).listed  # nobody left to let you in
    restricted = state(join_rules={"join_rule": "restricted"})
    assert not summarise_room("!r:hs", restricted, 3).listed
    readable = state(
        join_rules={"join_rule": "invite"},
        history_visibility={"history_visibility": "world_readable"},
    )
    assert summarise_room("!r:hs", readable, 3).listed


def test_malformed_values_are_treated_as_absent() -> None:
    summary = summarise_room(
        "!r:hs",
        state(
            create={"type": 5, "m.federate": False},
            name={"name": ["not", "text"]},
            avatar={"url": "https://example.org/a.png"},
            canonical_alias={"alias": "not an alias"},
            history_visibility={"history_visibility": "everyone"},
            guest_access={"guest_access": None},
            join_rules={"join_rule": 1},
        ),
        2,
    )
    assert (summary.name, summary.avatar_url, summary.canonical_alias) == (None, None, None)
    assert (summary.room_type, summary.federatable) == (None, False)
    assert (summary.history_visibility, summary.guest_access, summary.join_rule) == (
        "shared",
        "forbidden",
        "invite",
    )


def test_the_topic_falls_back_to_the_plain_text_content_block() -> None:
    assert topic_of({"topic": "plain"}) == "plain"
    assert topic_of({"topic": ""}) is None  # an empty topic unsets it
    block = {"m.text": [{"mimetype": "text/html", "body": "<b>x</b>"}, {"body": "x"}]}
    assert topic_of({"m.topic": block}) == "x"
    assert topic_of({"m.topic": {"m.text": [{"mimetype": "text/html", "body": "y"}]}}) is None
    assert topic_of({"m.topic": {"m.text": ["junk", {"body": 3}]}}) is None
    assert topic_of({"m.topic": "junk"}) is None


def test_search_text_is_casefolded_fields_one_per_line() -> None:
    assert search_text("Straße", None, "#A:hs") == "strasse\n#a:hs"
