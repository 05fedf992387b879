"""Federation settings (Synapse's keys): defaults, every key read, and one clear
line per mistake."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from homeserver.config.federation import (
    DEFAULT_TRUSTED_KEY_SERVERS,
    MATRIX_ORG_KEY,
    MATRIX_ORG_KEY_ID,
    FederationConfig,
    OldSigningKey,
    TrustedKeyServer,
)
from homeserver.config.parse import parse_config
from homeserver.config.reader import ConfigError

KEY = "l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ"


def minimal(**extra: Any) -> dict[str, Any]:
    return {"server_name": "example.org", "listeners": [{"port": 8008}], **extra}


def federation(**extra: Any) -> FederationConfig:
    config, _ = parse_config(minimal(**extra), base_dir=Path("/srv"))
    return config.federation


def problems(data: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, base_dir=Path("/srv"), **kwargs)
    return raised.value.lines


def test_defaults_are_synapses() -> None:
    config = federation()
    assert config == FederationConfig()
    assert config.enabled is False
    assert config.federation_domain_whitelist is None
    assert config.verify_certificates is True
    assert config.trusted_key_servers == (
        TrustedKeyServer("matrix.org", {MATRIX_ORG_KEY_ID: MATRIX_ORG_KEY}),
    )
    assert config.key_refresh_interval_ms == 86_400_000
    assert config.destination_min_retry_interval_ms == 600_000
    assert config.destination_max_retry_interval_ms == 7 * 86_400_000
    assert config.client_timeout_ms == 60_000
    # Stricter than Synapse's "1": TLS 1.0/1.1 are deprecated.
    assert config.client_minimum_tls_version == "1.2"
    # Private ranges are refused by default, and the unspecified addresses always.
    blacklist = config.ip_range_blacklist
    for address in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "::1", "fe80::1", "0.0.0.0", "::"):
        assert any(ipaddress.ip_address(address) in network for network in blacklist), address
    assert not any(ipaddress.ip_address("8.8.8.8") in network for network in blacklist)


def test_a_federation_listener_enables_federation() -> None:
    config, _ = parse_config(
        minimal(listeners=[{"port": 8448, "resources": [{"names": ["federation"]}]}]),
        base_dir=Path("/srv"),
    )
    assert config.federation.enabled is True
    assert config.listeners[0].resources == {"federation"}


def test_keys_and_openid_are_served_resource_names() -> None:
    config, warnings = parse_config(
        minimal(listeners=[{"port": 8448, "resources": [{"names": ["keys", "openid"]}]}]),
        base_dir=Path("/srv"),
    )
    assert warnings == []
    assert config.listeners[0].resources == {"keys", "openid"}
    assert config.federation.enabled is False


def test_every_key_is_read() -> None:
    config = federation(
        federation_domain_whitelist=["a.example", "b.example:8448"],
        ip_range_blacklist=["10.0.0.0/8"],
        ip_range_whitelist=["127.0.0.1"],
        federation_verify_certificates=False,
        federation_custom_ca_list=["ca.pem", "/etc/ca2.pem"],
        federation_client_minimum_tls_version=1.3,
        trusted_key_servers=[
            {"server_name": "notary.example", "verify_keys": {"ed25519:k": KEY}},
            {"server_name": "other.example", "accept_keys_insecurely": True},
        ],
        suppress_key_server_warning=True,
        key_refresh_interval="2h",
        old_signing_keys={"ed25519:old": {"key": KEY, "expired_ts": 1_600_000_000_000}},
        allow_public_rooms_over_federation=True,
        serve_server_wellknown=True,
        tls_certificate_path="tls.crt",
        tls_private_key_path="/keys/tls.key",
        federation={
            "client_timeout": "30s",
            "destination_min_retry_interval": "1m",
            "destination_retry_multiplier": 3,
            "destination_max_retry_interval": "1d",
        },
    )
    assert config.federation_domain_whitelist == ("a.example", "b.example:8448")
    assert config.ip_range_blacklist[0] == ipaddress.ip_network("10.0.0.0/8")
    assert config.ip_range_whitelist == (ipaddress.ip_network("127.0.0.1/32"),)
    assert config.verify_certificates is False
    assert config.custom_ca_list == (Path("/srv/ca.pem"), Path("/etc/ca2.pem"))
    assert config.client_minimum_tls_version == "1.3"
    assert config.trusted_key_servers == (
        TrustedKeyServer("notary.example", {"ed25519:k": KEY}),
        TrustedKeyServer("other.example", {}),
    )
    assert config.key_refresh_interval_ms == 2 * 3_600_000
    assert config.old_signing_keys == (OldSigningKey("ed25519:old", KEY, 1_600_000_000_000),)
    assert config.allow_public_rooms_over_federation is True
    assert config.serve_server_wellknown is True
    assert config.tls_certificate_path == Path("/srv/tls.crt")
    assert config.tls_private_key_path == Path("/keys/tls.key")
    assert config.client_timeout_ms == 30_000
    assert config.destination_min_retry_interval_ms == 60_000
    assert config.destination_retry_multiplier == 3.0
    assert config.destination_max_retry_interval_ms == 86_400_000


def test_the_legacy_federation_blacklist_replaces_both_global_lists() -> None:
    config = federation(
        federation_ip_range_blacklist=["192.168.0.0/16"], ip_range_whitelist=["127.0.0.1"]
    )
    assert config.ip_range_blacklist[0] == ipaddress.ip_network("192.168.0.0/16")
    assert config.ip_range_whitelist == ()


def test_an_empty_trusted_key_servers_list_means_no_notary() -> None:
    assert federation(trusted_key_servers=[]).trusted_key_servers == ()
    assert DEFAULT_TRUSTED_KEY_SERVERS  # and leaving it out keeps matrix.org


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"federation_domain_whitelist": ["ok.example", "bad name"]},
            "federation_domain_whitelist[1]: 'bad name' is not a valid server name",
        ),
        (
            {"federation_ip_range_blacklist": ["10.0.0.0/8", "nonsense"]},
            "federation_ip_range_blacklist[1]: 'nonsense' is not an IP address or CIDR range",
        ),
        (
            # Reported once, by the pushers' settings, which read the same list.
            {"ip_range_blacklist": ["nonsense"]},
            "ip_range_blacklist: 'nonsense' is not an IP address or CIDR range",
        ),
        (
            {"federation_client_minimum_tls_version": 2},
            "federation_client_minimum_tls_version: must be one of 1, 1.1, 1.2, 1.3, got '2'",
        ),
        (
            {"federation_custom_ca_list": []},
            "federation_custom_ca_list: lists no certificate files",
        ),
        (
            {"trusted_key_servers": [{"server_name": "n.example", "verify_keys": {"k": KEY}}]},
            "trusted_key_servers[0].verify_keys.k: key ID 'k' is not of the form ed25519:<version>",
        ),
        (
            {
                "trusted_key_servers": [
                    {"server_name": "n.example", "verify_keys": {"ed25519:k": "%%"}}
                ]
            },
            "trusted_key_servers[0].verify_keys.ed25519:k: is not valid base64",
        ),
        (
            {
                "trusted_key_servers": [
                    {"server_name": "n.example", "verify_keys": {"ed25519:k": "AAAA"}}
                ]
            },
            "trusted_key_servers[0].verify_keys.ed25519:k: an ed25519 public key is 32 bytes, got 3",
        ),
        (
            {"trusted_key_servers": [{"server_name": "n.example", "verify_kyes": {}}]},
            "trusted_key_servers[0].verify_kyes: unknown key (did you mean 'verify_keys'?)",
        ),
        (
            {
                "federation_verify_certificates": False,
                "trusted_key_servers": [{"server_name": "n.example"}],
            },
            "trusted_key_servers[0].verify_keys: required when federation_verify_certificates "
            "is false (or set accept_keys_insecurely: true)",
        ),
        (
            {"old_signing_keys": {"ed25519:old": {"key": KEY}}},
            "old_signing_keys.ed25519:old.expired_ts: is required",
        ),
        (
            {"key_refresh_interval": 0},
            "key_refresh_interval: must be a positive duration, got 0",
        ),
        (
            {"federation": {"destination_retry_multiplier": 0.5}},
            "federation.destination_retry_multiplier: must be at least 1, got 0.5",
        ),
        (
            {
                "federation": {
                    "destination_min_retry_interval": "1d",
                    "destination_max_retry_interval": "1h",
                }
            },
            "federation.destination_max_retry_interval: must not be shorter than "
            "federation.destination_min_retry_interval",
        ),
        (
            {"federation": {"client_timout": "5s"}},
            "federation.client_timout: unknown key (did you mean 'client_timeout'?)",
        ),
    ],
)
def test_mistakes_are_one_line_naming_the_key(extra: dict[str, Any], expected: str) -> None:
    assert problems(minimal(**extra)) == [expected]


def test_synapse_retry_keys_we_do_not_use_are_tolerated_with_a_warning() -> None:
    _, warnings = parse_config(
        minimal(federation={"max_short_retries": 3, "client_timeout": "10s"}),
        base_dir=Path("/srv"),
    )
    assert warnings == [
        "federation.max_short_retries: a Synapse setting this server does not use; ignored"
    ]


def test_a_tls_listener_needs_the_certificate_and_key() -> None:
    assert problems(minimal(listeners=[{"port": 8448, "tls": True}])) == [
        "tls_certificate_path: is required when a listener has tls: true",
        "tls_private_key_path: is required when a listener has tls: true",
    ]
    config, _ = parse_config(
        minimal(
            listeners=[{"port": 8448, "tls": True}],
            tls_certificate_path="c.pem",
            tls_private_key_path="k.pem",
        ),
        base_dir=Path("/srv"),
    )
    assert config.listeners[0].tls is True


def test_missing_tls_and_ca_files_are_reported_by_the_path_check(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("x")
    lines = problems(
        minimal(
            signing_key_path=str(tmp_path / "signing.key"),
            tls_certificate_path="missing.crt",
            tls_private_key_path=str(tmp_path / "key.pem"),
            federation_custom_ca_list=["ca.pem"],
        ),
        check_paths=True,
        creates_signing_key=True,
    )
    assert lines == [
        f"tls_certificate_path: {Path('/srv/missing.crt')} is not a file",
        f"federation_custom_ca_list[0]: {Path('/srv/ca.pem')} is not a file",
    ]
