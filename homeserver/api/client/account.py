"""Account endpoints: ``/account/whoami``, ``/account/password``, ``/account/deactivate``.

spec: client-server-api/_index.md#get_matrixclientv3accountwhoami,
#post_matrixclientv3accountpassword, #post_matrixclientv3accountdeactivate
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.auth.account import AccountHandler
from homeserver.auth.password_auth import PasswordAuthenticator
from homeserver.auth.tokens import Requester
from homeserver.auth.uia import PASSWORD, UiaResult, UserInteractiveAuth
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import optional_bool, optional_str, parse_json_object, require_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def register(router: Router, *, authenticator: RequestAuthenticator) -> None:
    async def whoami(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body: dict[str, Any] = {"user_id": requester.user_id, "is_guest": False}
        if requester.device_id is not None:
            body["device_id"] = requester.device_id
        return 200, body

    for path in client_paths("/account/whoami"):
        router.register("GET", path, whoami)


def register_management(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    account: AccountHandler,
    passwords: PasswordAuthenticator,
    uia: UserInteractiveAuth,
) -> None:
    async def authenticate(
        request: MatrixRequest, body: dict[str, Any], operation: str
    ) -> tuple[str, Requester | None, UiaResult]:
        """UIA for an account action; works with or without an access token (the spec
        makes it optional: the password stage then says who the user is)."""
        requester = await authenticator.optional_requester(request)
        if requester is not None:
            flows = await passwords.uia_flows(requester.user_id)
        else:
            flows = [[PASSWORD]]
        result = await uia.authenticate(
            body,
            operation=operation,
            flows=flows,
            requester_user_id=None if requester is None else requester.user_id,
            client_ip=request.client_ip(),
        )
        user_id = requester.user_id if requester is not None else result.results[PASSWORD]
        return user_id, requester, result

    async def change_password(request: MatrixRequest) -> tuple[int, Any]:
        if not passwords.password_login_enabled:
            raise errors.forbidden("Password changes are disabled on this server")
        body = parse_json_object(request)
        if "new_password" in body:
            require_str(body, "new_password")
        optional_bool(body, "logout_devices", True)
        user_id, requester, result = await authenticate(request, body, "account/password")
        await account.change_password(
            user_id,
            require_str(result.params, "new_password"),
            logout_devices=optional_bool(result.params, "logout_devices", True),
            keep=requester,
        )
        return 200, {}

    async def deactivate(request: MatrixRequest) -> tuple[int, Any]:
        body = parse_json_object(request)
        optional_bool(body, "erase", False)
        optional_str(body, "id_server")
        user_id, _, result = await authenticate(request, body, "account/deactivate")
        await account.deactivate(user_id, erase=optional_bool(result.params, "erase", False))
        # No identity server bindings are ever made, so there is nothing to unbind.
        return 200, {"id_server_unbind_result": "no-support"}

    for path in client_paths("/account/password"):
        router.register("POST", path, change_password)
    for path in client_paths("/account/deactivate"):
        router.register("POST", path, deactivate)
