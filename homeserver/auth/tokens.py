"""Access tokens: random, shown to the client once, stored only as a hash.

Validating a token is on the path of every authenticated request, so recent
answers are kept in a small in-memory cache.  Everything that revokes tokens
(logout, device deletion, password change, deactivation) calls
:meth:`AccessTokenHandler.invalidate_user`.  The cache lives in one process; entries
also expire after ``cache_ttl`` seconds, which bounds how long a token revoked by
another process (a future worker, the CLI) keeps working here.

spec: client-server-api/_index.md#using-access-tokens,
#relationship-between-access-tokens-and-devices, #refreshing-access-tokens
"""

from __future__ import annotations

import hashlib
import secrets

import attrs

from homeserver import errors
from homeserver.auth.last_seen import LastSeenTracker
from homeserver.clock import Clock
from homeserver.storage.devices import DeviceIdTaken, DeviceStore
from homeserver.storage.users import UserStore
from homeserver.util.single_flight import SingleFlight

#: Prefix so leaked tokens are recognisable by secret scanners.
TOKEN_PREFIX = "mhs_"
REFRESH_TOKEN_PREFIX = "mhr_"

#: Entries kept at most; the cache is emptied when it grows past this (cheap, rare).
_CACHE_MAX_ENTRIES = 50_000


def generate_token(prefix: str = TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


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
    #: A guest account: only the endpoints the spec lists for guests serve it.
    #: spec: client-server-api/modules/guest_access.md
    is_guest: bool = False


@attrs.frozen
class IssuedSession:
    """What login and registration hand to the client."""

    user_id: str
    device_id: str
    access_token: str
    refresh_token: str | None = None
    expires_in_ms: int | None = None


@attrs.frozen
class _CacheEntry:
    requester: Requester
    expires_ts: int | None
    cached_at: float


class AccessTokenHandler:
    """Issues and validates access tokens."""

    def __init__(
        self,
        clock: Clock,
        users: UserStore,
        devices: DeviceStore,
        *,
        refreshable_lifetime_ms: int = 5 * 60_000,
        last_seen: LastSeenTracker | None = None,
        cache_ttl: float = 60.0,
    ) -> None:
        self._clock = clock
        self._users = users
        self._devices = devices
        self.refreshable_lifetime_ms = refreshable_lifetime_ms
        self._last_seen = last_seen
        self._cache_ttl = cache_ttl
        self._cache: dict[str, _CacheEntry] = {}
        self._cached_by_user: dict[str, set[str]] = {}
        # A client firing several requests with a fresh token would otherwise mark it
        # used once per request, all updating one row: on PostgreSQL those conflict
        # and exhaust their retries.  One marking per token, shared.
        self._first_use: SingleFlight[int, None] = SingleFlight()
        # First of the listeners: a deleted device's tokens leave the cache before
        # anyone woken by the change (a WebSocket stream's next frame) checks one.
        devices.on_devices_changed.insert(0, self._devices_changed)

    async def _devices_changed(self, user_id: str) -> None:
        self.invalidate_user(user_id)

    async def create_session(
        self,
        user_id: str,
        device_id: str | None,
        *,
        display_name: str | None = None,
        refreshable: bool = False,
    ) -> IssuedSession:
        """Log a device in: a new access token (and refresh token if asked for).

        A ``device_id`` the user already has is taken over: its old tokens are revoked.
        spec: client-server-api/_index.md#relationship-between-access-tokens-and-devices
        """
        device_id = device_id or generate_device_id()
        token = generate_token()
        refresh_token = generate_token(REFRESH_TOKEN_PREFIX) if refreshable else None
        now = self._clock.time_msec()
        lifetime = self.refreshable_lifetime_ms if refreshable else None
        try:
            await self._devices.add_device_with_token(
                user_id,
                device_id,
                hash_token(token),
                created_ts=now,
                display_name=display_name,
                expires_ts=None if lifetime is None else now + lifetime,
                refresh_token_hash=None if refresh_token is None else hash_token(refresh_token),
                replace_existing_tokens=True,
            )
        except DeviceIdTaken:
            # Peers would see a device and a cross-signing key under one ID and must
            # then refuse to verify the user at all.
            raise errors.invalid_param(
                "This device ID is one of the user's cross-signing keys; choose another"
            ) from None
        self.invalidate_user(user_id)
        return IssuedSession(
            user_id=user_id,
            device_id=device_id,
            access_token=token,
            refresh_token=refresh_token,
            expires_in_ms=lifetime,
        )

    async def requester_for_token(self, token: str) -> Requester:
        """The requester a token belongs to; ``M_UNKNOWN_TOKEN`` if it is not valid."""
        token_hash = hash_token(token)
        now = self._clock.time()
        entry = self._cache.get(token_hash)
        if entry is not None and now - entry.cached_at < self._cache_ttl:
            self._check_expiry(entry.expires_ts)
            return entry.requester
        record = await self._devices.get_access_token(token_hash)
        if record is None:
            raise errors.unknown_token()
        self._check_expiry(record.expires_ts)
        user = await self._users.get_user(record.user_id)
        if user is None or user.deactivated:
            raise errors.unknown_token()
        if not record.used:
            # First use: from now on the refresh token this one replaced is revoked.
            await self._first_use.run(
                record.token_id,
                lambda: self._devices.mark_access_token_used(
                    record.token_id, record.refresh_token_id
                ),
            )
        requester = Requester(
            user_id=record.user_id,
            device_id=record.device_id,
            access_token_id=record.token_id,
            is_admin=user.is_admin,
            is_guest=user.is_guest,
        )
        self._remember(token_hash, _CacheEntry(requester, record.expires_ts, now))
        return requester

    def _check_expiry(self, expires_ts: int | None) -> None:
        if expires_ts is not None and expires_ts <= self._clock.time_msec():
            # An expired token may be refreshed: the client keeps its state (soft logout).
            raise errors.unknown_token(soft_logout=True)

    def _remember(self, token_hash: str, entry: _CacheEntry) -> None:
        if len(self._cache) >= _CACHE_MAX_ENTRIES:
            self._cache.clear()
            self._cached_by_user.clear()
        self._cache[token_hash] = entry
        self._cached_by_user.setdefault(entry.requester.user_id, set()).add(token_hash)

    def invalidate_user(self, user_id: str) -> None:
        """Forget cached tokens of ``user_id`` (after any change that revokes tokens)."""
        for token_hash in self._cached_by_user.pop(user_id, ()):
            self._cache.pop(token_hash, None)

    def note_request(self, requester: Requester, ip: str, user_agent: str | None) -> None:
        """Remember the device's latest request for its last-seen fields (written in batches)."""
        if self._last_seen is not None and requester.device_id is not None:
            self._last_seen.record(requester.user_id, requester.device_id, ip, user_agent)
