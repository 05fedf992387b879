"""Creating accounts on a running test server through the shared-secret admin API."""

from __future__ import annotations

from typing import Any

from homeserver.auth.shared_secret import registration_mac
from tests.support.http import Response
from tests.support.server_process import ServerProcess

SHARED_SECRET = "test-shared-secret"
ADMIN_REGISTER = "/_synapse/admin/v1/register"


def register_with_secret(
    server: ServerProcess,
    username: str,
    password: str = "correct horse",
    *,
    admin: bool = False,
    secret: str = SHARED_SECRET,
    headers: dict[str, str] | None = None,
) -> Response:
    nonce = server.request("GET", ADMIN_REGISTER).json()["nonce"]
    body: dict[str, Any] = {
        "nonce": nonce,
        "username": username,
        "password": password,
        "admin": admin,
        "mac": registration_mac(secret, nonce, username, password, admin),
    }
    return server.request("POST", ADMIN_REGISTER, json_body=body, headers=headers)
