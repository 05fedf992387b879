"""Access tokens: random, shown to the client once, stored only as a hash.

spec: client-server-api/_index.md#using-access-tokens
"""

from __future__ import annotations

import hashlib
import secrets

import attrs

from homeserver.clock import Clock
from homeserver.http import errors
from homeserver.storage.devices import DeviceStore
from homeserver.storage.users import UserStore

#: Prefix so leaked tokens are recognisable by secret scanners.
TOKEN_PREFIX = "mhs_"


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_device_id() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(10))


@attrs.frozen
class Requester:
    """Who is making an authenticated request."""

    user_id: str
    device_id: str | None
    access_token_id: int
    is_admin: bool


class AccessTokenHandler:
    """Issues and validates access tokens."""

    def __init__(self, clock: Clock, users: UserStore, devices: DeviceStore) -> None:
        self._clock = clock
        self._users = users
        self._devices = devices

    async def issue_token(
        self,
        user_id: str,
        device_id: str | None = None,
        *,
        display_name: str | None = None,
        valid_for_ms: int | None = None,
    ) -> tuple[str, str]:
        """Create a device (if new) and an access token for it: ``(token, device_id)``."""
        device_id = device_id or generate_device_id()
        token = generate_token()
        now = self._clock.time_msec()
        await self._devices.add_device_with_token(
            user_id,
            device_id,
            hash_token(token),
            created_ts=now,
            display_name=display_name,
            expires_ts=None if valid_for_ms is None else now + valid_for_ms,
        )
        return token, device_id

    async def requester_for_token(self, token: str) -> Requester:
        """The requester a token belongs to; ``M_UNKNOWN_TOKEN`` if it is not valid."""
        record = await self._devices.get_access_token(hash_token(token))
        if record is None:
            raise errors.unknown_token()
        if record.expires_ts is not None and record.expires_ts <= self._clock.time_msec():
            # An expired token may be refreshed: the client keeps its state (soft logout).
            raise errors.unknown_token(soft_logout=True)
        user = await self._users.get_user(record.user_id)
        if user is None or user.deactivated:
            raise errors.unknown_token()
        return Requester(
            user_id=record.user_id,
            device_id=record.device_id,
            access_token_id=record.token_id,
            is_admin=user.is_admin,
        )
