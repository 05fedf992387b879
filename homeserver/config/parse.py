"""Turning a YAML mapping into a :class:`HomeServerConfig`, or clear errors.

Every problem found is reported (one line each, naming its key), not just the first.

Keys and shapes follow Synapse's ``homeserver.yaml`` wherever the concept is the same.
"""

from __future__ import annotations

import difflib
from functools import partial
from pathlib import Path
from typing import Any

from homeserver.auth.passwords import Argon2Cost
from homeserver.config.email import EmailConfig, parse_email
from homeserver.config.federation import FederationConfig, parse_federation
from homeserver.config.media import MediaConfig, parse_media
from homeserver.config.model import (
    LISTENER_RESOURCES,
    ROOM_ENCRYPTION_DEFAULTS,
    DatabaseConfig,
    DeliveryReceiptsConfig,
    HomeServerConfig,
    ListenerConfig,
    PresenceConfig,
    RateLimits,
)
from homeserver.config.paths import path_problems
from homeserver.config.push import PushConfig, parse_push
from homeserver.config.reader import ConfigError, Section, raise_problems
from homeserver.config.synapse_keys import (
    SYNAPSE_KEY_TREE,
    SYNAPSE_LISTENER_RESOURCES,
    TOLERATED_DATABASE_KEYS,
    TOLERATED_TOP_LEVEL_KEYS,
)
from homeserver.config.user_directory import UserDirectoryConfig, parse_user_directory
from homeserver.config.web_client import WebClientConfig, parse_web_client
from homeserver.events.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS
from homeserver.identifiers import is_valid_server_name
from homeserver.ratelimit import RateLimitConfig

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_config(
    data: Any,
    *,
    base_dir: Path,
    keys_read: set[str] | None = None,
    check_paths: bool = False,
    creates_signing_key: bool = False,
    require_signing_key: bool = False,
) -> tuple[HomeServerConfig, list[str]]:
    """Validate ``data`` (the loaded YAML); returns the config and any warnings.

    Raises :class:`ConfigError` naming every problem found (:class:`ConfigErrors` when
    there are several).  ``keys_read``, if given, receives every top-level key the
    parser understands.  ``check_paths``: the files and folders the config names are
    checked too (see :func:`~homeserver.config.paths.path_problems`, which takes
    ``creates_signing_key`` and ``require_signing_key``).
    """
    if data is None:
        data = {}
    warnings: list[str] = []
    problems: list[ConfigError] = []
    root = Section(
        data,
        "",
        warnings=warnings,
        base_dir=base_dir,
        tolerated=TOLERATED_TOP_LEVEL_KEYS,
        problems=problems,
        synapse_keys=SYNAPSE_KEY_TREE,
    )

    server_name = root.attempt(lambda: _parse_server_name(root), "localhost")
    no_listeners: tuple[ListenerConfig, ...] = ()
    listeners = root.attempt(lambda: _parse_listeners(root), no_listeners)
    public_baseurl = root.attempt(
        lambda: _parse_public_baseurl(root, server_name), f"https://{server_name}/"
    )
    password_login_enabled, pepper, password_hash_cost = root.attempt(
        lambda: _parse_password_config(root), (True, "", Argon2Cost())
    )
    default_room_version = root.attempt(
        lambda: _parse_default_room_version(root), DEFAULT_ROOM_VERSION
    )
    log_config = root.get_path("log_config", None)
    config = HomeServerConfig(
        server_name=server_name,
        public_baseurl=public_baseurl,
        listeners=listeners,
        database=root.attempt(
            lambda: _parse_database(root, base_dir),
            DatabaseConfig(name="sqlite3", args={}, cp_min=1, cp_max=1),
        ),
        signing_key_path=root.get_path("signing_key_path", f"{server_name}.signing.key"),
        media_store_path=root.get_path("media_store_path", "media_store"),
        enable_registration=root.get_bool("enable_registration", False),
        enable_registration_without_verification=root.get_bool(
            "enable_registration_without_verification", False
        ),
        registration_requires_token=root.get_bool("registration_requires_token", False),
        allow_guest_access=root.get_bool("allow_guest_access", False),
        enable_search=root.get_bool("enable_search", True),
        encryption_enabled_by_default_for_room_type=_parse_room_encryption_default(root),
        registration_shared_secret=root.get_str("registration_shared_secret", None),
        password_hash_cost=password_hash_cost,
        password_pepper=pepper,
        password_login_enabled=password_login_enabled,
        refreshable_access_token_lifetime_ms=root.get_duration_ms(
            "refreshable_access_token_lifetime", 5 * 60_000, positive=True
        ),
        max_upload_size=root.get_size("max_upload_size", 50 * 1024 * 1024, positive=True),
        max_request_body_size=root.get_size(
            "max_request_body_size", 4 * 1024 * 1024, positive=True
        ),
        default_room_version=default_room_version,
        rate_limits=_parse_rate_limits(root),
        extra_well_known_client_content=root.get_mapping("extra_well_known_client_content", {}),
        log_config=log_config,
        log_level=root.get_choice("log_level", LOG_LEVELS, "INFO"),
        presence=root.attempt(lambda: _parse_presence(root), PresenceConfig()),
        delivery_receipts=_parse_delivery_receipts(root),
        media=root.attempt(lambda: parse_media(root), MediaConfig()),
        push=root.attempt(lambda: parse_push(root), PushConfig()),
        email=root.attempt(lambda: parse_email(root), EmailConfig()),
        user_directory=root.attempt(lambda: parse_user_directory(root), UserDirectoryConfig()),
        web_client=root.attempt(lambda: parse_web_client(root), WebClientConfig()),
        federation=root.attempt(
            lambda: parse_federation(
                root,
                enabled=any("federation" in listener.resources for listener in listeners),
                tls_listener=any(listener.tls for listener in listeners),
            ),
            FederationConfig(),
        ),
    )
    if (
        config.enable_registration
        and not config.enable_registration_without_verification
        and not config.registration_requires_token
    ):
        # Same safety rule as Synapse: open registration with no check invites spam bots.
        root.report(
            ConfigError(
                "enable_registration",
                "open registration needs enable_registration_without_verification: true or "
                "registration_requires_token: true",
            )
        )
    root.finish()
    if keys_read is not None:
        keys_read.update(root.keys_read)
    if check_paths:
        # A key whose value was refused has no path worth checking.
        refused = {problem.key.split(".")[0].split("[")[0] for problem in problems}
        problems.extend(
            problem
            for problem in path_problems(
                config,
                creates_signing_key=creates_signing_key,
                require_signing_key=require_signing_key,
            )
            if problem.key.split(".")[0] not in refused
        )
    raise_problems(problems)
    return config, warnings


