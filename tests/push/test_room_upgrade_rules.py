"""Copying a user's push rules about an upgraded room to its successor (pure)."""

from __future__ import annotations

from homeserver.push.room_copy import copy_room_rules
from homeserver.push.rules import Customisations, set_enabled
from tests.push.rules_support import ME, OTHER_ROOM, ROOM, ids, put

NEW = "!new:example.org"


def about(room_id: str) -> dict[str, object]:
    return {
        "conditions": [
            {"kind": "event_match", "key": "type", "pattern": "m.room.message"},
            {"kind": "event_match", "key": "room_id", "pattern": room_id},
        ],
        "actions": [],
    }


def test_room_rules_and_rules_naming_the_room_are_copied_next_to_the_originals() -> None:
    changes = Customisations()
    changes = put(changes, "room", ROOM, {"actions": ["notify"]})
    changes = put(changes, "room", OTHER_ROOM, {"actions": []})
    changes = put(changes, "override", "elsewhere", about(OTHER_ROOM))
    changes = put(changes, "override", "quiet", about(ROOM))
    changes = put(changes, "underride", f"loud-{ROOM}", about(ROOM))

    copied = copy_room_rules(changes, ROOM, NEW)

    assert [r.rule_id for r in copied.rules["room"]] == [OTHER_ROOM, NEW, ROOM]
    assert copied.rules["room"][1].actions == ("notify",)
    assert [r.rule_id for r in copied.rules["override"]] == [f"quiet-{NEW}", "quiet", "elsewhere"]
    quiet_copy = copied.rules["override"][0]
    assert quiet_copy.conditions == (
        {"kind": "event_match", "key": "type", "pattern": "m.room.message"},
        {"kind": "event_match", "key": "room_id", "pattern": NEW},
    )
    # The original is untouched.
    assert copied.rules["override"][1].conditions == changes.rules["override"][0].conditions
    # A rule named after the old room is named after the new one.
    assert [r.rule_id for r in copied.rules["underride"]] == [f"loud-{NEW}", f"loud-{ROOM}"]
    assert ids(copied, "content") == ids(changes, "content")


def test_disabled_rules_and_rules_already_there_are_left_alone() -> None:
    changes = put(Customisations(), "room", ROOM, {"actions": []})
    changes = put(changes, "override", "quiet", about(ROOM))
    changes = set_enabled(changes, ME, "override", "quiet", False)
    changes = put(changes, "room", NEW, {"actions": ["notify"]})

    copied = copy_room_rules(changes, ROOM, NEW)

    assert copied == changes
    assert copy_room_rules(copied, ROOM, NEW) == copied
