"""Shared fixtures of the push rule evaluator tests: a context, events, the defaults."""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.push.evaluator import (
    DEFAULT_NOTIFICATION_LEVELS,
    Actions,
    EvaluationContext,
    PushRuleEvaluator,
)
from homeserver.push.rules import (
    Customisations,
    resolve,
)

ME = "@me:example.org"
BOB = "@bob:example.org"
ROOM = "!room:example.org"
OTHER_ROOM = "!other:example.org"

NOTIFY = Actions(notify=True, highlight=False)
NOTIFY_SOUND = Actions(notify=True, highlight=False, sound="default")
HIGHLIGHT = Actions(notify=True, highlight=True)
HIGHLIGHT_SOUND = Actions(notify=True, highlight=True, sound="default")
RING = Actions(notify=True, highlight=False, sound="ring")


def context(**changes: Any) -> EvaluationContext:
    base = EvaluationContext(
        user_id=ME,
        user_display_name="Me Myself",
        room_member_count=5,
        sender_power_level=0,
        notification_levels=DEFAULT_NOTIFICATION_LEVELS,
        room_id=ROOM,
    )
    return attrs.evolve(base, **changes)


def event(
    event_type: str = "m.room.message",
    content: Any = None,
    *,
    sender: str = BOB,
    state_key: str | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": {"msgtype": "m.text", "body": "hello"} if content is None else content,
        "room_id": ROOM,
        "event_id": "$e",
    }
    if state_key is not None:
        result["state_key"] = state_key
    return result


def text(body: str = "hello", /, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, **extra}


DEFAULTS = PushRuleEvaluator(resolve(ME, Customisations()))


def evaluate_defaults(ev: dict[str, Any], **changes: Any) -> Actions:
    return DEFAULTS.evaluate(ev, context(**changes))
