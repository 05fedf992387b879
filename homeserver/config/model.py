"""The validated configuration, as plain immutable data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from homeserver.auth.passwords import Argon2Cost
from homeserver.config.email import EmailConfig
from homeserver.config.federation import FederationConfig
from homeserver.config.media import MediaConfig
from homeserver.config.push import PushConfig
from homeserver.config.user_directory import UserDirectoryConfig
from homeserver.config.web_client import WebClientConfig
from homeserver.ratelimit import RateLimitConfig

#: The listener resource names this server serves (``/health`` is served on every
#: listener anyway).  Synapse's other names are accepted with a warning until served.
LISTENER_RESOURCES = frozenset({"client", "health", "media", "federation", "keys", "openid"})

#: ``encryption_enabled_by_default_for_room_type`` values (Synapse's): every new room,
#: rooms created with a private preset, or none.
ROOM_ENCRYPTION_DEFAULTS = ("all", "invite", "off")


@attrs.frozen
class ListenerConfig:
    port: int
    bind_addresses: tuple[str, ...]
    resources: frozenset[str]
    #: Trust X-Forwarded-For/-Proto from a reverse proxy for the client's address
    #: and scheme (the right-most X-Forwarded-For entry: the one our proxy added).
    x_forwarded: bool = False
    #: Receive deadlines (ms) and the connection cap; see homeserver/http/limits.py.
    request_header_timeout_ms: int = 10_000
    request_body_timeout_ms: int = 60_000
    #: Bytes per second that push the body deadline back by one second.
    request_body_min_rate: int = 500
    idle_timeout_ms: int = 75_000
    max_connections: int = 10_000
    #: Serve HTTPS with ``tls_certificate_path``/``tls_private_key_path``
    #: (:class:`FederationConfig`): what federation listeners on 8448 need.
    tls: bool = False


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
    #: Our own: Synapse does not limit these reads.
    sync: RateLimitConfig
    threads: RateLimitConfig
    hierarchy: RateLimitConfig
    #: ``rc_presence.per_user``: ``PUT /presence`` (Synapse's key and default).
    presence: RateLimitConfig
    #: ``rc_to_device``, our own: ``PUT /sendToDevice`` requests per user.
    to_device: RateLimitConfig
    #: ``rc_search``, our own: ``POST /search`` requests per user.
    search: RateLimitConfig
    #: ``rc_key_query``, our own (Synapse has none): ``/_matrix/key/v2/query``
    #: requests that make the notary fetch keys from other servers, per client IP.
    key_query: RateLimitConfig = RateLimitConfig(per_second=10, burst_count=50)


@attrs.frozen
class PresenceConfig:
    """Synapse's ``presence`` section (``use_presence`` is its old spelling of
    ``enabled``); durations in milliseconds, defaults Synapse's.

    spec: client-server-api/modules/presence.md
    """

    enabled: bool = True
    #: Online with no activity for this long: ``unavailable``.
    idle_timeout_ms: int = 5 * 60_000
    #: No /sync, WebSocket or heartbeat for this long: ``offline``.
    sync_online_timeout_ms: int = 30_000
    #: Activity this recent is ``currently_active``; newer activity inside it is not
    #: announced again (it only moves ``last_active_ago``).
    last_active_granularity_ms: int = 60_000
    #: Initial syncs list offline users too (Synapse's key).
    include_offline_users_on_sync: bool = False


@attrs.frozen
class DeliveryReceiptsConfig:
    """Our own: "delivered" ticks (docs/live-status.md)."""

    enabled: bool = True
    #: Rooms with more joined members than this get no delivered receipts: each
    #: delivery is a receipt every other member receives, so the traffic grows with
    #: the square of the room's size.
    max_joined_members: int = 50


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
    #: argon2id cost of new password hashes (``password_config.argon2``).
    password_hash_cost: Argon2Cost
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
    #: ``POST /register?kind=guest`` creates guest accounts (Synapse's key).
    allow_guest_access: bool = False
    #: Index messages and answer ``POST /search`` (Synapse's key).
    enable_search: bool = True
    #: Which new rooms start with ``m.room.encryption`` (``ROOM_ENCRYPTION_DEFAULTS``).
    #: ``invite`` where Synapse defaults to ``off``: direct messages and private groups
    #: are encrypted unless the operator opts out.
    encryption_enabled_by_default_for_room_type: str = "invite"
    presence: PresenceConfig = PresenceConfig()
    delivery_receipts: DeliveryReceiptsConfig = DeliveryReceiptsConfig()
    media: MediaConfig = MediaConfig()
    #: Pushers: ``push``, ``webpush`` and the outbound ``ip_range_*`` lists.
    push: PushConfig = PushConfig()
    #: SMTP, notification emails and address validation (Synapse's ``email``).
    email: EmailConfig = EmailConfig()
    #: ``POST /user_directory/search`` (Synapse's ``user_directory``).
    user_directory: UserDirectoryConfig = UserDirectoryConfig()
    #: The browser app at ``/`` (ours), or Synapse's ``web_client_location``.
    web_client: WebClientConfig = WebClientConfig()
    #: The server-server API: peers, outbound requests, keys, TLS listeners.
    federation: FederationConfig = FederationConfig()
