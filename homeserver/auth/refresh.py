"""Renewing access tokens with refresh tokens.

spec: client-server-api/_index.md#refreshing-access-tokens, #post_matrixclientv3refresh
"""

from __future__ import annotations

from homeserver import errors
from homeserver.auth.tokens import (
    REFRESH_TOKEN_PREFIX,
    AccessTokenHandler,
    IssuedSession,
    generate_token,
    hash_token,
)
from homeserver.clock import Clock
from homeserver.storage.refresh_tokens import RefreshTokenStore
from homeserver.storage.users import UserStore


class RefreshHandler:
    def __init__(
        self,
        clock: Clock,
        users: UserStore,
        refresh_tokens: RefreshTokenStore,
        tokens: AccessTokenHandler,
    ) -> None:
        self._clock = clock
        self._users = users
        self._refresh_tokens = refresh_tokens
        self._tokens = tokens

    async def refresh(self, refresh_token: str) -> IssuedSession:
        """A new access token and refresh token; 401 ``M_UNKNOWN_TOKEN`` if it is revoked."""
        record = await self._refresh_tokens.get_refresh_token(hash_token(refresh_token))
        if record is None:
            raise errors.unknown_token()
        user = await self._users.get_user(record.user_id)
        if user is None or user.deactivated:
            raise errors.unknown_token()
        # Using this token proves its predecessor is no longer needed.
        await self._refresh_tokens.revoke_predecessors(record.token_id)
        access_token = generate_token()
        new_refresh_token = generate_token(REFRESH_TOKEN_PREFIX)
        lifetime = self._tokens.refreshable_lifetime_ms
        now = self._clock.time_msec()
        rotated = await self._refresh_tokens.rotate(
            record,
            refresh_token_hash=hash_token(new_refresh_token),
            access_token_hash=hash_token(access_token),
            created_ts=now,
            expires_ts=now + lifetime,
        )
        if not rotated:
            raise errors.unknown_token()
        self._tokens.invalidate_user(record.user_id)
        return IssuedSession(
            user_id=record.user_id,
            device_id=record.device_id,
            access_token=access_token,
            refresh_token=new_refresh_token,
            expires_in_ms=lifetime,
        )
