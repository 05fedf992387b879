"""The default push rules: which events notify a user and which highlight."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.unread.push_rules import HIGHLIGHT, NOTHING, NOTIFY, Actions, evaluate

ME = "@me:example.org"


def text(body: str = "hello", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, **(extra or {})}


CASES: list[tuple[str, str, str | None, dict[str, Any], Actions]] = [
    ("message", "m.room.message", None, text(), NOTIFY),
    ("message without content", "m.room.message", None, {}, NOTIFY),
    ("encrypted", "m.room.encrypted", None, {"algorithm": "x"}, NOTIFY),
    ("call invite", "m.call.invite", None, {}, NOTIFY),
    ("type matching ignores case", "M.Room.Message", None, text(), NOTIFY),
    ("notice", "m.room.message", None, {"msgtype": "m.notice", "body": "bot"}, NOTHING),
    (
        "notice mentioning me",
        "m.room.message",
        None,
        {"msgtype": "m.notice", "m.mentions": {"user_ids": [ME]}},
        NOTHING,
    ),
    ("other member event", "m.room.member", "@x:y", {"membership": "join"}, NOTHING),
    ("my invite", "m.room.member", ME, {"membership": "invite"}, NOTIFY),
    ("someone else's invite", "m.room.member", "@x:y", {"membership": "invite"}, NOTHING),
    (
        "user mention",
        "m.room.message",
        None,
        text(extra={"m.mentions": {"user_ids": [ME]}}),
        HIGHLIGHT,
    ),
    (
        "mention of someone else",
        "m.room.message",
        None,
        text(extra={"m.mentions": {"user_ids": ["@x:y"]}}),
        NOTIFY,
    ),
    (
        "mention in a custom event",
        "org.example.ping",
        None,
        {"m.mentions": {"user_ids": [ME]}},
        HIGHLIGHT,
    ),
    (
        "mentions not a list",
        "m.room.message",
        None,
        text(extra={"m.mentions": {"user_ids": ME}}),
        NOTIFY,
    ),
    (
        "legacy body mention no longer highlights",
        "m.room.message",
        None,
        text(f"hey {ME} me"),
        NOTIFY,
    ),
    (
        "room mention without permission",
        "m.room.message",
        None,
        text(extra={"m.mentions": {"room": True}}),
        NOTIFY,
    ),
    ("tombstone", "m.room.tombstone", "", {"body": "moved"}, HIGHLIGHT),
    ("tombstone with a state key", "m.room.tombstone", "x", {}, NOTHING),
    ("reaction", "m.reaction", None, {"m.relates_to": {"rel_type": "m.annotation"}}, NOTHING),
    ("server acl", "m.room.server_acl", "", {"allow": ["*"]}, NOTHING),
    (
        "edit",
        "m.room.message",
        None,
        text("* fixed", {"m.relates_to": {"rel_type": "m.replace", "event_id": "$a"}}),
        NOTHING,
    ),
    (
        "edit that newly mentions me",
        "m.room.message",
        None,
        text(
            extra={
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$a"},
                "m.mentions": {"user_ids": [ME]},
            }
        ),
        HIGHLIGHT,
    ),
    ("topic change", "m.room.topic", "", {"topic": "t"}, NOTHING),
    ("sticker", "m.sticker", None, {"body": "s"}, NOTHING),
]


@pytest.mark.parametrize(
    ("event_type", "state_key", "content", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_default_rules(
    event_type: str, state_key: str | None, content: dict[str, Any], expected: Actions
) -> None:
    assert evaluate(event_type, state_key, content, ME) == expected


def test_room_mentions_highlight_only_from_senders_with_the_power() -> None:
    content = text(extra={"m.mentions": {"room": True}})
    assert evaluate("m.room.message", None, content, ME, sender_may_notify_room=True) == HIGHLIGHT
    assert evaluate("m.room.message", None, content, ME, sender_may_notify_room=False) == NOTIFY
    # Only exactly `true` counts.
    truthy = text(extra={"m.mentions": {"room": 1}})
    assert evaluate("m.room.message", None, truthy, ME, sender_may_notify_room=True) == NOTIFY
