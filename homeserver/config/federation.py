"""Federation settings, in Synapse's key names: who we federate with, how outbound
requests are made (address lists, certificates, backoff), where keys come from, and
the TLS certificate of TLS listeners.

spec: server-server-api.md (#tls, #retrieving-server-keys, #request-authentication)
"""

from __future__ import annotations

import binascii
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from unpaddedbase64 import decode_base64

from homeserver.config.media import DEFAULT_PREVIEW_IP_BLACKLIST, IpNetwork
from homeserver.config.reader import ConfigError, Section
from homeserver.identifiers import is_valid_server_name

#: matrix.org's current notary key (the key Synapse's documentation and Dendrite's
#: default configuration pin).
MATRIX_ORG_KEY_ID = "ed25519:a_RXGa"
MATRIX_ORG_KEY = "l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ"

#: Synapse's ``federation_client_minimum_tls_version`` values.
TLS_VERSIONS = ("1", "1.1", "1.2", "1.3")

#: Addresses outbound federation never reaches unless whitelisted: the private,
#: loopback, link-local, multicast and reserved ranges (Synapse's default, plus the
#: unspecified addresses, which Synapse always adds).
DEFAULT_FEDERATION_IP_BLACKLIST = DEFAULT_PREVIEW_IP_BLACKLIST


@attrs.frozen
class TrustedKeyServer:
    """A notary asked for other servers' keys (``trusted_key_servers[]``)."""

    server_name: str
    #: key ID -> unpadded base64 ed25519 public key.  Empty: the notary's own key is
    #: fetched from it (trusted through TLS).
    verify_keys: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class OldSigningKey:
    """A key this server signed with before (``old_signing_keys``): still published
    in ``old_verify_keys`` so that what it signed can be checked."""

    key_id: str
    #: Unpadded base64 ed25519 public key.
    public_key: str
    #: When we stopped using it (ms since the epoch).
    expired_ts: int


DEFAULT_TRUSTED_KEY_SERVERS = (TrustedKeyServer("matrix.org", {MATRIX_ORG_KEY_ID: MATRIX_ORG_KEY}),)


_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_UNSPECIFIED = (ipaddress.ip_network("0.0.0.0/32"), ipaddress.ip_network("::/128"))


def _default_blacklist() -> tuple[IpNetwork, ...]:
    listed = tuple(ipaddress.ip_network(network) for network in DEFAULT_FEDERATION_IP_BLACKLIST)
    return _with_unspecified(listed)


@attrs.frozen
class FederationConfig:
    #: Some listener serves the ``federation`` resource: we federate at all.
    enabled: bool = False
    #: Only these servers may talk to us and be talked to; None: every server.
    federation_domain_whitelist: tuple[str, ...] | None = None
    #: Addresses outbound federation requests never reach (``ip_range_blacklist``, or
    #: the older ``federation_ip_range_blacklist``), unless in ``ip_range_whitelist``.
    ip_range_blacklist: tuple[IpNetwork, ...] = attrs.field(factory=_default_blacklist)
    ip_range_whitelist: tuple[IpNetwork, ...] = ()
    #: Check remote servers' certificates (``federation_verify_certificates``).
    verify_certificates: bool = True
    #: PEM files whose certificates replace the system's trusted roots.
    custom_ca_list: tuple[Path, ...] = ()
    #: "1.2" rather than Synapse's "1": TLS 1.0/1.1 are deprecated (RFC 8996) and every
    #: current homeserver speaks 1.2.
    client_minimum_tls_version: str = "1.2"
    trusted_key_servers: tuple[TrustedKeyServer, ...] = DEFAULT_TRUSTED_KEY_SERVERS
    #: How long our published keys are valid for (``valid_until_ts`` = now + this).
    key_refresh_interval_ms: int = 86_400_000
    old_signing_keys: tuple[OldSigningKey, ...] = ()
    #: Other servers may read our published room directory.
    allow_public_rooms_over_federation: bool = False
    #: Serve ``/.well-known/matrix/server`` on client listeners.
    serve_server_wellknown: bool = False
    #: The certificate chain and key (PEM) of TLS listeners.
    tls_certificate_path: Path | None = None
    tls_private_key_path: Path | None = None
    #: Synapse's ``federation`` section: backoff of unreachable destinations.
    destination_min_retry_interval_ms: int = 600_000
    destination_retry_multiplier: float = 2.0
    destination_max_retry_interval_ms: int = 7 * 86_400_000
    #: How long one outbound federation request may take.
    client_timeout_ms: int = 60_000
    #: Join rooms on other servers with partial state (``omit_members``): the join
    #: returns without the member list, which is fetched in the background.
    partial_state_joins: bool = True


