"""Push rule conditions one by one, glob semantics, and robustness on odd events
and rules."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeserver.push.evaluator import (
    NOTHING,
    Actions,
    PushRuleEvaluator,
    glob_matcher,
    split_path,
)
from homeserver.push.rules import (
    Customisations,
    PushRule,
    Ruleset,
    resolve,
)
from tests.push.evaluator_support import (
    BOB,
    DEFAULTS,
    ME,
    OTHER_ROOM,
    ROOM,
    context,
    event,
    text,
)

# --- conditions ------------------------------------------------------------------------


def single(condition: dict[str, Any]) -> PushRuleEvaluator:
    """An evaluator whose only rule notifies when ``condition`` holds (built directly,
    so conditions the API would refuse can be tried too)."""
    rule = PushRule("r", "override", False, True, ("notify",), (condition,))
    return PushRuleEvaluator(Ruleset({"override": (rule,)}))


def holds(condition: dict[str, Any], ev: dict[str, Any], **changes: Any) -> bool:
    return single(condition).evaluate(ev, context(**changes)).notify


def topic(value: Any) -> dict[str, Any]:
    return event("m.room.topic", {"topic": value}, state_key="")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Lunch plans", True),
        ("LUNCH", True),
        ("lunch", True),
        (" lunch", False),
        ("lunc", False),
        (None, False),
        (7, False),
        (["lunch"], False),
    ],
)
def test_event_match_spec_example(value: Any, expected: bool) -> None:
    condition = {"kind": "event_match", "key": "content.topic", "pattern": "lunc?*"}
    assert holds(condition, topic(value)) is expected


def test_event_match_needs_a_string_even_for_star() -> None:
    condition = {"kind": "event_match", "key": "content.topic", "pattern": "*"}
    assert holds(condition, topic(""))
    assert not holds(condition, event("m.room.topic", {}, state_key=""))
    assert not holds(condition, topic(None))
    assert not holds(condition, topic({"a": "b"}))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("An example event.", True),
        ("exple", True),
        ("An exciting triple-whammy", True),
        ("EXAMPLE", True),
        ("examples", False),
        ("anexample", False),
        ("ex ple", True),
        ("ex", False),
        ("", False),
    ],
)
def test_content_body_matches_words_spec_example(body: str, expected: bool) -> None:
    condition = {"kind": "event_match", "key": "content.body", "pattern": "ex*ple"}
    assert holds(condition, event(content=text(body))) is expected


def test_the_word_boundary_is_only_for_content_body() -> None:
    condition = {"kind": "event_match", "key": "content.topic", "pattern": "ex*ple"}
    assert not holds(condition, topic("An example event."))
    assert holds(condition, topic("example"))


def test_state_key_empty_pattern_matches_only_empty() -> None:
    condition = {"kind": "event_match", "key": "state_key", "pattern": ""}
    assert holds(condition, event("x", {}, state_key=""))
    assert not holds(condition, event("x", {}, state_key=" "))
    assert not holds(condition, event("x", {}))


def test_dotted_keys_with_escapes() -> None:
    condition = {
        "kind": "event_match",
        "key": "content.m\\.relates_to.rel_type",
        "pattern": "m.thread",
    }
    assert holds(condition, event(content={"m.relates_to": {"rel_type": "m.thread"}}))
    assert not holds(condition, event(content={"m": {"relates_to": {"rel_type": "m.thread"}}}))


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("content.body", ("content", "body")),
        ("content.m\\.relates_to", ("content", "m.relates_to")),
        ("content.m\\\\foo", ("content", "m\\foo")),
        ("content.m\\xfoo", ("content", "m\\xfoo")),
        ("a\\", ("a\\",)),
        ("a..b", ("a", "", "b")),
        ("", ("",)),
        ("\\\\.", ("\\", "")),
    ],
)
def test_split_path(key: str, path: tuple[str, ...]) -> None:
    assert split_path(key) == path


def federate(value: Any) -> dict[str, Any]:
    return event("m.room.create", {"m.federate": value}, state_key="")


@pytest.mark.parametrize(
    ("wanted", "found", "expected"),
    [
        (True, True, True),
        (True, "true", False),
        (True, 1, False),
        (1, True, False),
        (1, 1, True),
        (1, 1.0, False),
        (0, False, False),
        (False, False, True),
        (None, None, True),
        (None, False, False),
        ("x", "x", True),
        ("x", "X", False),
        ("x", ["x"], False),
        (-(2**53) + 1, -(2**53) + 1, True),
    ],
)
def test_event_property_is_is_exact(wanted: Any, found: Any, expected: bool) -> None:
    condition = {"kind": "event_property_is", "key": "content.m\\.federate", "value": wanted}
    assert holds(condition, federate(found)) is expected


def test_event_property_is_absent_property() -> None:
    condition = {"kind": "event_property_is", "key": "content.m\\.federate", "value": None}
    assert not holds(condition, event("m.room.create", {}, state_key=""))


def aliases(value: Any) -> dict[str, Any]:
    return event("m.room.canonical_alias", {"alt_aliases": value}, state_key="")


@pytest.mark.parametrize(
    ("wanted", "found", "expected"),
    [
        ("#myroom:example.com", ["#somewhere:example.org", "#myroom:example.com"], True),
        (":example.com", ["#somewhere:example.org", "#myroom:example.com"], False),
        ("#myroom:example.com", "#myroom:example.com", False),
        ("#myroom:example.com", {"#myroom:example.com": 1}, False),
        ("#myroom:example.com", [], False),
        (1, [True, 1.0, "1", 1], True),
        (1, [True, 1.0, "1"], False),
        (True, [1, "true"], False),
        (True, [{"x": 1}, True], True),
        (None, [False, 0, ""], False),
        (None, [[None], None], True),
    ],
)
def test_event_property_contains(wanted: Any, found: Any, expected: bool) -> None:
    condition = {"kind": "event_property_contains", "key": "content.alt_aliases", "value": wanted}
    assert holds(condition, aliases(found)) is expected


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        ("Alice", "hi alice!", True),
        ("Alice", "ALICE", True),
        ("Alice", "alice's cat", True),
        ("Alice", "alicent", False),
        ("Alice", "malice", False),
        ("Alice", "alice_", False),
        ("Dr. Who", "hello dr. who?", True),
        ("a.b*", "see a.b* now", True),
        ("a.b*", "see axbb now", False),
        ("[bot]", "hey [bot] there", True),
        ("", "anything", False),
        ("  ", "a   b", False),
        (None, "anything", False),
    ],
)
def test_contains_display_name(name: str | None, body: str, expected: bool) -> None:
    condition = {"kind": "contains_display_name"}
    assert holds(condition, event(content=text(body)), user_display_name=name) is expected


def test_contains_display_name_needs_a_string_body() -> None:
    condition = {"kind": "contains_display_name"}
    assert not holds(condition, event(content={"body": ["Alice"]}), user_display_name="Alice")
    assert not holds(condition, event(content="Alice"), user_display_name="Alice")


@pytest.mark.parametrize(
    ("is_", "matching", "not_matching"),
    [
        ("2", [2], [1, 3]),
        ("==2", [2], [1, 3]),
        ("<2", [0, 1], [2, 3]),
        (">2", [3, 100], [1, 2]),
        ("<=2", [1, 2], [3]),
        (">=2", [2, 3], [1]),
        ("010", [10], [9]),
        ("=2", [], [1, 2, 3]),
        ("=>2", [], [1, 2, 3]),
        ("-1", [], [0, 1]),
        (" 2", [], [2]),
        ("2.0", [], [2]),
        ("", [], [0, 2]),
        ("<", [], [0, 2]),
        ("\u0662", [], [2]),  # Arabic-Indic digit two
        ("9" * 5000, [], [2]),
    ],
)
def test_room_member_count(is_: str, matching: list[int], not_matching: list[int]) -> None:
    rules = single({"kind": "room_member_count", "is": is_})
    for count in matching:
        assert rules.evaluate(event(), context(room_member_count=count)).notify, count
    for count in not_matching:
        assert not rules.evaluate(event(), context(room_member_count=count)).notify, count


def test_sender_notification_permission() -> None:
    condition = {"kind": "sender_notification_permission", "key": "org.example.ping"}
    assert holds(condition, event(), sender_power_level=50)
    assert not holds(condition, event(), sender_power_level=49)
    levels = {"room": 50, "org.example.ping": 10}
    assert holds(condition, event(), sender_power_level=10, notification_levels=levels)
    assert not holds(condition, event(), sender_power_level=9, notification_levels=levels)


@pytest.mark.parametrize(
    "condition",
    [
        {"kind": "org.example.unknown"},
        {"kind": "event_match", "key": "type"},
        {"kind": "event_match", "pattern": "x"},
        {"kind": "event_property_is", "key": "type"},
        {"kind": "event_property_is", "key": "type", "value": 1.5},
        {"kind": "event_property_contains", "key": "type", "value": ["x"]},
        {"kind": "room_member_count"},
        {"kind": "sender_notification_permission"},
        {"kind": None},
        {},
    ],
)
def test_malformed_or_unknown_conditions_never_match(condition: dict[str, Any]) -> None:
    assert not holds(condition, event(), room_member_count=2, sender_power_level=100)


def test_room_and_sender_rules_match_exactly() -> None:
    room_rule = PushRule(ROOM, "room", False, True, ("notify",))
    sender_rule = PushRule(BOB, "sender", False, True, ("notify",))
    rules = PushRuleEvaluator(Ruleset({"room": (room_rule,), "sender": (sender_rule,)}))
    assert rules.evaluate(event("x", {}, sender="@c:d"), context()).notify
    assert not rules.evaluate(event("x", {}, sender="@c:d"), context(room_id=ROOM.upper())).notify
    assert rules.evaluate(event("x", {}), context(room_id=OTHER_ROOM)).notify
    assert not rules.evaluate(
        event("x", {}, sender=BOB.upper()), context(room_id=OTHER_ROOM)
    ).notify


def test_an_empty_ruleset_never_notifies() -> None:
    assert PushRuleEvaluator(Ruleset({})).evaluate(event(), context()) == NOTHING


# --- glob semantics ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "ABC", True),
        ("abc", "abcd", False),
        ("abc", "xabc", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a?c", "a\nc", True),
        ("a*", "a", True),
        ("a*", "a\nb", True),
        ("*c", "abc", True),
        ("a*c", "ac", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "acb", False),
        ("a*a", "a", False),
        ("**", "", True),
        ("", "", True),
        ("", "x", False),
        ("a.c", "abc", False),  # regex characters are literal
        ("[ab]", "a", False),
        ("[ab]", "[AB]", True),
        ("\\d", "\\d", True),
        ("straße", "STRASSE", False),
    ],
)
def test_glob_whole_value(pattern: str, value: str, expected: bool) -> None:
    assert glob_matcher(pattern)(value) is expected


def reference_glob(pattern: str, value: str) -> bool:
    """The glob definition, by dynamic programming over lowercased ASCII strings."""
    pattern, value = pattern.lower(), value.lower()
    reachable = [True] + [False] * len(pattern)
    for i, char in enumerate(pattern):
        if char == "*":
            reachable[i + 1] = reachable[i] or reachable[i + 1]
    for letter in value:
        following = [False] * (len(pattern) + 1)
        for i, char in enumerate(pattern):
            if reachable[i] and char in ("?", letter):
                following[i + 1] = True
            if char == "*" and (following[i] or reachable[i + 1]):
                following[i + 1] = True
        reachable = following
    return reachable[-1]


def reference_words(pattern: str, value: str) -> bool:
    """Any substring starting and ending at a word boundary matches the glob."""

    def word(index: int) -> bool:
        return 0 <= index < len(value) and bool(re.fullmatch(r"[A-Za-z0-9_]", value[index]))

    return any(
        not word(start - 1) and not word(end) and reference_glob(pattern, value[start:end])
        for start in range(len(value) + 1)
        for end in range(start, len(value) + 1)
    )


patterns = st.text(alphabet="ab*?- ", max_size=7)
values = st.text(alphabet="abAB- _x", max_size=10)


@settings(max_examples=600, deadline=None)
@given(patterns, values)
def test_glob_matches_the_reference(pattern: str, value: str) -> None:
    assert glob_matcher(pattern)(value) is reference_glob(pattern, value)


@settings(max_examples=600, deadline=None)
@given(patterns, values)
def test_word_glob_matches_the_reference(pattern: str, value: str) -> None:
    assert glob_matcher(pattern, word_boundary=True)(value) is reference_words(pattern, value)


def test_long_bodies_stay_linear() -> None:
    """A backtracking matcher would take hours on these; this one is linear."""
    body = "a " * 200_000 + "bx"
    for pattern in ("a*b", "a*a*a*a*b", "a?b", "a?*?*?b", "*a?b"):
        assert glob_matcher(pattern, word_boundary=True)(body) is False
    assert glob_matcher("a*a*a*a*b")("a" * 400_000) is False
    assert glob_matcher("a*b", word_boundary=True)(body + " b") is True


# --- robustness -------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from([ME, BOB, ROOM, "m.room.message", "invite", "m.replace", "", "Me Myself"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(
                st.text(max_size=6),
                st.sampled_from(
                    [
                        "body",
                        "msgtype",
                        "m.mentions",
                        "user_ids",
                        "room",
                        "m.relates_to",
                        "rel_type",
                    ]
                ),
            ),
            children,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
odd_events = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(json_values, st.sampled_from(["m.room.message", "m.room.member"])),
        "sender": json_values,
        "state_key": json_values,
        "content": json_values,
        "room_id": json_values,
    },
)


def many_rules() -> PushRuleEvaluator:
    conditions: list[dict[str, Any]] = [
        {"kind": "event_match", "key": "content.body", "pattern": "a*b?"},
        {"kind": "event_match", "key": "content", "pattern": "*"},
        {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": None},
        {"kind": "event_property_contains", "key": "content.body", "value": 1},
        {"kind": "contains_display_name"},
        {"kind": "room_member_count", "is": ">=1"},
        {"kind": "sender_notification_permission", "key": "room"},
    ]
    rules = [
        PushRule(f"o{i}", "override", False, True, ("notify",), (condition,))
        for i, condition in enumerate(conditions)
    ]
    content = PushRule("c", "content", False, True, ("notify",), pattern="*")
    base = resolve(ME, Customisations())
    return PushRuleEvaluator(
        Ruleset(
            {
                **base.rules_by_kind,
                "override": tuple(rules) + base.rules_by_kind["override"],
                "content": (content,),
            }
        )
    )


ODD_RULES = many_rules()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(odd_events, st.one_of(st.none(), st.text(max_size=5)), st.integers(-5, 5))
def test_odd_events_never_raise(ev: dict[str, Any], name: str | None, count: int) -> None:
    ctx = context(user_display_name=name, room_member_count=count)
    for rules in (DEFAULTS, ODD_RULES):
        result = rules.evaluate(ev, ctx)
        assert isinstance(result, Actions)
        assert result.notify or result == NOTHING


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["kind", "key", "pattern", "value", "is"]),
            st.one_of(
                json_values,
                st.sampled_from(
                    [
                        "event_match",
                        "event_property_is",
                        "event_property_contains",
                        "contains_display_name",
                        "room_member_count",
                        "sender_notification_permission",
                        "content.body",
                        "type",
                    ]
                ),
            ),
            max_size=5,
        ),
        max_size=3,
    ),
    odd_events,
)
def test_odd_rules_never_raise(conditions: list[dict[str, Any]], ev: dict[str, Any]) -> None:
    rule = PushRule("r", "override", False, True, ("notify",), tuple(conditions))
    result = PushRuleEvaluator(Ruleset({"override": (rule,)})).evaluate(ev, context())
    assert isinstance(result, Actions)
