"""Push rules as data: the spec's default rules and resolving a user's changes."""

from __future__ import annotations

from homeserver.push.rules import (
    KINDS,
    Customisations,
    Ruleset,
    default_rules,
    resolve,
)
from tests.push.rules_support import (
    ME,
    ROOM,
    SPEC_OVERRIDE,
    SPEC_UNDERRIDE,
    ids,
    put,
)


def test_a_user_without_changes_gets_exactly_the_spec_defaults() -> None:
    assert resolve(ME, Customisations()).to_json() == {
        "global": {
            "override": SPEC_OVERRIDE,
            "content": [],
            "room": [],
            "sender": [],
            "underride": SPEC_UNDERRIDE,
        }
    }


def test_default_rule_ids_in_the_spec_order() -> None:
    ids = [(rule.kind, rule.rule_id) for rule in default_rules(ME)]
    assert ids == [("override", r["rule_id"]) for r in SPEC_OVERRIDE] + [
        ("underride", r["rule_id"]) for r in SPEC_UNDERRIDE
    ]


def test_legacy_body_matching_rules_are_gone() -> None:
    """v1.17 removed the rules that looked for mentions in ``body``."""
    ids = {rule.rule_id for rule in default_rules(ME)}
    for removed in (
        ".m.rule.contains_display_name",
        ".m.rule.contains_user_name",
        ".m.rule.roomnotif",
    ):
        assert removed not in ids


def test_default_rules_substitute_the_users_id() -> None:
    other = resolve("@bob:b.test", Customisations())
    invite = other.find("override", ".m.rule.invite_for_me")
    mention = other.find("override", ".m.rule.is_user_mention")
    assert invite is not None and mention is not None
    assert invite.conditions is not None and invite.conditions[2]["pattern"] == "@bob:b.test"
    assert mention.conditions is not None and mention.conditions[0]["value"] == "@bob:b.test"


def test_ruleset_json_always_has_the_five_kinds() -> None:
    assert Ruleset({}).to_json() == {"global": {kind: [] for kind in KINDS}}


def test_ruleset_find_and_ordered() -> None:
    ruleset = resolve(ME, Customisations())
    assert [r.rule_id for r in ruleset.ordered()] == [
        r["rule_id"] for r in SPEC_OVERRIDE + SPEC_UNDERRIDE
    ]
    found = ruleset.find("underride", ".m.rule.message")
    assert found is not None and found.kind == "underride" and found.default
    assert ruleset.find("override", ".m.rule.message") is None
    assert ruleset.find("nonsense", ".m.rule.message") is None


def test_to_json_gives_copies() -> None:
    ruleset = resolve(ME, Customisations())
    body = ruleset.to_json()
    body["global"]["override"][1]["conditions"][0]["pattern"] = "changed"
    body["global"]["override"][2]["actions"][1]["value"] = "changed"
    assert ruleset.to_json()["global"]["override"][1] == SPEC_OVERRIDE[1]
    assert ruleset.to_json()["global"]["override"][2] == SPEC_OVERRIDE[2]


# --- resolving a user's changes ---------------------------------------------------


def test_user_rules_come_before_defaults_of_their_kind_but_after_master() -> None:
    changes = put(Customisations(), "override", "mine", {"actions": []})
    changes = put(changes, "underride", "low", {"actions": ["notify"]})
    changes = put(changes, "content", "cake", {"pattern": "cake", "actions": ["notify"]})
    assert ids(changes, "override")[:3] == [".m.rule.master", "mine", ".m.rule.suppress_notices"]
    assert ids(changes, "underride")[:2] == ["low", ".m.rule.call"]
    assert ids(changes, "content") == ["cake"]


def test_user_rule_json_shapes_per_kind() -> None:
    changes = put(Customisations(), "room", ROOM, {"actions": [], "conditions": "ignored"})
    changes = put(changes, "sender", "@spam:b.test", {"actions": [], "pattern": "ignored"})
    changes = put(changes, "content", "cake", {"pattern": "cake", "actions": ["notify"]})
    changes = put(changes, "override", "o", {"actions": ["notify"]})
    ruleset = resolve(ME, changes).to_json()["global"]
    assert ruleset["room"] == [{"rule_id": ROOM, "default": False, "enabled": True, "actions": []}]
    assert ruleset["sender"] == [
        {"rule_id": "@spam:b.test", "default": False, "enabled": True, "actions": []}
    ]
    assert ruleset["content"] == [
        {
            "rule_id": "cake",
            "default": False,
            "enabled": True,
            "actions": ["notify"],
            "pattern": "cake",
        }
    ]
    assert ruleset["override"][1] == {
        "rule_id": "o",
        "default": False,
        "enabled": True,
        "actions": ["notify"],
        "conditions": [],
    }


def test_spec_examples_in_order() -> None:
    """The curl examples of push.md "Push Rules: Events"."""
    changes = put(Customisations(), "room", "!dj234r78wl45Gh4D:matrix.org", {"actions": []})
    changes = put(changes, "sender", "@spambot:matrix.org", {"actions": []})
    changes = put(
        changes,
        "content",
        "SSByZWFsbHkgbGlrZSBjYWtl",
        {
            "pattern": "cake",
            "actions": ["notify", {"set_tweak": "sound", "value": "cakealarm.wav"}],
        },
    )
    changes = put(
        changes,
        "content",
        "U3BvbmdlIGNha2UgaXMgYmVzdA",
        {"pattern": "cake*lie", "actions": ["notify"]},
        before="SSByZWFsbHkgbGlrZSBjYWtl",
    )
    changes = put(
        changes,
        "override",
        "U2VlIHlvdSBpbiBUaGUgRHVrZQ",
        {
            "conditions": [
                {"kind": "event_match", "key": "content.body", "pattern": "beer"},
                {"kind": "room_member_count", "is": "<=10"},
            ],
            "actions": ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}],
        },
    )
    assert ids(changes, "content") == ["U3BvbmdlIGNha2UgaXMgYmVzdA", "SSByZWFsbHkgbGlrZSBjYWtl"]
    assert ids(changes, "room") == ["!dj234r78wl45Gh4D:matrix.org"]
    assert ids(changes, "sender") == ["@spambot:matrix.org"]
    assert ids(changes, "override")[1] == "U2VlIHlvdSBpbiBUaGUgRHVrZQ"
