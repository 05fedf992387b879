"""What guest accounts may do: the spec's list of endpoints open to guests.

Every authenticated request passes through :class:`homeserver.http.auth.RequestAuthenticator`,
which refuses guests with 403 ``M_GUEST_ACCESS_FORBIDDEN`` unless the request's
method and path are on this list.  Keeping the list here, in the spec's words, means
a new servlet is closed to guests until someone decides otherwise.

spec: client-server-api/modules/guest_access.md#client-behaviour
"""

from __future__ import annotations

import re

from homeserver.errors import Codes, MatrixError

#: ``(method, path after /_matrix/client/<version>)``; ``{...}`` is one path segment,
#: which only for ``{stateKey}`` may be empty (``/state/m.room.name/``).
GUEST_ENDPOINTS: tuple[tuple[str, str], ...] = (
    # Retrieving events and associated media.
    ("GET", "/rooms/{roomId}/state"),
    ("GET", "/rooms/{roomId}/context/{eventId}"),
    ("GET", "/rooms/{roomId}/event/{eventId}"),
    ("GET", "/rooms/{roomId}/state/{eventType}"),
    ("GET", "/rooms/{roomId}/state/{eventType}/{stateKey}"),
    ("GET", "/rooms/{roomId}/messages"),
    ("GET", "/rooms/{roomId}/members"),
    ("GET", "/rooms/{roomId}/initialSync"),
    ("GET", "/sync"),
    ("GET", "/events"),
    ("GET", "/media/download/{serverName}/{mediaId}"),
    ("GET", "/media/download/{serverName}/{mediaId}/{fileName}"),
    ("GET", "/media/thumbnail/{serverName}/{mediaId}"),
    # Sending events.
    ("POST", "/rooms/{roomId}/join"),
    ("POST", "/rooms/{roomId}/leave"),
    ("PUT", "/rooms/{roomId}/send/{eventType}/{txnId}"),
    ("PUT", "/rooms/{roomId}/state/{eventType}"),
    ("PUT", "/rooms/{roomId}/state/{eventType}/{stateKey}"),
    ("PUT", "/sendToDevice/{eventType}/{txnId}"),
    # Their own account: only the display name of their profile.
    ("PUT", "/profile/{userId}/displayname"),
    ("DELETE", "/profile/{userId}/displayname"),
    ("GET", "/devices"),
    ("GET", "/devices/{deviceId}"),
    ("PUT", "/devices/{deviceId}"),
    ("GET", "/account/whoami"),
    # End-to-end encryption.
    ("POST", "/keys/upload"),
    ("POST", "/keys/query"),
    ("POST", "/keys/claim"),
)

_PLACEHOLDER = re.compile(r"\{[a-zA-Z]+\}")


def _compile(endpoints: tuple[tuple[str, str], ...]) -> dict[str, re.Pattern[str]]:
    by_method: dict[str, list[str]] = {}
    for method, path in endpoints:
        parts: list[str] = []
        position = 0
        for placeholder in _PLACEHOLDER.finditer(path):
            parts.append(re.escape(path[position : placeholder.start()]))
            parts.append("[^/]*" if placeholder.group() == "{stateKey}" else "[^/]+")
            position = placeholder.end()
        parts.append(re.escape(path[position:]))
        by_method.setdefault(method, []).append("".join(parts))
    # Any client API version: guests use the same versions as everyone else.
    return {
        method: re.compile(r"^/_matrix/client/[^/]+(?:" + "|".join(paths) + ")$")
        for method, paths in by_method.items()
    }


_ALLOWED = _compile(GUEST_ENDPOINTS)


def guest_may_use(method: str, path: str) -> bool:
    """Whether a guest may call ``method path`` (path still percent-encoded)."""
    if method == "HEAD":
        method = "GET"
    pattern = _ALLOWED.get(method)
    return pattern is not None and pattern.match(path) is not None


def guest_access_forbidden() -> MatrixError:
    return MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access not allowed")
