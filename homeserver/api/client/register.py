"""Account registration: ``/register``, ``/register/available`` and token validity.

spec: client-server-api/_index.md#post_matrixclientv3register,
#get_matrixclientv3registeravailable,
#get_matrixclientv1registermloginregistration_tokenvalidity
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.api.client.login import session_json
from homeserver.auth.client_registration import ClientRegistrationHandler, RegisterRequest
from homeserver.auth.registration_tokens import RegistrationTokenHandler
from homeserver.auth.uia import REGISTRATION_TOKEN, UserInteractiveAuth
from homeserver.http.parsing import (
    optional_bool,
    optional_str,
    parse_json_object,
    parse_optional_json_object,
    query_str,
)
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.ratelimit import RateLimiter


def parse_register_request(body: dict[str, Any]) -> RegisterRequest:
    return RegisterRequest(
        username=optional_str(body, "username"),
        password=optional_str(body, "password"),
        device_id=optional_str(body, "device_id"),
        initial_device_display_name=optional_str(body, "initial_device_display_name"),
        inhibit_login=optional_bool(body, "inhibit_login", False),
        refresh_token=optional_bool(body, "refresh_token", False),
        guest_access_token=optional_str(body, "guest_access_token"),
    )


def register(
    router: Router,
    *,
    server_name: str,
    well_known: dict[str, Any],
    registration: ClientRegistrationHandler,
    registration_tokens: RegistrationTokenHandler,
    uia: UserInteractiveAuth,
    lookup_limiter: RateLimiter,
) -> None:
    async def post_register(request: MatrixRequest) -> tuple[int, Any]:
        kind = query_str(request, "kind", "user")
        if kind == "guest":
            return await post_register_guest(request)
        if kind != "user":
            raise errors.invalid_param("kind must be 'user' or 'guest'")
        registration.require_enabled()
        client_ip = request.client_ip()
        body = parse_json_object(request)
        registration.check_rate_limit(client_ip)
        # Problems with the request itself are reported before any auth stage.
        early = parse_register_request(body)
        if early.username is not None:
            await registration.check_username(early.username, early.guest_access_token)
        result = await uia.authenticate(
            body, operation="register", flows=registration.flows(), client_ip=client_ip
        )
        parsed = parse_register_request(result.params)
        user_id, session = await registration.register(
            parsed,
            client_ip=client_ip,
            registration_token=result.results.get(REGISTRATION_TOKEN),
        )
        request.authenticated_user = user_id
        if session is None:
            return 200, {"user_id": user_id, "home_server": server_name}
        return 200, session_json(session, server_name, well_known)

    async def post_register_guest(request: MatrixRequest) -> tuple[int, Any]:
        """spec: modules/guest_access.md — no UIA; every body parameter except
        ``initial_device_display_name`` is ignored."""
        body = parse_optional_json_object(request)
        display_name = body.get("initial_device_display_name")
        session = await registration.register_guest(
            client_ip=request.client_ip(),
            initial_device_display_name=display_name if isinstance(display_name, str) else None,
        )
        request.authenticated_user = session.user_id
        return 200, session_json(session, server_name, well_known)

    async def get_available(request: MatrixRequest) -> tuple[int, Any]:
        registration.require_enabled()
        lookup_limiter.ratelimit(request.client_ip())
        username = query_str(request, "username")
        if username is None:
            raise errors.missing_param("username")
        await registration.check_username(username)
        return 200, {"available": True}

    async def get_token_validity(request: MatrixRequest) -> tuple[int, Any]:
        registration.require_enabled()
        lookup_limiter.ratelimit(request.client_ip())
        token = query_str(request, "token")
        if token is None:
            raise errors.missing_param("token")
        return 200, {"valid": await registration_tokens.is_valid(token)}

    for path in client_paths("/register"):
        router.register("POST", path, post_register)
    for path in client_paths("/register/available"):
        router.register("GET", path, get_available)
    for path in client_paths("/register/m.login.registration_token/validity", ("v1",)):
        router.register("GET", path, get_token_validity)