def _parse_server_name(root: Section) -> str:
    server_name = root.get_str("server_name")
    if not is_valid_server_name(server_name):
        raise ConfigError("server_name", f"{server_name!r} is not a valid server name")
    return str(server_name)


def _parse_public_baseurl(root: Section, server_name: str) -> str:
    public_baseurl = str(root.get_str("public_baseurl", f"https://{server_name}/"))
    if not public_baseurl.startswith(("http://", "https://")):
        raise ConfigError("public_baseurl", "must start with http:// or https://")
    if not public_baseurl.endswith("/"):
        public_baseurl += "/"
    return public_baseurl


def _parse_password_config(root: Section) -> tuple[bool, str, Argon2Cost]:
    password_config = root.section("password_config")
    enabled = password_config.read_all_of("enabled")
    if enabled is None:
        enabled = True
    elif enabled == "only_for_reauth":
        # Synapse: no password login, but passwords still re-authenticate (UI auth).
        password_config.warn(
            "enabled",
            "'only_for_reauth' is not supported; treated as false (no password login)",
        )
        enabled = False
    elif not isinstance(enabled, bool):
        password_config.report(
            ConfigError(
                password_config.key_path("enabled"),
                f"expected true, false or only_for_reauth, got {enabled!r}",
            )
        )
        enabled = True
    pepper = password_config.get_str("pepper", "")
    password_hash_cost = password_config.attempt(
        lambda: _parse_argon2_cost(password_config), Argon2Cost()
    )
    password_config.finish()
    return enabled, pepper, password_hash_cost


def _parse_default_room_version(root: Section) -> str:
    default_room_version = str(root.read_all_of("default_room_version") or DEFAULT_ROOM_VERSION)
    if default_room_version not in KNOWN_ROOM_VERSIONS:
        raise ConfigError(
            "default_room_version",
            f"unknown room version {default_room_version!r} (known: "
            f"{', '.join(KNOWN_ROOM_VERSIONS)})",
        )
    return default_room_version


