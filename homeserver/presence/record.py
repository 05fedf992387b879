"""A user's presence as stored and shown: data shared by the presence handler and its
store (imports nothing else of ours).

spec: client-server-api/modules/presence.md
"""

from __future__ import annotations

from typing import Any, Final

import attrs

ONLINE: Final = "online"
UNAVAILABLE: Final = "unavailable"
OFFLINE: Final = "offline"
PRESENCE_STATES: Final = (ONLINE, UNAVAILABLE, OFFLINE)


@attrs.frozen
class UserPresence:
    user_id: str
    state: str = OFFLINE
    status_msg: str | None = None
    #: Milliseconds; 0: never active.
    last_active_ts: int = 0
    #: When the user's last /sync, stream or heartbeat was seen (milliseconds).
    last_user_sync_ts: int = 0
    currently_active: bool = False

    def announces_change_from(self, before: UserPresence) -> bool:
        """Whether others must be told: what they see differs."""
        return (
            self.state != before.state
            or self.status_msg != before.status_msg
            or self.currently_active != before.currently_active
        )

    def content(self, now_ms: int) -> dict[str, Any]:
        """The ``m.presence`` event content as of ``now_ms``.

        spec: client-server-api/modules/presence.md#mpresence
        """
        body: dict[str, Any] = {"presence": self.state}
        if self.last_active_ts:
            body["last_active_ago"] = max(now_ms - self.last_active_ts, 0)
        if self.state != OFFLINE:
            body["currently_active"] = self.currently_active
        if self.status_msg is not None:
            body["status_msg"] = self.status_msg
        return body

    def event(self, now_ms: int) -> dict[str, Any]:
        return {"type": "m.presence", "sender": self.user_id, "content": self.content(now_ms)}
