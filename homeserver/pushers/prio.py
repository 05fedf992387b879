"""How urgent a notification is: shared by the ``http`` and ``webpush`` kinds (the
tweaks its push rule set are ``push.evaluator.tweaks_of``).

``prio`` (push-gateway-api.md): "high" for what a person is waiting for — messages,
encrypted events (which may be messages), invites of the recipient, calls, and anything
a rule made highlight or ring; "low" for the rest, which gateways may deliver lazily.

spec: push-gateway-api.md (``prio``, ``tweaks``), client-server-api/modules/push.md#actions
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.events.event import Event

#: Event types whose notifications are urgent by nature.
_HIGH_TYPES = frozenset({"m.room.message", "m.room.encrypted", "m.call.invite", "m.sticker"})


def priority(event: Event, user_id: str, tweaks: Mapping[str, Any]) -> str:
    if event.type in _HIGH_TYPES or tweaks.get("highlight") or tweaks.get("sound"):
        return "high"
    if event.type == "m.room.member" and event.membership == "invite":
        return "high" if event.state_key == user_id else "low"
    return "low"