def _parse_room_encryption_default(root: Section) -> str:
    key = "encryption_enabled_by_default_for_room_type"
    if root.read_all_of(key) is False:
        # YAML reads an unquoted `off` as false; Synapse accepts it the same way.
        return "off"
    value: str = root.get_choice(key, ROOM_ENCRYPTION_DEFAULTS, "invite")
    return value


def _parse_argon2_cost(password_config: Section) -> Argon2Cost:
    section = password_config.section("argon2")
    defaults = Argon2Cost()
    parallelism = section.get_int("parallelism", defaults.parallelism, minimum=1, maximum=64)
    memory_cost = section.get_size("memory_cost", defaults.memory_cost_kib * 1024)
    # argon2 needs at least 8 KiB per lane.
    if memory_cost < 8 * 1024 * parallelism:
        raise ConfigError(section.key_path("memory_cost"), f"must be at least {8 * parallelism}K")
    cost = Argon2Cost(
        time_cost=section.get_int("time_cost", defaults.time_cost, minimum=1, maximum=100),
        memory_cost_kib=memory_cost // 1024,
        parallelism=parallelism,
    )
    section.finish()
    return cost


def _parse_listeners(root: Section) -> tuple[ListenerConfig, ...]:
    raw = root.get_list("listeners")
    if not raw:
        raise ConfigError("listeners", "at least one listener is required")
    listeners = []
    for index, item in enumerate(raw):
        section = root.item("listeners", index, item)
        if section.has("path"):
            section.read_all_of("path")
            section.report(
                ConfigError(
                    section.key_path("path"),
                    "Unix socket listeners are not supported; give the listener a port",
                )
            )
        port = section.attempt(partial(section.get_int, "port", minimum=0, maximum=65535), 0)
        # Synapse's manhole and metrics listeners are not http listeners; ours serve
        # neither, so such a listener is skipped (its other keys are Synapse's business).
        listener_type = section.get_choice("type", ("http", "manhole", "metrics"), "http")
        if listener_type != "http":
            section.warn("type", f"a Synapse {listener_type} listener is not served; ignored")
            continue
        tls = section.get_bool("tls", False)
        bind_addresses = section.get_str_list("bind_addresses", ["::1", "127.0.0.1"])
        if section.has("bind_address"):
            bind_addresses = [section.get_str("bind_address")]
        if not bind_addresses:
            section.report(
                ConfigError(section.key_path("bind_addresses"), "must list at least one address")
            )
        resources: set[str] = set()
        named = False
        for res_index, res_item in enumerate(section.get_list("resources", [])):
            res = section.item("resources", res_index, res_item)
            names = res.get_str_list("names")
            resources.update(_served_resources(res, names))
            named = named or bool(names)
            res.get_bool("compress", False)
            res.finish()
        x_forwarded = section.get_bool("x_forwarded", False)
        header_timeout = _positive_duration_ms(section, "request_header_timeout", 10_000)
        body_timeout = _positive_duration_ms(section, "request_body_timeout", 60_000)
        body_min_rate = section.get_size("request_body_min_rate", 500, positive=True)
        idle_timeout = _positive_duration_ms(section, "idle_timeout", 75_000)
        max_connections = section.get_int("max_connections", 10_000, minimum=1)
        section.finish()
        listeners.append(
            ListenerConfig(
                port=port,
                bind_addresses=tuple(bind_addresses),
                # No resources at all: the client API; names none of which we serve:
                # only /health (served on every listener).
                resources=frozenset(resources if named else {"client"}),
                x_forwarded=x_forwarded,
                request_header_timeout_ms=header_timeout,
                request_body_timeout_ms=body_timeout,
                request_body_min_rate=body_min_rate,
                idle_timeout_ms=idle_timeout,
                max_connections=max_connections,
                tls=tls,
            )
        )
    if not listeners:
        raise ConfigError("listeners", "at least one http listener is required")
    return tuple(listeners)


