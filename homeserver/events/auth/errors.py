"""The single exception the authorization rules raise.

spec: server-server-api.md#authorisation-rules
"""

from __future__ import annotations


class AuthError(Exception):
    """An event is not allowed by the authorization rules.

    ``reason`` names the rule that failed, in words a log reader can act on
    (e.g. ``"sender is not joined to the room"``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"AuthError({self.reason!r})"
