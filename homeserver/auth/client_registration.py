"""Registration through ``POST /register``: who may register and what they get.

Registration is closed unless ``enable_registration``; with
``registration_requires_token`` the UIA flow is the registration-token stage,
otherwise a dummy stage.  Accounts are limited per client address
(``rc_registration``), counted when an account is created.

Guest accounts (``?kind=guest``) need ``allow_guest_access`` and nothing else, as in
Synapse: no UIA, a generated numeric user ID, a device ID the server picks.  A guest
becomes an ordinary account by registering with ``guest_access_token`` and their own
localpart as ``username``.

spec: client-server-api/_index.md#post_matrixclientv3register, modules/guest_access.md
"""

from __future__ import annotations

import attrs

from homeserver import errors
from homeserver.auth.registration import RegistrationHandler
from homeserver.auth.registration_tokens import RegistrationTokenHandler
from homeserver.auth.tokens import AccessTokenHandler, IssuedSession, Requester
from homeserver.auth.uia import DUMMY, REGISTRATION_TOKEN, Flows
from homeserver.ratelimit import RateLimiter


@attrs.frozen
class RegisterRequest:
    username: str | None
    password: str | None
    device_id: str | None
    initial_device_display_name: str | None
    inhibit_login: bool
    refresh_token: bool
    #: The access token of the guest account this registration upgrades.
    guest_access_token: str | None = None


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
        allow_guests: bool = False,
    ) -> None:
        self.enabled = enabled
        self.allow_guests = allow_guests
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

    async def check_username(self, username: str, guest_access_token: str | None = None) -> str:
        """Validate a chosen username (lowercased, as Synapse does) before UIA starts.

        With ``guest_access_token`` the username must be that guest's own localpart.
        """
        if guest_access_token is not None:
            return (await self._upgrading_guest(username.lower(), guest_access_token)).user_id
        return await self._registration.check_available(username.lower())

    async def _upgrading_guest(self, localpart: str, guest_access_token: str) -> Requester:
        """The guest that ``guest_access_token`` belongs to, if ``localpart`` is theirs.

        As Synapse: 403 unless the token is a valid guest token for that very user.
        """
        user_id = self._registration.user_id_for(localpart)
        try:
            guest = await self._tokens.requester_for_token(guest_access_token)
        except errors.MatrixError:
            guest = None
        if guest is None or not guest.is_guest or guest.user_id != user_id:
            raise errors.forbidden(
                "Cannot register taken user ID without valid guest credentials for that user"
            )
        return guest

    async def register_guest(
        self, *, client_ip: str, initial_device_display_name: str | None
    ) -> IssuedSession:
        """A new guest account and its session.

        spec: #post_matrixclientv3register — for guests every body parameter but
        ``initial_device_display_name`` is ignored and the server picks the device ID.
        """
        if not self.allow_guests:
            raise errors.MatrixError(
                403, errors.Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is disabled"
            )
        self.check_rate_limit(client_ip)
        localpart = await self._registration.generate_localpart()
        user_id = await self._registration.register_user(localpart, None, guest=True)
        self._limiter.check(client_ip)
        return await self._tokens.create_session(
            user_id, None, display_name=initial_device_display_name
        )

    async def register(
        self, request: RegisterRequest, *, client_ip: str, registration_token: str | None
    ) -> tuple[str, IssuedSession | None]:
        """Create the account (UIA already passed); the user ID and, unless
        ``inhibit_login``, the new session."""
        try:
            self.check_rate_limit(client_ip)
            if request.guest_access_token is not None:
                if request.username is None:
                    # spec: modules/guest_access.md — upgrading guests must name themselves.
                    raise errors.missing_param("username")
                guest = await self._upgrading_guest(
                    request.username.lower(), request.guest_access_token
                )
                user_id = guest.user_id
                await self._registration.upgrade_guest(user_id, request.password)
                # Cached tokens of the account still say "guest".
                self._tokens.invalidate_user(user_id)
            else:
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
