"""Turning a YAML mapping into a :class:`HomeServerConfig`, or one clear error.

Keys and shapes follow Synapse's ``homeserver.yaml`` wherever the concept is the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeserver.config.model import (
    LISTENER_RESOURCES,
    DatabaseConfig,
    HomeServerConfig,
    ListenerConfig,
    RateLimits,
)
from homeserver.config.reader import ConfigError, Section
from homeserver.config.synapse_keys import TOLERATED_DATABASE_KEYS, TOLERATED_TOP_LEVEL_KEYS
from homeserver.events.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS
from homeserver.identifiers import is_valid_server_name
from homeserver.ratelimit import RateLimitConfig

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_config(
    data: Any, *, base_dir: Path, keys_read: set[str] | None = None
) -> tuple[HomeServerConfig, list[str]]:
    """Validate ``data`` (the loaded YAML); returns the config and any warnings.

    ``keys_read``, if given, receives every top-level key the parser understands.
    """
    if data is None:
        data = {}
    warnings: list[str] = []
    root = Section(
        data, "", warnings=warnings, base_dir=base_dir, tolerated=TOLERATED_TOP_LEVEL_KEYS
    )

    server_name = root.get_str("server_name")
    if not is_valid_server_name(server_name):
        raise ConfigError("server_name", f"{server_name!r} is not a valid server name")

    listeners = _parse_listeners(root)
    public_baseurl = root.get_str("public_baseurl", f"https://{server_name}/")
    if not public_baseurl.startswith(("http://", "https://")):
        raise ConfigError("public_baseurl", "must start with http:// or https://")
    if not public_baseurl.endswith("/"):
        public_baseurl += "/"

    password_config = root.section("password_config", tolerated=("policy", "localdb_enabled"))
    password_login_enabled = password_config.get_bool("enabled", True)
    pepper = password_config.get_str("pepper", "")
    password_config.finish()

    default_room_version = str(root.read_all_of("default_room_version") or DEFAULT_ROOM_VERSION)
    if default_room_version not in KNOWN_ROOM_VERSIONS:
        raise ConfigError(
            "default_room_version",
            f"unknown room version {default_room_version!r} (known: "
            f"{', '.join(KNOWN_ROOM_VERSIONS)})",
        )

    log_config = root.get_path("log_config", None)
    config = HomeServerConfig(
        server_name=server_name,
        public_baseurl=public_baseurl,
        listeners=listeners,
        database=_parse_database(root, base_dir),
        signing_key_path=root.get_path("signing_key_path", f"{server_name}.signing.key"),
        media_store_path=root.get_path("media_store_path", "media_store"),
        enable_registration=root.get_bool("enable_registration", False),
        enable_registration_without_verification=root.get_bool(
            "enable_registration_without_verification", False
        ),
        registration_requires_token=root.get_bool("registration_requires_token", False),
        registration_shared_secret=root.get_str("registration_shared_secret", None),
        bcrypt_rounds=root.get_int("bcrypt_rounds", 12, minimum=4, maximum=31),
        password_pepper=pepper,
        password_login_enabled=password_login_enabled,
        refreshable_access_token_lifetime_ms=_parse_refreshable_lifetime(root),
        max_upload_size=root.get_size("max_upload_size", 50 * 1024 * 1024),
        max_request_body_size=root.get_size("max_request_body_size", 4 * 1024 * 1024),
        default_room_version=default_room_version,
        rate_limits=_parse_rate_limits(root),
        extra_well_known_client_content=root.get_mapping("extra_well_known_client_content", {}),
        log_config=log_config,
        log_level=root.get_choice("log_level", LOG_LEVELS, "INFO"),
    )
    if (
        config.enable_registration
        and not config.enable_registration_without_verification
        and not config.registration_requires_token
    ):
        # Same safety rule as Synapse: open registration with no check invites spam bots.
        raise ConfigError(
            "enable_registration",
            "open registration needs enable_registration_without_verification: true or "
            "registration_requires_token: true",
        )
    root.finish()
    if keys_read is not None:
        keys_read.update(root.keys_read)
    return config, warnings


def _parse_refreshable_lifetime(root: Section) -> int:
    lifetime = root.get_duration_ms("refreshable_access_token_lifetime", 5 * 60_000)
    if lifetime is None or lifetime <= 0:
        raise ConfigError("refreshable_access_token_lifetime", "must be a positive duration")
    return int(lifetime)


def _parse_listeners(root: Section) -> tuple[ListenerConfig, ...]:
    raw = root.get_list("listeners")
    if not raw:
        raise ConfigError("listeners", "at least one listener is required")
    listeners = []
    for index, item in enumerate(raw):
        section = root.item("listeners", index, item, tolerated=("request_id_header",))
        port = section.get_int("port", minimum=0, maximum=65535)
        listener_type = section.get_choice("type", ("http",), "http")
        del listener_type  # only http listeners exist so far; the key is checked
        if section.get_bool("tls", False):
            raise ConfigError(
                section.key_path("tls"),
                "TLS listeners are not supported; terminate TLS in a reverse proxy",
            )
        bind_addresses = section.get_str_list("bind_addresses", ["::1", "127.0.0.1"])
        if section.has("bind_address"):
            bind_addresses = [section.get_str("bind_address")]
        resources: set[str] = set()
        for res_index, res_item in enumerate(section.get_list("resources", [])):
            res = section.item("resources", res_index, res_item)
            names = res.get_str_list("names")
            unknown = sorted(set(names) - LISTENER_RESOURCES)
            if unknown:
                raise ConfigError(
                    res.key_path("names"),
                    f"unknown resource {unknown[0]!r} (known: {', '.join(sorted(LISTENER_RESOURCES))})",
                )
            res.get_bool("compress", False)
            res.finish()
            resources.update(names)
        x_forwarded = section.get_bool("x_forwarded", False)
        section.finish()
        listeners.append(
            ListenerConfig(
                port=port,
                bind_addresses=tuple(bind_addresses),
                resources=frozenset(resources or {"client"}),
                x_forwarded=x_forwarded,
            )
        )
    return tuple(listeners)


def _parse_database(root: Section, base_dir: Path) -> DatabaseConfig:
    section = root.section("database", tolerated=TOLERATED_DATABASE_KEYS)
    name = section.get_choice("name", ("sqlite3", "psycopg2"), "sqlite3")
    args_section = section.section("args")
    if name == "sqlite3":
        database = args_section.get_path("database", "homeserver.db")
        args_section.finish()
        section.finish()
        return DatabaseConfig(name=name, args={"database": str(database)}, cp_min=1, cp_max=1)
    cp_min = args_section.get_int("cp_min", 5, minimum=1)
    cp_max = args_section.get_int("cp_max", 10, minimum=1)
    if cp_min > cp_max:
        raise ConfigError(args_section.key_path("cp_min"), "must not be greater than cp_max")
    args = {}
    for key in ("user", "password", "database", "dbname", "host", "sslmode", "application_name"):
        if args_section.has(key):
            args[key] = args_section.get_str(key)
    if args_section.has("port"):
        args["port"] = args_section.get_int("port", minimum=1, maximum=65535)
    for key in ("keepalives_idle", "keepalives_interval", "keepalives_count", "connect_timeout"):
        if args_section.has(key):
            args[key] = args_section.get_int(key, minimum=0)
    args_section.finish()
    section.finish()
    return DatabaseConfig(name=name, args=args, cp_min=cp_min, cp_max=cp_max)


def _parse_rate_limit(section: Section, key: str, per_second: float, burst: int) -> RateLimitConfig:
    sub = section.section(key)
    config = RateLimitConfig(
        per_second=float(sub.get_number("per_second", per_second, minimum=0)),
        burst_count=int(sub.get_number("burst_count", burst, minimum=0)),
    )
    sub.finish()
    return config


def _parse_rate_limits(root: Section) -> RateLimits:
    # Defaults are Synapse's, so an operator's expectations carry over.
    message = _parse_rate_limit(root, "rc_message", 0.2, 10)
    registration = _parse_rate_limit(root, "rc_registration", 0.17, 3)
    login = root.section("rc_login")
    joins = root.section("rc_joins")
    invites = root.section("rc_invites")
    limits = RateLimits(
        message=message,
        registration=registration,
        login_address=_parse_rate_limit(login, "address", 0.003, 5),
        login_account=_parse_rate_limit(login, "account", 0.003, 5),
        login_failed_attempts=_parse_rate_limit(login, "failed_attempts", 0.17, 3),
        joins_local=_parse_rate_limit(joins, "local", 0.1, 10),
        joins_remote=_parse_rate_limit(joins, "remote", 0.01, 10),
        invites_per_room=_parse_rate_limit(invites, "per_room", 0.3, 10),
        invites_per_user=_parse_rate_limit(invites, "per_user", 0.003, 5),
        invites_per_issuer=_parse_rate_limit(invites, "per_issuer", 0.3, 10),
    )
    for section in (login, joins, invites):
        section.finish()
    return limits
