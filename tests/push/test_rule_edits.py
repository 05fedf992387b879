"""Every edit of the push rules API with its refusals, and the stored document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from homeserver.push.rules import (
    MAX_CONDITIONS,
    MAX_JSON_DEPTH,
    MAX_PATTERN_CHARS,
    MAX_USER_RULES,
    Customisations,
    DefaultChange,
    PushRule,
    PushRuleError,
    delete,
    resolve,
    set_actions,
    set_enabled,
)
from tests.push.rules_support import (
    ME,
    ROOM,
    SPEC_UNDERRIDE,
    ids,
    put,
)

# --- add_or_replace ---------------------------------------------------------------


def three_rules() -> Customisations:
    changes = Customisations()
    for rule_id in ("c", "b", "a"):  # each new rule goes on top
        changes = put(changes, "override", rule_id, {"actions": []})
    return changes


def test_new_rules_go_on_top_of_the_users_rules() -> None:
    assert ids(three_rules(), "override")[1:4] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("a", None, ["new", "a", "b", "c"]),
        ("b", None, ["a", "new", "b", "c"]),
        ("c", None, ["a", "b", "new", "c"]),
        (None, "a", ["a", "new", "b", "c"]),
        (None, "c", ["a", "b", "c", "new"]),
        ("b", "c", ["a", "new", "b", "c"]),  # before wins
    ],
)
def test_before_and_after_place_new_rules(
    before: str | None, after: str | None, expected: list[str]
) -> None:
    changes = put(three_rules(), "override", "new", {"actions": []}, before=before, after=after)
    assert ids(changes, "override")[1:5] == expected


def test_replacing_keeps_position_and_enabled_but_takes_the_new_body() -> None:
    changes = set_enabled(three_rules(), ME, "override", "b", False)
    changes = put(
        changes,
        "override",
        "b",
        {
            "actions": ["notify"],
            "conditions": [{"kind": "event_match", "key": "type", "pattern": "x"}],
        },
    )
    assert ids(changes, "override")[1:4] == ["a", "b", "c"]
    rule = resolve(ME, changes).find("override", "b")
    assert rule is not None
    assert rule.enabled is False
    assert rule.actions == ("notify",)
    assert rule.conditions == ({"kind": "event_match", "key": "type", "pattern": "x"},)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, "c", ["b", "c", "a"]),
        ("c", None, ["b", "a", "c"]),
        (None, "b", ["b", "a", "c"]),
    ],
)
def test_replacing_with_before_or_after_moves_the_rule(
    before: str | None, after: str | None, expected: list[str]
) -> None:
    changes = put(three_rules(), "override", "a", {"actions": []}, before=before, after=after)
    assert ids(changes, "override")[1:4] == expected


def test_rules_of_other_kinds_are_not_anchors() -> None:
    changes = put(three_rules(), "underride", "u", {"actions": []})
    with pytest.raises(PushRuleError) as refused:
        put(changes, "underride", "v", {"actions": []}, before="a")
    assert (refused.value.errcode, refused.value.status) == ("M_UNKNOWN", 400)


def test_unknown_condition_kinds_are_accepted() -> None:
    condition = {"kind": "org.example.future", "anything": [1, {"x": None}]}
    changes = put(Customisations(), "override", "f", {"actions": [], "conditions": [condition]})
    rule = resolve(ME, changes).find("override", "f")
    assert rule is not None and rule.conditions == (condition,)


def test_nesting_up_to_the_limit_is_fine() -> None:
    tweak = {"set_tweak": "x", "value": nested(MAX_JSON_DEPTH - 2)}
    changes = put(Customisations(), "override", "f", {"actions": [tweak]})
    rule = resolve(ME, changes).find("override", "f")
    assert rule is not None and rule.to_json()["actions"] == [tweak]


def test_rules_share_nothing_with_the_request_body() -> None:
    tweak = {"set_tweak": "sound", "value": "a"}
    condition = {"kind": "event_match", "key": "type", "pattern": "a"}
    body = {"actions": ["notify", tweak], "conditions": [condition]}
    changes = put(Customisations(), "override", "f", body)
    tweak["value"] = "changed"
    condition["pattern"] = "changed"
    rule = resolve(ME, changes).find("override", "f")
    assert rule is not None
    assert rule.to_json()["actions"][1] == {"set_tweak": "sound", "value": "a"}
    assert rule.to_json()["conditions"] == [{"kind": "event_match", "key": "type", "pattern": "a"}]


def test_historical_actions_are_accepted() -> None:
    changes = put(Customisations(), "override", "f", {"actions": ["dont_notify", "coalesce"]})
    rule = resolve(ME, changes).find("override", "f")
    assert rule is not None and rule.actions == ("dont_notify", "coalesce")


def test_tweaks_pass_through() -> None:
    actions = [
        "notify",
        {"set_tweak": "highlight", "value": False},
        {"set_tweak": "org.example.led", "value": {"colour": "red"}},
    ]
    changes = put(Customisations(), "override", "f", {"actions": actions})
    rule = resolve(ME, changes).find("override", "f")
    assert rule is not None and rule.to_json()["actions"] == actions


def valid_body(kind: str) -> dict[str, Any]:
    return {"pattern": "x", "actions": []} if kind == "content" else {"actions": []}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


REFUSALS: list[tuple[str, str, str, object, str]] = [
    ("unknown kind", "global", "r", {"actions": []}, "M_INVALID_PARAM"),
    ("server-default id", "override", ".m.rule.master", {"actions": []}, "M_INVALID_PARAM"),
    ("dot id", "override", ".mine", {"actions": []}, "M_INVALID_PARAM"),
    ("slash", "override", "a/b", {"actions": []}, "M_INVALID_PARAM"),
    ("backslash", "override", "a\\b", {"actions": []}, "M_INVALID_PARAM"),
    ("empty id", "override", "", {"actions": []}, "M_INVALID_PARAM"),
    ("long id", "override", "x" * 256, {"actions": []}, "M_INVALID_PARAM"),
    ("room rule not a room", "room", "@user:b.test", {"actions": []}, "M_INVALID_PARAM"),
    ("sender rule not a user", "sender", ROOM, {"actions": []}, "M_INVALID_PARAM"),
    ("body not an object", "override", "r", ["notify"], "M_BAD_JSON"),
    ("no actions", "override", "r", {}, "M_MISSING_PARAM"),
    ("actions not a list", "override", "r", {"actions": "notify"}, "M_BAD_JSON"),
    ("unknown action", "override", "r", {"actions": ["shout"]}, "M_INVALID_PARAM"),
    ("action not str/object", "override", "r", {"actions": [1]}, "M_BAD_JSON"),
    ("null action", "override", "r", {"actions": [None]}, "M_BAD_JSON"),
    ("object without set_tweak", "override", "r", {"actions": [{"x": 1}]}, "M_INVALID_PARAM"),
    ("set_tweak not str", "override", "r", {"actions": [{"set_tweak": 1}]}, "M_BAD_JSON"),
    (
        "highlight not bool",
        "override",
        "r",
        {"actions": [{"set_tweak": "highlight", "value": "yes"}]},
        "M_BAD_JSON",
    ),
    (
        "sound not str",
        "override",
        "r",
        {"actions": [{"set_tweak": "sound", "value": 1}]},
        "M_BAD_JSON",
    ),
    ("too many actions", "override", "r", {"actions": ["notify"] * 21}, "M_INVALID_PARAM"),
    ("conditions not list", "override", "r", {"actions": [], "conditions": {}}, "M_BAD_JSON"),
    ("conditions null", "underride", "r", {"actions": [], "conditions": None}, "M_BAD_JSON"),
    ("condition not object", "override", "r", {"actions": [], "conditions": ["x"]}, "M_BAD_JSON"),
    ("condition no kind", "override", "r", {"actions": [], "conditions": [{}]}, "M_BAD_JSON"),
    (
        "condition kind not str",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": 1}]},
        "M_BAD_JSON",
    ),
    (
        "event_match without pattern",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": "event_match", "key": "type"}]},
        "M_BAD_JSON",
    ),
    (
        "event_match without key",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": "event_match", "pattern": "x"}]},
        "M_BAD_JSON",
    ),
    (
        "event_match pattern too long",
        "override",
        "r",
        {
            "actions": [],
            "conditions": [
                {"kind": "event_match", "key": "type", "pattern": "x" * (MAX_PATTERN_CHARS + 1)}
            ],
        },
        "M_INVALID_PARAM",
    ),
    (
        "property_is without value",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": "event_property_is", "key": "type"}]},
        "M_BAD_JSON",
    ),
    (
        "property_is float",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": "event_property_is", "key": "a", "value": 1.5}]},
        "M_BAD_JSON",
    ),
    (
        "property_contains compound",
        "override",
        "r",
        {
            "actions": [],
            "conditions": [{"kind": "event_property_contains", "key": "a", "value": [1]}],
        },
        "M_BAD_JSON",
    ),
    (
        "property_is integer out of range",
        "override",
        "r",
        {
            "actions": [],
            "conditions": [{"kind": "event_property_is", "key": "a", "value": 2**53}],
        },
        "M_INVALID_PARAM",
    ),
    (
        "member count without is",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": "room_member_count"}]},
        "M_BAD_JSON",
    ),
    (
        "member count bad is",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": "room_member_count", "is": "=>2"}]},
        "M_INVALID_PARAM",
    ),
    (
        "permission without key",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": "sender_notification_permission"}]},
        "M_BAD_JSON",
    ),
    (
        "too many conditions",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": "contains_display_name"}] * (MAX_CONDITIONS + 1)},
        "M_INVALID_PARAM",
    ),
    (
        "rule too large",
        "override",
        "r",
        {"actions": [{"set_tweak": "x", "value": "y" * 5000}]},
        "M_INVALID_PARAM",
    ),
    (
        "tweak nested too deep",
        "override",
        "r",
        {"actions": [{"set_tweak": "x", "value": nested(MAX_JSON_DEPTH)}]},
        "M_INVALID_PARAM",
    ),
    (
        "unknown condition nested too deep",
        "override",
        "r",
        {"actions": [], "conditions": [{"kind": "x", "v": nested(MAX_JSON_DEPTH)}]},
        "M_INVALID_PARAM",
    ),
    ("content without pattern", "content", "r", {"actions": []}, "M_MISSING_PARAM"),
    ("content pattern not str", "content", "r", {"actions": [], "pattern": 1}, "M_BAD_JSON"),
    (
        "content pattern too long",
        "content",
        "r",
        {"actions": [], "pattern": "x" * (MAX_PATTERN_CHARS + 1)},
        "M_INVALID_PARAM",
    ),
]


@pytest.mark.parametrize(
    ("kind", "rule_id", "body", "errcode"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_add_or_replace_refusals(kind: str, rule_id: str, body: object, errcode: str) -> None:
    before = three_rules()
    with pytest.raises(PushRuleError) as refused:
        put(before, kind, rule_id, body)
    assert (refused.value.errcode, refused.value.status) == (errcode, 400)


@pytest.mark.parametrize(
    ("before", "after", "errcode"),
    [
        ("missing", None, "M_UNKNOWN"),
        (None, "missing", "M_UNKNOWN"),
        ("", None, "M_UNKNOWN"),
        (".m.rule.suppress_notices", None, "M_INVALID_PARAM"),
        (None, ".m.rule.master", "M_INVALID_PARAM"),
        ("new", None, "M_INVALID_PARAM"),  # relative to itself
        ("a", "missing", None),  # `after` is not looked at when `before` is given
    ],
)
def test_before_and_after_must_name_a_user_rule(
    before: str | None, after: str | None, errcode: str | None
) -> None:
    changes = put(three_rules(), "override", "new", {"actions": []})
    if errcode is None:
        put(changes, "override", "new", {"actions": []}, before=before, after=after)
        return
    with pytest.raises(PushRuleError) as refused:
        put(changes, "override", "new", {"actions": []}, before=before, after=after)
    assert (refused.value.errcode, refused.value.status) == (errcode, 400)
    if errcode == "M_UNKNOWN":  # the spec's example error
        assert refused.value.message.startswith("before/after rule not found: ")


def test_the_number_of_user_rules_is_capped() -> None:
    rules = tuple(PushRule(f"r{i}", "override", False, True, (), ()) for i in range(MAX_USER_RULES))
    full = Customisations(rules={"override": rules})
    with pytest.raises(PushRuleError) as refused:
        put(full, "content", "one-more", {"pattern": "x", "actions": []})
    assert (refused.value.errcode, refused.value.status) == ("M_TOO_LARGE", 400)
    # Replacing an existing rule is still possible.
    replaced = put(full, "override", "r5", {"actions": ["notify"]})
    assert replaced.user_rule_count() == MAX_USER_RULES


def test_room_and_sender_ids_are_checked_but_v12_room_ids_are_fine() -> None:
    v12_room = "!" + "A" * 43
    changes = put(Customisations(), "room", v12_room, {"actions": []})
    assert ids(changes, "room") == [v12_room]


# --- delete, set_enabled, set_actions -----------------------------------------------


def test_delete_a_user_rule() -> None:
    changes = delete(three_rules(), ME, "override", "b")
    assert ids(changes, "override")[1:3] == ["a", "c"]
    assert ids(changes, "override")[3] == ".m.rule.suppress_notices"


@pytest.mark.parametrize(
    ("kind", "rule_id", "errcode", "status"),
    [
        ("override", "missing", "M_NOT_FOUND", 404),
        ("underride", "a", "M_NOT_FOUND", 404),  # exists, but as an override rule
        ("override", ".m.rule.master", "M_INVALID_PARAM", 400),
        ("underride", ".m.rule.message", "M_INVALID_PARAM", 400),
        ("global", "a", "M_INVALID_PARAM", 400),
    ],
)
def test_delete_refusals(kind: str, rule_id: str, errcode: str, status: int) -> None:
    with pytest.raises(PushRuleError) as refused:
        delete(three_rules(), ME, kind, rule_id)
    assert (refused.value.errcode, refused.value.status) == (errcode, status)


def test_enable_and_disable_defaults_and_user_rules() -> None:
    changes = set_enabled(three_rules(), ME, "override", ".m.rule.master", True)
    changes = set_enabled(changes, ME, "underride", ".m.rule.message", False)
    changes = set_enabled(changes, ME, "override", "a", False)
    ruleset = resolve(ME, changes)
    master = ruleset.find("override", ".m.rule.master")
    message = ruleset.find("underride", ".m.rule.message")
    mine = ruleset.find("override", "a")
    assert master is not None and master.enabled and master.default
    assert message is not None and not message.enabled
    assert mine is not None and not mine.enabled
    # Setting a default back to its default value leaves nothing stored.
    changes = set_enabled(changes, ME, "override", ".m.rule.master", False)
    changes = set_enabled(changes, ME, "underride", ".m.rule.message", True)
    assert "defaults" not in changes.to_json()


def test_set_actions_on_defaults_and_user_rules() -> None:
    loud = ["notify", {"set_tweak": "highlight"}]
    changes = set_actions(three_rules(), ME, "underride", ".m.rule.message", loud)
    conditions = [{"kind": "event_match", "key": "type", "pattern": "x"}]
    changes = put(changes, "override", "b", {"actions": [], "conditions": conditions})
    changes = set_actions(changes, ME, "override", "b", ["notify"])
    ruleset = resolve(ME, changes)
    message = ruleset.find("underride", ".m.rule.message")
    mine = ruleset.find("override", "b")
    assert message is not None and message.to_json()["actions"] == loud
    assert message.conditions == tuple(SPEC_UNDERRIDE[3]["conditions"])
    assert (
        mine is not None
        and mine.actions == ("notify",)
        and list(mine.conditions or ()) == (conditions)
    )
    changes = set_actions(changes, ME, "underride", ".m.rule.message", ["notify"])
    assert "defaults" not in changes.to_json()


@pytest.mark.parametrize(
    ("operation", "kind", "rule_id", "value", "errcode", "status"),
    [
        ("enabled", "override", "missing", True, "M_NOT_FOUND", 404),
        ("enabled", "underride", ".m.rule.master", True, "M_NOT_FOUND", 404),
        ("enabled", "override", ".m.rule.nonexistent", True, "M_NOT_FOUND", 404),
        ("enabled", "override", "a", "yes", "M_BAD_JSON", 400),
        ("enabled", "bogus", "a", True, "M_INVALID_PARAM", 400),
        ("actions", "override", "missing", [], "M_NOT_FOUND", 404),
        ("actions", "content", ".m.rule.master", [], "M_NOT_FOUND", 404),
        ("actions", "override", "a", "notify", "M_BAD_JSON", 400),
        ("actions", "override", ".m.rule.master", ["shout"], "M_INVALID_PARAM", 400),
        ("actions", "bogus", "a", [], "M_INVALID_PARAM", 400),
    ],
)
def test_enabled_and_actions_refusals(
    operation: str, kind: str, rule_id: str, value: Any, errcode: str, status: int
) -> None:
    with pytest.raises(PushRuleError) as refused:
        if operation == "enabled":
            set_enabled(three_rules(), ME, kind, rule_id, value)
        else:
            set_actions(three_rules(), ME, kind, rule_id, value)
    assert (refused.value.errcode, refused.value.status) == (errcode, status)


def test_edits_do_not_change_their_input() -> None:
    original = three_rules()
    snapshot = original.to_json()
    put(original, "override", "d", {"actions": []})
    delete(original, ME, "override", "a")
    set_enabled(original, ME, "override", "a", False)
    set_actions(original, ME, "underride", ".m.rule.message", [])
    assert original.to_json() == snapshot


# --- the stored document ------------------------------------------------------------


def everything() -> Customisations:
    changes = three_rules()
    changes = put(changes, "content", "cake", {"pattern": "cake*", "actions": ["notify"]})
    changes = put(changes, "room", ROOM, {"actions": []})
    changes = put(changes, "sender", "@spam:b.test", {"actions": []})
    changes = put(
        changes,
        "underride",
        "u",
        {
            "actions": ["notify", {"set_tweak": "sound", "value": "x"}],
            "conditions": [
                {"kind": "event_property_is", "key": "content.n", "value": None},
                {"kind": "org.example.unknown", "deep": {"a": [1]}},
            ],
        },
    )
    changes = set_enabled(changes, ME, "override", "b", False)
    changes = set_enabled(changes, ME, "override", ".m.rule.master", True)
    changes = set_actions(changes, ME, "underride", ".m.rule.message", [])
    changes = set_enabled(changes, ME, "underride", ".m.rule.message", False)
    return changes


def test_customisations_round_trip_through_json() -> None:
    changes = everything()
    doc = json.loads(json.dumps(changes.to_json()))
    assert doc["version"] == 1
    assert Customisations.from_json(doc) == changes
    assert resolve(ME, Customisations.from_json(doc)) == resolve(ME, changes)


def test_empty_customisations_store_compactly() -> None:
    assert Customisations().to_json() == {"version": 1}
    assert Customisations.from_json({"version": 1}) == Customisations()


def test_stored_shape() -> None:
    changes = set_enabled(
        put(Customisations(), "room", ROOM, {"actions": []}),
        ME,
        "override",
        ".m.rule.master",
        True,
    )
    assert changes.to_json() == {
        "version": 1,
        "rules": {"room": [{"rule_id": ROOM, "enabled": True, "actions": []}]},
        "defaults": {"override": {".m.rule.master": {"enabled": True}}},
    }


@pytest.mark.parametrize(
    "stored",
    [None, [], "x", 1, {"version": 2, "rules": {}}, {"version": True}, {"version": "1"}],
)
def test_unreadable_documents_are_no_changes(stored: object) -> None:
    assert Customisations.from_json(stored) == Customisations()


def test_malformed_entries_are_skipped() -> None:
    good = {"rule_id": "good", "enabled": False, "actions": ["notify"], "conditions": []}
    stored = {
        "version": 1,
        "rules": {
            "override": [
                "not a rule",
                {"enabled": True, "actions": []},
                {"rule_id": 7, "actions": []},
                {"rule_id": ".m.rule.master", "actions": []},
                {"rule_id": "bad-actions", "actions": "notify"},
                {"rule_id": "no-actions"},
                {"rule_id": "bad-enabled", "enabled": "yes", "actions": []},
                {"rule_id": "bad-condition", "actions": [], "conditions": [1]},
                good,
                {**good, "enabled": True},  # duplicate ID: the first wins
                {"rule_id": "defaults-enabled", "actions": []},
            ],
            "content": [{"rule_id": "no-pattern", "actions": []}],
            "room": [{"rule_id": "not-a-room", "actions": []}],
            "sender": "not a list",
            "nonsense": [{"rule_id": "x", "actions": []}],
        },
        "defaults": {
            "override": {
                ".m.rule.master": {"enabled": True, "actions": "bad"},
                ".m.rule.unknown": {"enabled": True},
                ".m.rule.suppress_notices": "bad",
                ".m.rule.tombstone": {"enabled": "bad", "actions": ["notify"]},
            },
            "underride": [".m.rule.message"],
            "content": {".m.rule.master": {"enabled": True}},
        },
    }
    changes = Customisations.from_json(stored)
    assert [r.rule_id for r in changes.rules["override"]] == ["good", "defaults-enabled"]
    assert changes.rules["override"][0].enabled is False
    assert changes.rules["override"][1].enabled is True
    assert all(not changes.rules[kind] for kind in ("content", "room", "sender", "underride"))
    assert changes.defaults == {
        ("override", ".m.rule.master"): DefaultChange(enabled=True),
        ("override", ".m.rule.tombstone"): DefaultChange(actions=("notify",)),
    }


def test_a_stored_document_over_the_rule_cap_is_truncated() -> None:
    entries = [{"rule_id": f"r{i}", "actions": []} for i in range(MAX_USER_RULES + 5)]
    changes = Customisations.from_json({"version": 1, "rules": {"override": entries}})
    assert changes.user_rule_count() == MAX_USER_RULES
