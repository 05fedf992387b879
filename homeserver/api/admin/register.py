"""``/_synapse/admin/v1/register``: shared-secret registration, as Synapse serves it."""

from __future__ import annotations

from typing import Any

from homeserver.auth.shared_secret import SharedSecretRegistration, SharedSecretRequest
from homeserver.http.parsing import optional_bool, optional_str, parse_json_object, require_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router

PATH = "/_synapse/admin/v1/register"


def register(router: Router, *, server_name: str, shared_secret: SharedSecretRegistration) -> None:
    async def get_nonce(request: MatrixRequest) -> tuple[int, Any]:
        return 200, {"nonce": shared_secret.new_nonce()}

    async def post_register(request: MatrixRequest) -> tuple[int, Any]:
        body = parse_json_object(request)
        account = await shared_secret.register(
            SharedSecretRequest(
                nonce=require_str(body, "nonce"),
                username=require_str(body, "username"),
                password=require_str(body, "password"),
                admin=optional_bool(body, "admin", False),
                user_type=optional_str(body, "user_type"),
                mac=require_str(body, "mac"),
                client_ip=request.client_ip(),
            )
        )
        request.authenticated_user = account.user_id
        return 200, {
            "user_id": account.user_id,
            "access_token": account.access_token,
            "device_id": account.device_id,
            "home_server": server_name,
        }

    router.register("GET", PATH, get_nonce)
    router.register("POST", PATH, post_register)