def parse_federation(root: Section, *, enabled: bool, tls_listener: bool) -> FederationConfig:
    """The federation settings.  ``enabled``: a listener serves ``federation``;
    ``tls_listener``: a listener has ``tls: true`` (the certificate paths are then
    required)."""
    defaults = FederationConfig()
    whitelist = root.get_str_list("federation_domain_whitelist", None)
    if whitelist is not None:
        for index, name in enumerate(whitelist):
            if not is_valid_server_name(name):
                root.report(
                    ConfigError(
                        f"federation_domain_whitelist[{index}]",
                        f"{name!r} is not a valid server name",
                    )
                )
    blacklist, allowlist = _address_lists(root)
    verify_certificates = root.get_bool("federation_verify_certificates", True)
    minimum_tls = root.read_all_of("federation_client_minimum_tls_version")
    minimum_tls = "1.2" if minimum_tls is None else str(minimum_tls)
    if minimum_tls not in TLS_VERSIONS:
        root.report(
            ConfigError(
                "federation_client_minimum_tls_version",
                f"must be one of {', '.join(TLS_VERSIONS)}, got {minimum_tls!r}",
            )
        )
        minimum_tls = "1.2"
    root.get_bool("suppress_key_server_warning", False)
    certificate = root.get_path("tls_certificate_path", None)
    private_key = root.get_path("tls_private_key_path", None)
    if tls_listener:
        for key, path in (
            ("tls_certificate_path", certificate),
            ("tls_private_key_path", private_key),
        ):
            if path is None:
                root.report(ConfigError(key, "is required when a listener has tls: true"))
    backoff = root.section("federation")
    config = FederationConfig(
        enabled=enabled,
        federation_domain_whitelist=None if whitelist is None else tuple(whitelist),
        ip_range_blacklist=blacklist,
        ip_range_whitelist=allowlist,
        verify_certificates=verify_certificates,
        custom_ca_list=root.attempt(lambda: _custom_ca_list(root), ()),
        client_minimum_tls_version=minimum_tls,
        trusted_key_servers=root.attempt(
            lambda: _trusted_key_servers(root, verify_certificates), DEFAULT_TRUSTED_KEY_SERVERS
        ),
        key_refresh_interval_ms=root.get_duration_ms(
            "key_refresh_interval", defaults.key_refresh_interval_ms, positive=True
        ),
        old_signing_keys=root.attempt(lambda: _old_signing_keys(root), ()),
        allow_public_rooms_over_federation=root.get_bool(
            "allow_public_rooms_over_federation", False
        ),
        serve_server_wellknown=root.get_bool("serve_server_wellknown", False),
        tls_certificate_path=certificate,
        tls_private_key_path=private_key,
        destination_min_retry_interval_ms=backoff.get_duration_ms(
            "destination_min_retry_interval",
            defaults.destination_min_retry_interval_ms,
            positive=True,
        ),
        destination_retry_multiplier=float(
            backoff.get_number(
                "destination_retry_multiplier", defaults.destination_retry_multiplier, minimum=1
            )
        ),
        destination_max_retry_interval_ms=backoff.get_duration_ms(
            "destination_max_retry_interval",
            defaults.destination_max_retry_interval_ms,
            positive=True,
        ),
        client_timeout_ms=backoff.get_duration_ms(
            "client_timeout", defaults.client_timeout_ms, positive=True
        ),
        partial_state_joins=backoff.get_bool("partial_state_joins", True),
    )
    backoff.finish()
    if config.destination_max_retry_interval_ms < config.destination_min_retry_interval_ms:
        root.report(
            ConfigError(
                "federation.destination_max_retry_interval",
                "must not be shorter than federation.destination_min_retry_interval",
            )
        )
    return config


def _address_lists(root: Section) -> tuple[tuple[IpNetwork, ...], tuple[IpNetwork, ...]]:
    """Synapse: ``federation_ip_range_blacklist``, when given, replaces both global
    lists for federation (there never was a federation whitelist)."""
    # The global lists' mistakes are reported once, by the pushers' settings (push.py).
    global_blacklist = _networks(
        root, "ip_range_blacklist", DEFAULT_FEDERATION_IP_BLACKLIST, report=False
    )
    global_whitelist = _networks(root, "ip_range_whitelist", (), report=False)
    if root.has("federation_ip_range_blacklist"):
        legacy = _networks(root, "federation_ip_range_blacklist", ())
        return _with_unspecified(legacy), ()
    return _with_unspecified(global_blacklist), global_whitelist


