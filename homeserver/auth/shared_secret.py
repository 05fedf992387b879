"""Registration with the server's shared secret, compatible with Synapse's admin API.

A client fetches a nonce, then posts the account details with
``HMAC-SHA1(secret, nonce NUL username NUL password NUL "admin"|"notadmin" [NUL user_type])``.
Tooling written for Synapse (``register_new_matrix_user``, deployment scripts)
works unchanged.  Nonces are single-use and expire after a minute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http import HTTPStatus

import attrs

from homeserver import errors
from homeserver.auth.registration import RegistrationHandler
from homeserver.auth.tokens import AccessTokenHandler
from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError
from homeserver.ratelimit import RateLimiter

NONCE_LIFETIME_SECONDS = 60.0
USER_TYPES = frozenset({"bot", "support"})


def registration_mac(
    secret: str,
    nonce: str,
    username: str,
    password: str,
    admin: bool,
    user_type: str | None = None,
) -> str:
    """The hex HMAC the client must send (also used by ``homeserver register-user --url``)."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
    mac.update(nonce.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(username.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(password.encode("utf-8"))
    mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    if user_type is not None:
        mac.update(b"\x00")
        mac.update(user_type.encode("utf-8"))
    return mac.hexdigest()


@attrs.frozen
class SharedSecretRequest:
    nonce: str
    username: str
    password: str
    admin: bool
    user_type: str | None
    mac: str
    client_ip: str


@attrs.frozen
class RegisteredAccount:
    user_id: str
    access_token: str
    device_id: str


class SharedSecretRegistration:
    def __init__(
        self,
        secret: str | None,
        clock: Clock,
        registration: RegistrationHandler,
        tokens: AccessTokenHandler,
        failed_attempts: RateLimiter,
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._registration = registration
        self._tokens = tokens
        self._failed_attempts = failed_attempts
        self._nonces: dict[str, float] = {}

    def _require_enabled(self) -> str:
        if not self._secret:
            raise MatrixError(
                HTTPStatus.BAD_REQUEST, Codes.UNKNOWN, "Shared secret registration is not enabled"
            )
        return self._secret

    def new_nonce(self) -> str:
        self._require_enabled()
        now = self._clock.time()
        # Expired nonces are dropped here, so the table only holds the last minute's.
        for nonce, issued in list(self._nonces.items()):
            if now - issued > NONCE_LIFETIME_SECONDS:
                del self._nonces[nonce]
        nonce = secrets.token_hex(32)
        self._nonces[nonce] = now
        return nonce

    async def register(self, request: SharedSecretRequest) -> RegisteredAccount:
        secret = self._require_enabled()
        if request.user_type is not None and request.user_type not in USER_TYPES:
            raise errors.invalid_param(f"user_type must be one of {', '.join(sorted(USER_TYPES))}")
        # Refuse early while this address is locked out for guessing MACs.
        if self._failed_attempts.check(request.client_ip, update=False) > 0:
            self._failed_attempts.ratelimit(request.client_ip)
        issued = self._nonces.pop(request.nonce, None)
        if issued is None or self._clock.time() - issued > NONCE_LIFETIME_SECONDS:
            raise errors.invalid_param("Unrecognised or expired nonce")
        expected = registration_mac(
            secret,
            request.nonce,
            request.username,
            request.password,
            request.admin,
            request.user_type,
        )
        if not hmac.compare_digest(expected, request.mac.lower()):
            self._failed_attempts.check(request.client_ip)
            raise errors.forbidden("HMAC incorrect")
        # The MAC covers the name as sent; the account gets it lowercased, as Synapse
        # registers ``username.lower()`` (user IDs are lowercase, spec: appendices#user-identifiers).
        user_id = await self._registration.register_user(
            request.username.lower(),
            request.password,
            admin=request.admin,
            user_type=request.user_type,
        )
        session = await self._tokens.create_session(user_id, None)
        return RegisteredAccount(
            user_id=user_id, access_token=session.access_token, device_id=session.device_id
        )
