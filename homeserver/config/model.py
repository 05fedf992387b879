"""The validated configuration, as plain immutable data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from homeserver.ratelimit import RateLimitConfig

LISTENER_RESOURCES = frozenset(
    {
        "client",
        "federation",
        "keys",
        "media",
        "health",
        "metrics",
        "openid",
        "replication",
        "static",
        "consent",
    }
)


@attrs.frozen
class ListenerConfig:
    port: int
    bind_addresses: tuple[str, ...]
    resources: frozenset[str]
    #: Trust X-Forwarded-For from a reverse proxy for the client's address.
    x_forwarded: bool = False


@attrs.frozen
class DatabaseConfig:
    #: ``sqlite3`` or ``psycopg2`` (Synapse's names).
    name: str
    #: Passed to the DB-API ``connect`` (for SQLite: ``database``, the file path).
    args: dict[str, Any]
    cp_min: int = 5
    cp_max: int = 10


@attrs.frozen
class RateLimits:
    """Synapse's ``rc_*`` settings."""

    message: RateLimitConfig
    registration: RateLimitConfig
    login_address: RateLimitConfig
    login_account: RateLimitConfig
    login_failed_attempts: RateLimitConfig
    joins_local: RateLimitConfig
    joins_remote: RateLimitConfig
    invites_per_room: RateLimitConfig
    invites_per_user: RateLimitConfig
    invites_per_issuer: RateLimitConfig


@attrs.frozen
class HomeServerConfig:
    server_name: str
    public_baseurl: str
    listeners: tuple[ListenerConfig, ...]
    database: DatabaseConfig
    signing_key_path: Path
    media_store_path: Path
    enable_registration: bool
    enable_registration_without_verification: bool
    registration_requires_token: bool
    registration_shared_secret: str | None
    bcrypt_rounds: int
    password_pepper: str
    password_login_enabled: bool
    #: Lifetime of access tokens issued with a refresh token, in milliseconds.
    refreshable_access_token_lifetime_ms: int
    max_upload_size: int
    max_request_body_size: int
    default_room_version: str
    rate_limits: RateLimits
    extra_well_known_client_content: dict[str, Any]
    log_config: Path | None
    log_level: str
