"""Registration through ``POST /register``: who may register and what they get.

Registration is closed unless ``enable_registration``; with
``registration_requires_token`` the UIA flow is the registration-token stage,
otherwise a dummy stage.  Accounts are limited per client address
(``rc_registration``), counted when an account is created.

spec: client-server-api/_index.md#post_matrixclientv3register
"""

from __future__ import annotations

import attrs

from homeserver.auth.registration import RegistrationHandler
from homeserver.auth.registration_tokens import RegistrationTokenHandler
from homeserver.auth.tokens import AccessTokenHandler, IssuedSession
from homeserver.auth.uia import DUMMY, REGISTRATION_TOKEN, Flows
from homeserver.http import errors
from homeserver.ratelimit import RateLimiter


@attrs.frozen
class RegisterRequest:
    username: str | None
    password: str | None
    device_id: str | None
    initial_device_display_name: str | None
    inhibit_login: bool
    refresh_token: bool


class ClientRegistrationHandler:
    def __init__(
        self,
        *,
        enabled: bool,
        requires_token: bool,
        registration: RegistrationHandler,
        tokens: AccessTokenHandler,
        registration_tokens: RegistrationTokenHandler,
        limiter: RateLimiter,
    ) -> None:
        self.enabled = enabled
        self.requires_token = requires_token
        self._registration = registration
        self._tokens = tokens
        self._registration_tokens = registration_tokens
        self._limiter = limiter

    def require_enabled(self) -> None:
        if not self.enabled:
            raise errors.forbidden("Registration has been disabled")

    def flows(self) -> Flows:
        return [[REGISTRATION_TOKEN]] if self.requires_token else [[DUMMY]]

    def check_rate_limit(self, client_ip: str) -> None:
        """429 while this address may not create another account (takes nothing)."""
        wait = self._limiter.check(client_ip, update=False)
        if wait > 0:
            raise errors.limit_exceeded(wait)

    async def check_username(self, username: str) -> str:
        """Validate a chosen username (lowercased, as Synapse does) before UIA starts."""
        return await self._registration.check_available(username.lower())

    async def register(
        self, request: RegisterRequest, *, client_ip: str, registration_token: str | None
    ) -> tuple[str, IssuedSession | None]:
        """Create the account (UIA already passed); the user ID and, unless
        ``inhibit_login``, the new session."""
        try:
            self.check_rate_limit(client_ip)
            if request.username is not None:
                localpart = request.username.lower()
                await self._registration.check_available(localpart)
            else:
                localpart = await self._registration.generate_localpart()
            user_id = await self._registration.register_user(localpart, request.password)
        except Exception:
            if registration_token is not None:
                await self._registration_tokens.registration_abandoned(registration_token)
            raise
        self._limiter.check(client_ip)
        if registration_token is not None:
            await self._registration_tokens.registration_finished(registration_token)
        if request.inhibit_login:
            return user_id, None
        session = await self._tokens.create_session(
            user_id,
            request.device_id,
            display_name=request.initial_device_display_name,
            refreshable=request.refresh_token,
        )
        return user_id, session
