"""Logging in: password and login-token logins, and issuing login tokens.

spec: client-server-api/_index.md#post_matrixclientv3login,
#post_matrixclientv1loginget_token
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import attrs

from homeserver import errors
from homeserver.auth.password_auth import PasswordAuthenticator
from homeserver.auth.tokens import AccessTokenHandler, IssuedSession, generate_token, hash_token
from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError
from homeserver.ratelimit import RateLimiter
from homeserver.storage.login_tokens import LoginTokenStore
from homeserver.storage.users import UserStore

PASSWORD_LOGIN = "m.login.password"
TOKEN_LOGIN = "m.login.token"
#: How long a token from /login/get_token can be used (the spec's example value).
LOGIN_TOKEN_LIFETIME_MS = 120_000
LOGIN_TOKEN_PREFIX = "mhl_"


@attrs.frozen
class LoginRequest:
    login_type: str
    #: For m.login.password: the user (localpart or user ID) and password.
    user: str | None = None
    password: str | None = None
    #: For m.login.token.
    token: str | None = None
    device_id: str | None = None
    initial_device_display_name: str | None = None
    refresh_token: bool = False


class LoginHandler:
    def __init__(
        self,
        clock: Clock,
        users: UserStore,
        tokens: AccessTokenHandler,
        passwords: PasswordAuthenticator,
        login_tokens: LoginTokenStore,
        *,
        password_login_enabled: bool,
        address_limiter: RateLimiter,
        account_limiter: RateLimiter,
    ) -> None:
        self._clock = clock
        self._users = users
        self._tokens = tokens
        self._passwords = passwords
        self._login_tokens = login_tokens
        self.password_login_enabled = password_login_enabled
        self._address_limiter = address_limiter
        self._account_limiter = account_limiter

    def flows(self) -> list[dict[str, Any]]:
        flows: list[dict[str, Any]] = []
        if self.password_login_enabled:
            flows.append({"type": PASSWORD_LOGIN})
        flows.append({"type": TOKEN_LOGIN, "get_login_token": True})
        return flows

    async def login(self, request: LoginRequest, client_ip: str) -> IssuedSession:
        self._address_limiter.ratelimit(client_ip)
        if request.login_type == PASSWORD_LOGIN and self.password_login_enabled:
            assert request.user is not None and request.password is not None
            # Counted per account before checking, so guessing across IPs is limited too.
            self._account_limiter.ratelimit(self._passwords.qualify(request.user).lower())
            user_id = await self._passwords.check_password(request.user, request.password)
        elif request.login_type == TOKEN_LOGIN:
            assert request.token is not None
            user_id = await self._user_for_login_token(request.token)
        else:
            raise MatrixError(HTTPStatus.BAD_REQUEST, Codes.UNKNOWN, "Unknown login type")
        return await self._tokens.create_session(
            user_id,
            request.device_id,
            display_name=request.initial_device_display_name,
            refreshable=request.refresh_token,
        )

    async def _user_for_login_token(self, token: str) -> str:
        user_id = await self._login_tokens.consume_login_token(
            hash_token(token), self._clock.time_msec()
        )
        if user_id is None:
            raise errors.forbidden("Invalid or expired login token")
        record = await self._users.get_user(user_id)
        if record is None:
            raise errors.forbidden("Invalid or expired login token")
        if record.deactivated:
            raise MatrixError(
                HTTPStatus.FORBIDDEN, Codes.USER_DEACTIVATED, "This account has been deactivated"
            )
        return user_id

    async def create_login_token(self, user_id: str) -> tuple[str, int]:
        """A single-use token another device can log in with: ``(token, expires_in_ms)``."""
        token = generate_token(LOGIN_TOKEN_PREFIX)
        expires = self._clock.time_msec() + LOGIN_TOKEN_LIFETIME_MS
        await self._login_tokens.add_login_token(hash_token(token), user_id, expires)
        return token, LOGIN_TOKEN_LIFETIME_MS