def _served_resources(res: Section, names: list[str]) -> set[str]:
    """The names this server serves; a warning for Synapse's others, an error for the rest."""
    served = set()
    for name in names:
        if name in LISTENER_RESOURCES:
            served.add(name)
        elif name in SYNAPSE_LISTENER_RESOURCES:
            res.warn("names", f"resource {name!r} is not served by this server yet; ignored")
        else:
            known = sorted(LISTENER_RESOURCES | SYNAPSE_LISTENER_RESOURCES)
            suggestion = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {suggestion[0]!r}? " if suggestion else ""
            res.report(
                ConfigError(
                    res.key_path("names"),
                    f"unknown resource {name!r} ({hint}known: {', '.join(known)})",
                )
            )
    return served


def _positive_duration_ms(section: Section, key: str, default: int) -> int:
    return int(section.get_duration_ms(key, default, positive=True))


def _parse_database(root: Section, base_dir: Path) -> DatabaseConfig:
    section = root.section("database", tolerated=TOLERATED_DATABASE_KEYS)
    name = section.get_choice("name", ("sqlite3", "psycopg2"), None)
    if name is None:
        if section.has("name"):
            # Refused (recorded): the args to check depend on the engine.
            return DatabaseConfig(name="sqlite3", args={}, cp_min=1, cp_max=1)
        name = "sqlite3"
    # Synapse accepts (and ignores) connection pool sizes for SQLite.
    args_section = section.section(
        "args", tolerated=("cp_min", "cp_max") if name == "sqlite3" else ()
    )
    if name == "sqlite3":
        database = args_section.get_path("database", "homeserver.db")
        args_section.finish()
        section.finish()
        return DatabaseConfig(name=name, args={"database": str(database)}, cp_min=1, cp_max=1)
    cp_min = args_section.get_int("cp_min", 5, minimum=1)
    cp_max = args_section.get_int("cp_max", 10, minimum=1)
    if cp_min > cp_max:
        args_section.report(
            ConfigError(args_section.key_path("cp_min"), "must not be greater than cp_max")
        )
    args = {}
    string_args = ("user", "password", "database", "dbname", "host", "application_name")
    ssl_args = ("sslmode", "sslrootcert", "sslcert", "sslkey")
    for key in string_args + ssl_args:
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
    presence = root.section("rc_presence")
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
        sync=_parse_rate_limit(root, "rc_sync", 20, 100),
        threads=_parse_rate_limit(root, "rc_threads", 2, 20),
        hierarchy=_parse_rate_limit(root, "rc_hierarchy", 2, 20),
        presence=_parse_rate_limit(presence, "per_user", 0.1, 1),
        to_device=_parse_rate_limit(root, "rc_to_device", 20, 200),
        search=_parse_rate_limit(root, "rc_search", 1, 10),
        key_query=_parse_rate_limit(root, "rc_key_query", 10, 50),
    )
    for section in (login, joins, invites, presence):
        section.finish()
    return limits


def _parse_presence(root: Section) -> PresenceConfig:
    """Synapse's ``presence`` section; its older ``use_presence: false`` still works."""
    section = root.section("presence", tolerated=("presence_router",))
    legacy = root.get_bool("use_presence", True)
    defaults = PresenceConfig()
    config = PresenceConfig(
        enabled=section.get_bool("enabled", legacy),
        idle_timeout_ms=_positive_duration_ms(section, "idle_timeout", defaults.idle_timeout_ms),
        sync_online_timeout_ms=_positive_duration_ms(
            section, "sync_online_timeout", defaults.sync_online_timeout_ms
        ),
        last_active_granularity_ms=_positive_duration_ms(
            section, "last_active_granularity", defaults.last_active_granularity_ms
        ),
        include_offline_users_on_sync=section.get_bool("include_offline_users_on_sync", False),
    )
    section.finish()
    if config.idle_timeout_ms <= config.last_active_granularity_ms:
        # As Synapse: an idle user would otherwise still count as currently active.
        raise ConfigError(
            "presence.idle_timeout", "must be longer than presence.last_active_granularity"
        )
    return config


def _parse_delivery_receipts(root: Section) -> DeliveryReceiptsConfig:
    section = root.section("delivery_receipts")
    defaults = DeliveryReceiptsConfig()
    config = DeliveryReceiptsConfig(
        enabled=section.get_bool("enabled", defaults.enabled),
        max_joined_members=section.get_int(
            "max_joined_members", defaults.max_joined_members, minimum=2
        ),
    )
    section.finish()
    return config
