"""``/_synapse/admin/v1/registration_tokens``: managing registration tokens, as Synapse
serves it, so its admin tools work.  Server admins only."""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.auth.registration_tokens import RegistrationTokenHandler, token_json
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router

PATH = "/_synapse/admin/v1/registration_tokens"


def register(
    router: Router, *, authenticator: RequestAuthenticator, tokens: RegistrationTokenHandler
) -> None:
    async def require_admin(request: MatrixRequest) -> None:
        requester = await authenticator.requester(request)
        if not requester.is_admin:
            raise errors.forbidden("You are not a server admin")

    async def list_tokens(request: MatrixRequest) -> tuple[int, Any]:
        await require_admin(request)
        valid_arg = query_str(request, "valid")
        if valid_arg not in (None, "true", "false"):
            raise errors.invalid_param("valid must be 'true' or 'false'")
        valid = None if valid_arg is None else valid_arg == "true"
        found = await tokens.list_tokens(valid)
        return 200, {"registration_tokens": [token_json(t) for t in found]}

    async def create_token(request: MatrixRequest) -> tuple[int, Any]:
        await require_admin(request)
        return 200, token_json(await tokens.create(parse_json_object(request)))

    async def get_token(request: MatrixRequest, token: str) -> tuple[int, Any]:
        await require_admin(request)
        return 200, token_json(await tokens.get(token))

    async def update_token(request: MatrixRequest, token: str) -> tuple[int, Any]:
        await require_admin(request)
        return 200, token_json(await tokens.update(token, parse_json_object(request)))

    async def delete_token(request: MatrixRequest, token: str) -> tuple[int, Any]:
        await require_admin(request)
        await tokens.delete(token)
        return 200, {}

    router.register("GET", PATH, list_tokens)
    router.register("POST", PATH + "/new", create_token)
    router.register("GET", PATH + "/{token}", get_token)
    router.register("PUT", PATH + "/{token}", update_token)
    router.register("DELETE", PATH + "/{token}", delete_token)
