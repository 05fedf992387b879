"""``GET /capabilities``: what this server lets clients do.

spec: client-server-api/_index.md#capabilities-negotiation
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.profile.fields import PROFILE_FIELDS


def capabilities(*, password_enabled: bool, default_room_version: str) -> dict[str, Any]:
    return {
        "m.change_password": {"enabled": password_enabled},
        "m.room_versions": {
            "default": default_room_version,
            "available": {version: "stable" for version in KNOWN_ROOM_VERSIONS},
        },
        "m.set_displayname": {"enabled": True},
        "m.set_avatar_url": {"enabled": True},
        "m.profile_fields": {"enabled": True, "allowed": list(PROFILE_FIELDS)},
        "m.3pid_changes": {"enabled": False},
        "m.get_login_token": {"enabled": True},
    }


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    password_enabled: bool,
    default_room_version: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """``extra``: capabilities of optional features (``m.webpush``, MSC4174)."""
    body = {
        "capabilities": {
            **capabilities(
                password_enabled=password_enabled, default_room_version=default_room_version
            ),
            **(extra or {}),
        }
    }

    async def get_capabilities(request: MatrixRequest) -> tuple[int, Any]:
        await authenticator.requester(request)
        return 200, body

    for path in client_paths("/capabilities"):
        router.register("GET", path, get_capabilities)
