"""Applying push rules to events: the spec's default rules, user rules and their
priorities, and what actions mean."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from homeserver.push.evaluator import (
    NOTHING,
    Actions,
    PushRuleEvaluator,
    actions_of,
)
from homeserver.push.rules import (
    Customisations,
    add_or_replace,
    resolve,
    set_actions,
    set_enabled,
)
from tests.push.evaluator_support import (
    BOB,
    HIGHLIGHT,
    HIGHLIGHT_SOUND,
    ME,
    NOTIFY,
    NOTIFY_SOUND,
    OTHER_ROOM,
    RING,
    ROOM,
    context,
    evaluate_defaults,
    event,
    text,
)

# --- the default rules ------------------------------------------------------------

CASES: list[tuple[str, dict[str, Any], dict[str, Any], Actions]] = [
    ("group message", event(), {}, NOTIFY),
    ("one-to-one message", event(), {"room_member_count": 2}, NOTIFY_SOUND),
    ("three members is a group", event(), {"room_member_count": 3}, NOTIFY),
    ("message without content", event(content={}), {}, NOTIFY),
    ("type matching ignores case", event("M.Room.Message"), {}, NOTIFY),
    ("group encrypted", event("m.room.encrypted", {"algorithm": "x"}), {}, NOTIFY),
    (
        "one-to-one encrypted",
        event("m.room.encrypted", {"algorithm": "x"}),
        {"room_member_count": 2},
        NOTIFY_SOUND,
    ),
    ("call invite", event("m.call.invite", {"call_id": "c"}), {}, RING),
    ("notice", event(content={"msgtype": "m.notice", "body": "bot"}), {}, NOTHING),
    (
        "notice in one-to-one",
        event(content={"msgtype": "m.notice"}),
        {"room_member_count": 2},
        NOTHING,
    ),
    (
        "notice mentioning me",
        event(content={"msgtype": "m.notice", "m.mentions": {"user_ids": [ME]}}),
        {},
        NOTHING,
    ),
    ("msgtype must match whole", event(content=text(msgtype="m.notice2")), {}, NOTIFY),
    ("my invite", event("m.room.member", {"membership": "invite"}, state_key=ME), {}, NOTIFY_SOUND),
    (
        "someone else's invite",
        event("m.room.member", {"membership": "invite"}, state_key="@x:y"),
        {},
        NOTHING,
    ),
    ("a join", event("m.room.member", {"membership": "join"}, state_key=BOB), {}, NOTHING),
    (
        "my own join by someone",
        event("m.room.member", {"membership": "join"}, state_key=ME),
        {},
        NOTHING,
    ),
    (
        "user mention",
        event(content=text(**{"m.mentions": {"user_ids": [ME]}})),
        {},
        HIGHLIGHT_SOUND,
    ),
    (
        "mention among others",
        event(content=text(**{"m.mentions": {"user_ids": ["@x:y", ME]}})),
        {},
        HIGHLIGHT_SOUND,
    ),
    (
        "mention of someone else",
        event(content=text(**{"m.mentions": {"user_ids": ["@x:y"]}})),
        {},
        NOTIFY,
    ),
    (
        "mention needs exact ID",
        event(content=text(**{"m.mentions": {"user_ids": [ME.upper()]}})),
        {},
        NOTIFY,
    ),
    ("mentions not a list", event(content=text(**{"m.mentions": {"user_ids": ME}})), {}, NOTIFY),
    (
        "mention in a custom event type",
        event("org.example.ping", {"m.mentions": {"user_ids": [ME]}}),
        {},
        HIGHLIGHT_SOUND,
    ),
    (
        "nested key is not the dotted key",
        event(content=text(m={"mentions": {"user_ids": [ME]}})),
        {},
        NOTIFY,
    ),
    (
        "legacy body mention does not highlight",
        event(content=text(f"hey {ME} and Me Myself")),
        {},
        NOTIFY,
    ),
    (
        "room mention without power",
        event(content=text(**{"m.mentions": {"room": True}})),
        {"sender_power_level": 49},
        NOTIFY,
    ),
    (
        "room mention with power",
        event(content=text(**{"m.mentions": {"room": True}})),
        {"sender_power_level": 50},
        HIGHLIGHT,
    ),
    (
        "room mention with a lowered level",
        event(content=text(**{"m.mentions": {"room": True}})),
        {"sender_power_level": 0, "notification_levels": {"room": 0}},
        HIGHLIGHT,
    ),
    (
        "room mention with a raised level",
        event(content=text(**{"m.mentions": {"room": True}})),
        {"sender_power_level": 99, "notification_levels": {"room": 100}},
        NOTIFY,
    ),
    (
        "room mention must be exactly true",
        event(content=text(**{"m.mentions": {"room": 1}})),
        {"sender_power_level": 100},
        NOTIFY,
    ),
    ("tombstone", event("m.room.tombstone", {"body": "moved"}, state_key=""), {}, HIGHLIGHT),
    ("tombstone with a state key", event("m.room.tombstone", {}, state_key="x"), {}, NOTHING),
    ("tombstone without a state key", event("m.room.tombstone", {}), {}, NOTHING),
    (
        "reaction",
        event("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "key": "x"}}),
        {"room_member_count": 2},
        NOTHING,
    ),
    ("server acl", event("m.room.server_acl", {"allow": ["*"]}, state_key=""), {}, NOTHING),
    (
        "edit",
        event(
            content=text("* fixed", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$a"}})
        ),
        {"room_member_count": 2},
        NOTHING,
    ),
    (
        "reply is not an edit",
        event(content=text("re", **{"m.relates_to": {"m.in_reply_to": {"event_id": "$a"}}})),
        {},
        NOTIFY,
    ),
    (
        "edit that newly mentions me",
        event(
            content=text(
                **{
                    "m.relates_to": {"rel_type": "m.replace", "event_id": "$a"},
                    "m.mentions": {"user_ids": [ME]},
                }
            )
        ),
        {},
        HIGHLIGHT_SOUND,
    ),
    ("topic change", event("m.room.topic", {"topic": "t"}, state_key=""), {}, NOTHING),
    ("sticker", event("m.sticker", {"body": "s"}), {}, NOTHING),
    (
        "my own message",
        event(content=text(**{"m.mentions": {"user_ids": [ME]}}), sender=ME),
        {},
        NOTHING,
    ),
]


@pytest.mark.parametrize(
    ("ev", "changes", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_default_rules(ev: dict[str, Any], changes: dict[str, Any], expected: Actions) -> None:
    assert evaluate_defaults(ev, **changes) == expected


def test_client_format_events_without_room_id_work() -> None:
    ev = event()
    del ev["room_id"]
    assert evaluate_defaults(ev) == NOTIFY


# --- user rules and priorities --------------------------------------------------------


def evaluator(*edits: Callable[[Customisations], Customisations]) -> PushRuleEvaluator:
    changes = Customisations()
    for edit in edits:
        changes = edit(changes)
    return PushRuleEvaluator(resolve(ME, changes))


def put(
    kind: str, rule_id: str, body: dict[str, Any], **where: str | None
) -> Callable[[Customisations], Customisations]:
    return lambda c: add_or_replace(
        c, ME, kind, rule_id, body, before=where.get("before"), after=where.get("after")
    )


def enable(kind: str, rule_id: str, enabled: bool) -> Callable[[Customisations], Customisations]:
    return lambda c: set_enabled(c, ME, kind, rule_id, enabled)


def actions(kind: str, rule_id: str, value: Any) -> Callable[[Customisations], Customisations]:
    return lambda c: set_actions(c, ME, kind, rule_id, value)


def mute_room_override(room_id: str) -> Callable[[Customisations], Customisations]:
    """How clients mute a room: an override rule on ``room_id``."""
    condition = {"kind": "event_match", "key": "room_id", "pattern": room_id}
    return put("override", room_id, {"actions": ["dont_notify"], "conditions": [condition]})


MENTION = event(content=text(**{"m.mentions": {"user_ids": [ME]}}))


def test_a_room_muting_override_beats_the_default_overrides() -> None:
    rules = evaluator(mute_room_override(ROOM))
    assert rules.evaluate(MENTION, context()) == NOTHING
    assert rules.evaluate(event("m.room.tombstone", {}, state_key=""), context()) == NOTHING
    # Other rooms are unaffected, whichever room is evaluated first.
    assert rules.evaluate(MENTION, context(room_id=OTHER_ROOM)) == HIGHLIGHT_SOUND
    assert rules.evaluate(MENTION, context()) == NOTHING


def test_room_pinned_rules_match_room_ids_case_insensitively() -> None:
    rules = evaluator(mute_room_override(ROOM.upper()))
    assert rules.evaluate(event(), context()) == NOTHING
    assert rules.evaluate(event(), context(room_id=OTHER_ROOM)) == NOTIFY


def test_many_muted_rooms() -> None:
    edits = [mute_room_override(f"!r{i}:example.org") for i in range(300)]
    rules = evaluator(*edits)
    for i in (0, 150, 299):
        assert rules.evaluate(event(), context(room_id=f"!r{i}:example.org")) == NOTHING
    assert rules.evaluate(event(), context()) == NOTIFY


def test_a_room_rule_mutes_a_room_but_not_mentions() -> None:
    rules = evaluator(put("room", ROOM, {"actions": []}))
    assert rules.evaluate(event(), context()) == NOTHING
    assert rules.evaluate(event(), context(room_member_count=2)) == NOTHING
    assert rules.evaluate(event(), context(room_id=OTHER_ROOM)) == NOTIFY
    assert rules.evaluate(MENTION, context()) == HIGHLIGHT_SOUND  # overrides come first


def test_a_room_rule_can_make_a_room_louder() -> None:
    rules = evaluator(
        put("room", ROOM, {"actions": ["notify", {"set_tweak": "sound", "value": "x"}]})
    )
    assert rules.evaluate(event("m.sticker", {}), context()) == Actions(True, False, "x")


def test_a_sender_rule() -> None:
    rules = evaluator(put("sender", "@spam:b.test", {"actions": ["dont_notify"]}))
    assert rules.evaluate(event(sender="@spam:b.test"), context()) == NOTHING
    assert rules.evaluate(event(sender="@Spam:b.test"), context()) == NOTIFY
    assert rules.evaluate(event(), context()) == NOTIFY


def test_a_content_rule_on_a_keyword() -> None:
    rules = evaluator(
        put(
            "content",
            "cake",
            {"pattern": "cake", "actions": ["notify", {"set_tweak": "highlight"}]},
        )
    )
    for body in ("cake", "I love CAKE!", "cake-time", "(cake)", "a_b cake"):
        assert rules.evaluate(event(content=text(body)), context()) == HIGHLIGHT, body
    for body in ("cakes", "pancake", "cake_", "c a k e"):
        assert rules.evaluate(event(content=text(body)), context()) == NOTIFY, body
    # Content rules look at any event's content.body, not only messages.
    assert rules.evaluate(event("org.example.x", {"body": "cake"}), context()) == HIGHLIGHT
    # ...and never at other properties.
    assert rules.evaluate(event(content={"msgtype": "cake", "body": 1}), context()) == NOTIFY


def test_the_order_of_kinds() -> None:
    """override > content > room > sender > underride."""
    everything = [
        put("underride", "u", {"actions": ["notify", {"set_tweak": "sound", "value": "u"}]}),
        put("sender", BOB, {"actions": ["notify", {"set_tweak": "sound", "value": "s"}]}),
        put("room", ROOM, {"actions": ["notify", {"set_tweak": "sound", "value": "r"}]}),
        put(
            "content",
            "c",
            {"pattern": "x", "actions": ["notify", {"set_tweak": "sound", "value": "c"}]},
        ),
        put(
            "override",
            "o",
            {
                "actions": ["notify", {"set_tweak": "sound", "value": "o"}],
                "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "x"}],
            },
        ),
    ]
    body_x = event("org.example.e", {"body": "x"})
    sounds = []
    for count in range(len(everything), 0, -1):
        rules = evaluator(*everything[:count])
        sounds.append(rules.evaluate(body_x, context()).sound)
    assert sounds == ["o", "c", "r", "s", "u"]


def test_user_underrides_come_before_default_underrides() -> None:
    rules = evaluator(put("underride", "quiet", {"actions": []}))
    assert rules.evaluate(event(), context(room_member_count=2)) == NOTHING
    assert rules.evaluate(MENTION, context()) == HIGHLIGHT_SOUND


def test_rules_within_a_kind_follow_their_order() -> None:
    tea = put(
        "content",
        "tea",
        {"pattern": "tea", "actions": ["notify", {"set_tweak": "sound", "value": "tea"}]},
    )
    time = put(
        "content",
        "time",
        {"pattern": "time", "actions": ["notify", {"set_tweak": "sound", "value": "time"}]},
    )
    sentence = event(content=text("It's time for tea"))
    assert evaluator(tea, time).evaluate(sentence, context()).sound == "time"  # newest on top
    assert evaluator(time, tea).evaluate(sentence, context()).sound == "tea"
    moved = put(
        "content",
        "time",
        {"pattern": "time", "actions": ["notify", {"set_tweak": "sound", "value": "time"}]},
        after="tea",
    )
    assert evaluator(tea, time, moved).evaluate(sentence, context()).sound == "tea"


def test_the_master_rule_silences_everything() -> None:
    rules = evaluator(
        enable("override", ".m.rule.master", True),
        put("override", "loud", {"actions": ["notify", {"set_tweak": "highlight"}]}),
    )
    for ev in (
        event(),
        MENTION,
        event("m.room.tombstone", {}, state_key=""),
        event("m.call.invite", {}),
    ):
        assert rules.evaluate(ev, context(room_member_count=2)) == NOTHING


def test_disabled_rules_are_skipped() -> None:
    rules = evaluator(
        put("room", ROOM, {"actions": []}),
        enable("room", ROOM, False),
        enable("override", ".m.rule.suppress_notices", False),
        enable("underride", ".m.rule.room_one_to_one", False),
    )
    assert rules.evaluate(event(), context()) == NOTIFY
    assert rules.evaluate(event(content={"msgtype": "m.notice"}), context()) == NOTIFY
    assert rules.evaluate(event(), context(room_member_count=2)) == NOTIFY


def test_changed_default_actions_apply() -> None:
    rules = evaluator(
        actions("underride", ".m.rule.message", ["notify", {"set_tweak": "highlight"}]),
        actions("override", ".m.rule.is_user_mention", []),
    )
    assert rules.evaluate(event(), context()) == HIGHLIGHT
    assert rules.evaluate(MENTION, context()) == NOTHING


def test_rules_with_unknown_conditions_never_match() -> None:
    rules = evaluator(
        put(
            "override",
            "future",
            {"actions": [], "conditions": [{"kind": "org.example.always"}]},
        )
    )
    assert rules.evaluate(event(), context()) == NOTIFY


def test_an_override_without_conditions_matches_everything() -> None:
    rules = evaluator(
        put("override", "all", {"actions": ["notify", {"set_tweak": "sound", "value": "a"}]})
    )
    assert rules.evaluate(event("anything", {}), context()).sound == "a"


# --- actions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], NOTHING),
        (["dont_notify"], NOTHING),
        (["coalesce"], NOTHING),
        (["notify", "dont_notify"], NOTIFY),
        (["notify"], NOTIFY),
        (["notify", {"set_tweak": "highlight"}], HIGHLIGHT),
        (["notify", {"set_tweak": "highlight", "value": True}], HIGHLIGHT),
        (["notify", {"set_tweak": "highlight", "value": False}], NOTIFY),
        (["notify", {"set_tweak": "highlight", "value": 1}], NOTIFY),
        ([{"set_tweak": "highlight"}], NOTHING),  # highlight applies to notifications
        ([{"set_tweak": "sound", "value": "x"}], NOTHING),
        (["notify", {"set_tweak": "sound", "value": "bing"}], Actions(True, False, "bing")),
        (["notify", {"set_tweak": "sound"}], NOTIFY),
        (
            ["notify", {"set_tweak": "highlight"}, {"set_tweak": "highlight", "value": False}],
            NOTIFY,
        ),
        (["notify", {"set_tweak": "org.example"}, 7, None, ["x"]], NOTIFY),
    ],
)
def test_actions_of(raw: list[Any], expected: Actions) -> None:
    assert actions_of(raw) == expected
