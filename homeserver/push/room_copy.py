"""Carrying a user's push rules about a room over to its successor after an upgrade.

Pure edits of a user's :class:`~homeserver.push.rules.Customisations`, like the rest
of :mod:`homeserver.push.rules`.

spec: client-server-api/modules/room_upgrades.md
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from homeserver.push.rules import (
    CONDITION_KINDS,
    KINDS,
    MAX_USER_RULES,
    Customisations,
    PushRule,
    PushRuleError,
    check_user_rule_id,
    copy_json,
    replace_kind,
)


def _names_room(condition: Mapping[str, Any], room_id: str) -> bool:
    return condition.get("key") == "room_id" and condition.get("pattern") == room_id


def copy_room_rules(
    customisations: Customisations, old_room_id: str, new_room_id: str
) -> Customisations:
    """After a room upgrade: the user's enabled rules about ``old_room_id`` duplicated
    for ``new_room_id``, each copy just before its original — the room rule named
    after the old room, and override/underride rules with a ``room_id`` condition on
    it (that condition re-pointed).  A rule the user already has under the copy's ID
    is kept as it is; copies past :data:`MAX_USER_RULES` are skipped.

    Synapse copies the same rules (``copy_push_rules_from_room_to_room_for_user``)
    but names every condition rule's copy after the new room alone, so two such
    rules would overwrite each other; here the old room ID inside the rule ID is
    replaced, or the new room ID appended.

    spec: client-server-api/modules/room_upgrades.md ("transfer/replicate some of the
    user's personalized settings such as notifications")
    """
    count = customisations.user_rule_count()
    result = customisations
    for kind in KINDS:
        rules = result.rules[kind]
        taken = {rule.rule_id for rule in rules}
        copies: dict[str, PushRule] = {}
        for rule in rules:
            if not rule.enabled or count >= MAX_USER_RULES:
                continue
            if kind == "room" and rule.rule_id == old_room_id:
                copy = attrs.evolve(rule, rule_id=new_room_id)
            elif kind in CONDITION_KINDS and any(
                _names_room(condition, old_room_id) for condition in rule.conditions or ()
            ):
                if old_room_id in rule.rule_id:
                    new_id = rule.rule_id.replace(old_room_id, new_room_id)
                else:
                    new_id = f"{rule.rule_id}-{new_room_id}"
                try:
                    check_user_rule_id(kind, new_id)
                except PushRuleError:
                    continue  # e.g. too long once the new room ID is in it
                conditions = tuple(
                    {**condition, "pattern": new_room_id}
                    if _names_room(condition, old_room_id)
                    else copy_json(condition)
                    for condition in rule.conditions or ()
                )
                copy = attrs.evolve(rule, rule_id=new_id, conditions=conditions)
            else:
                continue
            if copy.rule_id in taken:
                continue
            taken.add(copy.rule_id)
            copies[rule.rule_id] = copy
            count += 1
        if copies:
            ordered: list[PushRule] = []
            for rule in rules:
                if rule.rule_id in copies:
                    ordered.append(copies[rule.rule_id])
                ordered.append(rule)
            result = replace_kind(result, kind, ordered)
    return result
