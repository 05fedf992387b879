"""The spec's default push rules, as code: does an event notify a user, and highlight?

Only the server-default rules apply (push rule customisation is a later piece of
work): the override rules in their order, no content/room/sender rules (the legacy
body-matching rules were removed in v1.17), then the underride rules.  The
one-to-one underride rules differ from ``.m.rule.message``/``.m.rule.encrypted``
only by a sound tweak, so the member count never changes the outcome here.

``event_match`` is case-insensitive on the whole value (none of the default
patterns contain glob characters); ``event_property_is``/``_contains`` are exact.

spec: client-server-api/modules/push.md#predefined-rules
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class Actions:
    notify: bool
    highlight: bool


NOTHING = Actions(notify=False, highlight=False)
NOTIFY = Actions(notify=True, highlight=False)
HIGHLIGHT = Actions(notify=True, highlight=True)


def mentions_room(content: Mapping[str, Any]) -> bool:
    """Whether ``content.m\\.mentions.room`` is exactly ``true`` (``.m.rule.is_room_mention``
    then depends on the sender's power, which the caller looks up only in this case)."""
    mentions = content.get("m.mentions")
    return isinstance(mentions, dict) and mentions.get("room") is True


def evaluate(
    event_type: str,
    state_key: str | None,
    content: Mapping[str, Any],
    user_id: str,
    *,
    sender_may_notify_room: bool = False,
) -> Actions:
    """The actions of the first default rule matching the event for ``user_id``.

    ``sender_may_notify_room`` is the ``sender_notification_permission`` condition with
    key ``room``: whether the sender's power level reaches ``notifications.room``.
    """
    # .m.rule.master is disabled by default.
    # .m.rule.suppress_notices
    if _matches(content.get("msgtype"), "m.notice"):
        return NOTHING
    # .m.rule.invite_for_me
    if (
        _matches(event_type, "m.room.member")
        and _matches(content.get("membership"), "invite")
        and _matches(state_key, user_id)
    ):
        return NOTIFY
    # .m.rule.member_event
    if _matches(event_type, "m.room.member"):
        return NOTHING
    mentions = content.get("m.mentions")
    # .m.rule.is_user_mention
    if isinstance(mentions, dict):
        user_ids = mentions.get("user_ids")
        if isinstance(user_ids, list) and user_id in user_ids:
            return HIGHLIGHT
    # .m.rule.is_room_mention
    if mentions_room(content) and sender_may_notify_room:
        return HIGHLIGHT
    # .m.rule.tombstone
    if _matches(event_type, "m.room.tombstone") and _matches(state_key, ""):
        return HIGHLIGHT
    # .m.rule.reaction
    if _matches(event_type, "m.reaction"):
        return NOTHING
    # .m.rule.room.server_acl
    if _matches(event_type, "m.room.server_acl") and _matches(state_key, ""):
        return NOTHING
    # .m.rule.suppress_edits
    relates_to = content.get("m.relates_to")
    if isinstance(relates_to, dict) and relates_to.get("rel_type") == "m.replace":
        return NOTHING
    # Underride: .m.rule.call, .m.rule.(encrypted_)room_one_to_one, .m.rule.message,
    # .m.rule.encrypted.
    if (
        _matches(event_type, "m.call.invite")
        or _matches(event_type, "m.room.message")
        or _matches(event_type, "m.room.encrypted")
    ):
        return NOTIFY
    return NOTHING


def _matches(value: object, pattern: str) -> bool:
    """``event_match`` for a pattern without glob characters: the value must be a
    string equal to the pattern, ignoring case."""
    return isinstance(value, str) and value.lower() == pattern.lower()
