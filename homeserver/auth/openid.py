"""OpenID tokens: a user proves who they are to a third party (an integration
manager, a widget) without handing over their access token.  The third party asks
this server's federation API (``/openid/userinfo``) whom a token belongs to.

Tokens are random, live :data:`TOKEN_LIFETIME_MS`, and are kept in the database
(hashed), so they survive a restart and every process knows them.  A user holds at
most :data:`MAX_TOKENS_PER_USER` live tokens: issuing one more retires the oldest,
so a client asking in a loop cannot grow the table.

spec: client-server-api/_index.md#openid (data/api/client-server/openid.yaml),
server-server-api.md#openid
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Protocol

import attrs

from homeserver import errors
from homeserver.clock import Clock

#: How long a token is valid (Synapse's ``openid_token_lifetime`` default: one hour).
TOKEN_LIFETIME_MS = 3_600_000
#: Most live tokens one user holds; far more than a client asks for in an hour
#: (one per widget or integration manager opened).
MAX_TOKENS_PER_USER = 50


class OpenIdTokenStorage(Protocol):
    """``homeserver.storage.openid_tokens.OpenIdTokenStore``."""

    async def add_token(
        self, token_hash: str, user_id: str, expires_ts: int, *, now_ms: int, max_per_user: int
    ) -> None: ...

    async def user_of_token(self, token_hash: str, now_ms: int) -> str | None: ...


@attrs.frozen
class OpenIdToken:
    access_token: str
    token_type: str
    matrix_server_name: str
    expires_in: int  # seconds

    def to_json(self) -> dict[str, object]:
        return attrs.asdict(self)


class OpenIdTokens:
    def __init__(self, *, server_name: str, clock: Clock, store: OpenIdTokenStorage) -> None:
        self._server_name = server_name
        self._clock = clock
        self._store = store

    async def issue(self, requester_user_id: str, user_id: str) -> OpenIdToken:
        """A new token for ``user_id``, who must be the requester (403 otherwise)."""
        if user_id != requester_user_id:
            raise errors.forbidden("Cannot request tokens for other users.")
        now = self._clock.time_msec()
        token = secrets.token_urlsafe(32)
        await self._store.add_token(
            _digest(token),
            user_id,
            now + TOKEN_LIFETIME_MS,
            now_ms=now,
            max_per_user=MAX_TOKENS_PER_USER,
        )
        return OpenIdToken(token, "Bearer", self._server_name, TOKEN_LIFETIME_MS // 1000)

    async def user_of(self, token: str) -> str | None:
        """Whose ``token`` is; None if it is unknown or expired."""
        if not token or len(token) > 512:
            return None
        return await self._store.user_of_token(_digest(token), self._clock.time_msec())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
