"""The filter model: strict validation and matching (wildcards, not_* precedence)."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.filtering.model import (
    DEFAULT_FILTER,
    EventFilter,
    FilterCollection,
    InvalidFilterError,
    RoomEventFilter,
    TypePatterns,
)


def room_event_filter(definition: dict[str, Any]) -> RoomEventFilter:
    return FilterCollection.from_json({"room": {"timeline": definition}}).room.timeline


def event(
    event_type: str = "m.room.message",
    sender: str = "@alice:hs",
    room_id: str = "!room:hs",
    **content: Any,
) -> dict[str, Any]:
    return {"type": event_type, "sender": sender, "room_id": room_id, "content": content}


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["m.room.message"], "m.room.message", True),
        (["m.room.message"], "m.room.messages", False),
        (["m.room.*"], "m.room.member", True),
        (["m.room.*"], "m.room.", True),
        (["m.room.*"], "m.roo", False),
        (["*"], "anything.at.all", True),
        (["*"], "", True),
        (["m.*.member"], "m.room.member", True),
        (["m.*.member"], "m.member", False),
        (["*.member"], "m.room.member", True),
        (["a*b*c"], "abc", True),
        (["a*b*c"], "aXbYc", True),
        (["a*b*c"], "acb", False),
        (["ab*ba"], "aba", False),  # prefix and suffix may not overlap
        (["a**b"], "ab", True),
        # Regular expression characters are literal.
        (["m.room.mess?ge"], "m.room.message", False),
        (["m.(x)*"], "m.(x)y", True),
        (["m.[a-z]*"], "m.b", False),
        ([], "m.room.message", False),
    ],
)
def test_type_wildcards(patterns: list[str], event_type: str, expected: bool) -> None:
    assert TypePatterns(tuple(patterns)).matches(event_type) is expected


def test_many_wildcards_stay_fast() -> None:
    # A backtracking matcher would take hours on this; ours scans the type a few times.
    patterns = TypePatterns(("*a*a*a*a*a*a*a*a*a*a*b",))
    assert not patterns.matches("a" * 10_000)


@pytest.mark.parametrize(
    ("definition", "candidate", "expected"),
    [
        ({}, event(), True),
        ({"types": ["m.room.message"]}, event(), True),
        ({"types": ["m.room.member"]}, event(), False),
        ({"types": []}, event(), False),
        ({"not_types": ["m.room.*"]}, event(), False),
        # not_types wins over types.
        ({"types": ["m.room.message"], "not_types": ["m.room.message"]}, event(), False),
        ({"types": ["*"], "not_types": ["m.room.member"]}, event(), True),
        ({"senders": ["@alice:hs"]}, event(), True),
        ({"senders": ["@bob:hs"]}, event(), False),
        ({"not_senders": ["@alice:hs"]}, event(), False),
        ({"senders": ["@alice:hs"], "not_senders": ["@alice:hs"]}, event(), False),
        ({"rooms": ["!room:hs"]}, event(), True),
        ({"rooms": ["!other:hs"]}, event(), False),
        ({"not_rooms": ["!room:hs"]}, event(), False),
        ({"rooms": ["!room:hs"], "not_rooms": ["!room:hs"]}, event(), False),
        ({"contains_url": True}, event(url="mxc://hs/a"), True),
        ({"contains_url": True}, event(), False),
        ({"contains_url": True}, event(url=5), False),  # only a string url counts
        ({"contains_url": False}, event(url="mxc://hs/a"), False),
        ({"contains_url": False}, event(), True),
        # An event without a sender never matches a senders list.
        ({"senders": ["@alice:hs"]}, {"type": "m.typing", "content": {}}, False),
        ({"not_senders": ["@alice:hs"]}, {"type": "m.typing", "content": {}}, True),
    ],
)
def test_room_event_filter_matching(
    definition: dict[str, Any], candidate: dict[str, Any], expected: bool
) -> None:
    assert room_event_filter(definition).matches(candidate) is expected


def test_room_id_can_be_given_for_events_without_one() -> None:
    only_room = room_event_filter({"rooms": ["!room:hs"]})
    receipt = {"type": "m.receipt", "content": {}}
    assert not only_room.matches(receipt)
    assert only_room.matches(receipt, room_id="!room:hs")
    assert only_room.filter([receipt, receipt], room_id="!room:hs") == [receipt, receipt]


def test_filter_keeps_order_and_works_on_any_item() -> None:
    messages_only = room_event_filter({"types": ["m.room.message"]})
    events = [event("m.room.message", body="1"), event("m.room.member"), event(body="2")]
    assert messages_only.filter(events) == [events[0], events[2]]
    items = [("x", events[1]), ("y", events[2])]
    assert messages_only.filter_by(items, lambda item: item[1]) == [("y", events[2])]


def test_top_level_event_filters_ignore_rooms() -> None:
    collection = FilterCollection.from_json(
        {"account_data": {"types": ["m.*"], "not_types": ["m.push_rules"]}}
    )
    assert isinstance(collection.account_data, EventFilter)
    assert collection.account_data.matches({"type": "m.direct", "content": {}})
    assert not collection.account_data.matches({"type": "m.push_rules", "content": {}})
    assert not collection.account_data.matches({"type": "org.example", "content": {}})


def test_a_full_filter_is_parsed() -> None:
    collection = FilterCollection.from_json(
        {
            "room": {
                "rooms": ["!a:hs", "!b:hs"],
                "not_rooms": ["!b:hs"],
                "include_leave": True,
                "state": {"lazy_load_members": True, "include_redundant_members": True},
                "timeline": {"limit": 10, "unread_thread_notifications": True},
                "ephemeral": {"not_types": ["*"]},
                "account_data": {"types": ["m.tag"]},
            },
            "presence": {"not_senders": ["@spam:hs"]},
            "event_fields": ["type", r"content.m\.relates_to"],
            "event_format": "federation",
            "org.example.unknown": "ignored",
        }
    )
    assert collection.room_allowed("!a:hs")
    assert not collection.room_allowed("!b:hs")  # not_rooms wins
    assert not collection.room_allowed("!c:hs")
    assert collection.include_leave
    assert collection.room.state.lazy_load_members
    assert collection.room.state.include_redundant_members
    assert collection.room.timeline.limit == 10
    assert collection.room.timeline.unread_thread_notifications
    assert collection.room.ephemeral.excludes_everything
    assert not collection.room.timeline.excludes_everything
    assert collection.presence.not_senders == frozenset({"@spam:hs"})
    assert collection.event_fields == (("type",), ("content", "m.relates_to"))
    assert collection.event_format == "federation"
    assert collection.apply_event_fields(event(body="x")) == {"type": "m.room.message"}


def test_the_default_filter_lets_everything_through() -> None:
    assert FilterCollection.from_json({}) == DEFAULT_FILTER
    assert DEFAULT_FILTER.room_allowed("!any:hs")
    assert DEFAULT_FILTER.room.timeline.matches(event())
    assert DEFAULT_FILTER.room.timeline.limit is None
    assert not DEFAULT_FILTER.include_leave
    assert DEFAULT_FILTER.event_format == "client"
    original = event()
    assert DEFAULT_FILTER.apply_event_fields(original) is original


def test_limits() -> None:
    assert room_event_filter({"limit": 5}).effective_limit(10, 100) == 5
    assert room_event_filter({}).effective_limit(10, 100) == 10
    assert room_event_filter({"limit": 10**30}).effective_limit(10, 100) == 100
    assert room_event_filter({"limit": 20.0}).limit == 20
    # Accepted as Synapse does: no timeline events at all.
    assert room_event_filter({"limit": 0}).effective_limit(10, 100) == 0


@pytest.mark.parametrize(
    "definition",
    [
        [],
        "x",
        {"room": []},
        {"room": None},
        {"room": {"timeline": "x"}},
        {"room": {"timeline": None}},
        {"room": {"timeline": {"limit": -1}}},
        {"room": {"timeline": {"limit": "10"}}},
        {"room": {"timeline": {"limit": 1.5}}},
        {"room": {"timeline": {"limit": True}}},
        {"room": {"timeline": {"limit": None}}},
        {"room": {"state": {"types": "m.room.member"}}},
        {"room": {"state": {"types": [1]}}},
        {"room": {"state": {"not_types": None}}},
        {"room": {"state": {"senders": ["alice"]}}},
        {"room": {"state": {"not_senders": ["@alice"]}}},
        {"room": {"state": {"rooms": ["#alias:hs"]}}},
        {"room": {"state": {"not_rooms": ["room"]}}},
        {"room": {"state": {"contains_url": "yes"}}},
        {"room": {"state": {"lazy_load_members": 1}}},
        {"room": {"state": {"include_redundant_members": "true"}}},
        {"room": {"ephemeral": {"unread_thread_notifications": None}}},
        {"room": {"rooms": "!a:hs"}},
        {"room": {"not_rooms": ["@alice:hs"]}},
        {"room": {"include_leave": "false"}},
        {"presence": []},
        {"presence": {"senders": [None]}},
        {"account_data": {"limit": -1}},
        {"event_fields": "type"},
        {"event_fields": [1]},
        {"event_format": "raw"},
        {"event_format": None},
    ],
)
def test_invalid_filters_are_refused(definition: object) -> None:
    with pytest.raises(InvalidFilterError):
        FilterCollection.from_json(definition)


def test_the_error_names_the_property() -> None:
    with pytest.raises(InvalidFilterError, match=r"room\.timeline\.limit"):
        FilterCollection.from_json({"room": {"timeline": {"limit": -5}}})
