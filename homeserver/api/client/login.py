"""Login, login tokens, token refresh and logout.

spec: client-server-api/_index.md#get_matrixclientv3login, #post_matrixclientv3login,
#post_matrixclientv1loginget_token, #post_matrixclientv3refresh,
#post_matrixclientv3logout, #post_matrixclientv3logoutall
"""

from __future__ import annotations

from typing import Any

from homeserver.auth.account import AccountHandler
from homeserver.auth.login import PASSWORD_LOGIN, TOKEN_LOGIN, LoginHandler, LoginRequest
from homeserver.auth.password_auth import PasswordAuthenticator, user_from_identifier
from homeserver.auth.refresh import RefreshHandler
from homeserver.auth.tokens import IssuedSession
from homeserver.auth.uia import UserInteractiveAuth
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import optional_bool, optional_str, parse_json_object, require_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def session_json(
    session: IssuedSession, server_name: str, well_known: dict[str, Any]
) -> dict[str, Any]:
    """The body of a successful login or registration."""
    body: dict[str, Any] = {
        "user_id": session.user_id,
        "access_token": session.access_token,
        "device_id": session.device_id,
        # Deprecated in the spec, but clients still read it.
        "home_server": server_name,
        "well_known": well_known,
    }
    if session.refresh_token is not None:
        body["refresh_token"] = session.refresh_token
    if session.expires_in_ms is not None:
        body["expires_in_ms"] = session.expires_in_ms
    return body


def parse_login_request(body: dict[str, Any]) -> LoginRequest:
    login_type = require_str(body, "type")
    user = password = token = None
    if login_type == PASSWORD_LOGIN:
        user = user_from_identifier(body)
        password = require_str(body, "password")
    elif login_type == TOKEN_LOGIN:
        token = require_str(body, "token")
    return LoginRequest(
        login_type=login_type,
        user=user,
        password=password,
        token=token,
        device_id=optional_str(body, "device_id"),
        initial_device_display_name=optional_str(body, "initial_device_display_name"),
        refresh_token=optional_bool(body, "refresh_token", False),
    )


def register(
    router: Router,
    *,
    server_name: str,
    well_known: dict[str, Any],
    authenticator: RequestAuthenticator,
    login: LoginHandler,
    refresh: RefreshHandler,
    account: AccountHandler,
    passwords: PasswordAuthenticator,
    uia: UserInteractiveAuth,
) -> None:
    async def get_login(request: MatrixRequest) -> tuple[int, Any]:
        return 200, {"flows": login.flows()}

    async def post_login(request: MatrixRequest) -> tuple[int, Any]:
        parsed = parse_login_request(parse_json_object(request))
        session = await login.login(parsed, request.client_ip())
        request.authenticated_user = session.user_id
        return 200, session_json(session, server_name, well_known)

    async def get_token(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        await uia.authenticate(
            body,
            operation="login/get_token",
            flows=await passwords.uia_flows(requester.user_id),
            requester_user_id=requester.user_id,
            client_ip=request.client_ip(),
        )
        token, expires_in_ms = await login.create_login_token(requester.user_id)
        return 200, {"login_token": token, "expires_in_ms": expires_in_ms}

    async def post_refresh(request: MatrixRequest) -> tuple[int, Any]:
        body = parse_json_object(request)
        session = await refresh.refresh(require_str(body, "refresh_token"))
        return 200, {
            "access_token": session.access_token,
            "refresh_token": session.refresh_token,
            "expires_in_ms": session.expires_in_ms,
        }

    async def logout(request: MatrixRequest) -> tuple[int, Any]:
        await account.logout(await authenticator.requester(request))
        return 200, {}

    async def logout_all(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        await account.logout_all(requester.user_id)
        return 200, {}

    for path in client_paths("/login"):
        router.register("GET", path, get_login)
        router.register("POST", path, post_login)
    for path in client_paths("/login/get_token", ("v1",)):
        router.register("POST", path, get_token)
    for path in client_paths("/refresh", ("v3", "v1")):
        router.register("POST", path, post_refresh)
    for path in client_paths("/logout"):
        router.register("POST", path, logout)
    for path in client_paths("/logout/all"):
        router.register("POST", path, logout_all)