def _with_unspecified(networks: tuple[IpNetwork, ...]) -> tuple[IpNetwork, ...]:
    # As Synapse: 0.0.0.0 and :: are never a destination, whatever the list says.
    return networks + tuple(network for network in _UNSPECIFIED if network not in networks)


def _networks(
    root: Section, key: str, default: tuple[str, ...], *, report: bool = True
) -> tuple[IpNetwork, ...]:
    networks: list[IpNetwork] = []
    values = root.get_str_list(key, list(default)) if report else root.read_all_of(key)
    if not isinstance(values, list):
        values = list(default)
    for index, value in enumerate(values):
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except (TypeError, ValueError):
            if report:
                root.report(
                    ConfigError(f"{key}[{index}]", f"{value!r} is not an IP address or CIDR range")
                )
    return tuple(networks)


def _custom_ca_list(root: Section) -> tuple[Path, ...]:
    raw = root.get_str_list("federation_custom_ca_list", None)
    if raw is None:
        return ()
    if not raw:
        raise ConfigError("federation_custom_ca_list", "lists no certificate files")
    return tuple(_absolute(root.base_dir, value) for value in raw)


def _absolute(base_dir: Path, value: str) -> Path:
    """A configured path; relative ones are relative to the config file's folder."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _trusted_key_servers(root: Section, verify_certificates: bool) -> tuple[TrustedKeyServer, ...]:
    raw = root.get_list("trusted_key_servers", None)
    if raw is None:
        return DEFAULT_TRUSTED_KEY_SERVERS
    servers = []
    for index, item in enumerate(raw):
        section = root.item("trusted_key_servers", index, item)
        server_name = section.get_str("server_name")
        if not is_valid_server_name(server_name):
            raise ConfigError(
                section.key_path("server_name"), f"{server_name!r} is not a valid server name"
            )
        keys = section.get_mapping("verify_keys", {})
        verify_keys = {}
        for key_id, key in keys.items():
            verify_keys[key_id] = _public_key(
                f"{section.key_path('verify_keys')}.{key_id}", key_id, key
            )
        insecure = section.get_bool("accept_keys_insecurely", False)
        section.finish()
        if not verify_keys and not verify_certificates and not insecure:
            # Neither a pinned key nor a checked certificate vouches for the notary.
            raise ConfigError(
                section.key_path("verify_keys"),
                "required when federation_verify_certificates is false (or set "
                "accept_keys_insecurely: true)",
            )
        servers.append(TrustedKeyServer(server_name, verify_keys))
    return tuple(servers)


def _old_signing_keys(root: Section) -> tuple[OldSigningKey, ...]:
    raw = root.get_mapping("old_signing_keys", {})
    keys = []
    for key_id, data in raw.items():
        section = Section(
            data,
            f"old_signing_keys.{key_id}",
            warnings=[],
            base_dir=root.base_dir,
            problems=None,
        )
        public_key = _public_key(section.key_path("key"), key_id, section.get_str("key"))
        expired_ts = section.get_int("expired_ts", minimum=0)
        section.finish()
        keys.append(OldSigningKey(key_id=key_id, public_key=public_key, expired_ts=expired_ts))
    return tuple(keys)


def _public_key(key_path: str, key_id: Any, key: Any) -> str:
    """An ed25519 public key in unpadded base64, checked."""
    if not isinstance(key_id, str) or not key_id.startswith("ed25519:") or key_id == "ed25519:":
        raise ConfigError(key_path, f"key ID {key_id!r} is not of the form ed25519:<version>")
    if not isinstance(key, str):
        raise ConfigError(key_path, "expected an unpadded base64 public key")
    if _BASE64.fullmatch(key) is None:
        raise ConfigError(key_path, "is not valid base64")
    try:
        decoded = decode_base64(key)
    except (binascii.Error, ValueError):
        raise ConfigError(key_path, "is not valid base64") from None
    if len(decoded) != 32:
        raise ConfigError(key_path, f"an ed25519 public key is 32 bytes, got {len(decoded)}")
    return key.rstrip("=")


def federation_path_problems(config: FederationConfig) -> list[ConfigError]:
    """Files named by the federation settings that do not exist or cannot be read."""
    problems = []
    named = [
        ("tls_certificate_path", config.tls_certificate_path),
        ("tls_private_key_path", config.tls_private_key_path),
        *(
            (f"federation_custom_ca_list[{index}]", path)
            for index, path in enumerate(config.custom_ca_list)
        ),
    ]
    for key, path in named:
        if path is None:
            continue
        if not path.is_file():
            problems.append(ConfigError(key, f"{path} is not a file"))
        elif not os.access(path, os.R_OK):
            problems.append(ConfigError(key, f"{path} is not readable"))
    return problems
