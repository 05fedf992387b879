"""Config validation: every mistake is one clear message naming its key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeserver.config.generate import sample_config
from homeserver.config.parse import parse_config
from homeserver.config.reader import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def minimal(**extra: Any) -> dict[str, Any]:
    return {"server_name": "example.org", "listeners": [{"port": 8008}], **extra}


def error_for(data: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, base_dir=Path("/srv"))
    return str(raised.value)


def test_committed_sample_is_the_generated_one() -> None:
    assert (REPO_ROOT / "config.sample.yaml").read_text() == sample_config()


def test_sample_parses_without_warnings() -> None:
    config, warnings = parse_config(yaml.safe_load(sample_config()), base_dir=Path("/srv"))
    assert warnings == []
    assert config.server_name == "example.com"
    assert config.max_upload_size == 50 * 1024 * 1024


def test_sample_documents_every_key_the_parser_reads() -> None:
    keys: set[str] = set()
    parse_config(yaml.safe_load(sample_config()), base_dir=Path("/srv"), keys_read=keys)
    text = sample_config()
    undocumented = [k for k in keys if not re.search(rf"^#?{re.escape(k)}:", text, re.M)]
    assert undocumented == []


def test_unknown_key_is_named_with_a_suggestion() -> None:
    message = error_for(minimal(enable_registraton=True))
    assert message == "enable_registraton: unknown key (did you mean 'enable_registration'?)"


def test_nested_unknown_key_is_named_by_its_path() -> None:
    message = error_for(minimal(rc_login={"adress": {"per_second": 1}}))
    assert message.startswith("rc_login.adress: unknown key")


def test_wrong_type_names_the_key_and_the_types() -> None:
    message = error_for({"server_name": "example.org", "listeners": [{"port": "eighty"}]})
    assert message == "listeners[0].port: expected an integer, got a string"


def test_out_of_range_value_is_refused() -> None:
    assert "must be between 0 and 65535" in error_for(
        {"server_name": "example.org", "listeners": [{"port": 70000}]}
    )


def test_missing_server_name_is_required() -> None:
    assert error_for({"listeners": [{"port": 1}]}) == "server_name: is required"


def test_invalid_server_name_is_refused() -> None:
    assert error_for(minimal(server_name="bad name")).startswith("server_name:")


def test_synapse_only_keys_are_tolerated_with_a_warning() -> None:
    _, warnings = parse_config(
        minimal(report_stats=False, macaroon_secret_key="x"), base_dir=Path("/srv")
    )
    assert any(w.startswith("report_stats:") for w in warnings)
    assert len(warnings) == 2


def test_open_registration_without_verification_is_refused() -> None:
    assert error_for(minimal(enable_registration=True)).startswith("enable_registration:")
    config, _ = parse_config(
        minimal(enable_registration=True, enable_registration_without_verification=True),
        base_dir=Path("/srv"),
    )
    assert config.enable_registration


def test_unknown_room_version_is_refused() -> None:
    assert error_for(minimal(default_room_version="99")).startswith("default_room_version:")


def test_sizes_accept_suffixes() -> None:
    config, _ = parse_config(
        minimal(max_upload_size="10M", max_request_body_size="512K"), base_dir=Path("/srv")
    )
    assert (config.max_upload_size, config.max_request_body_size) == (10 * 1024**2, 512 * 1024)
    assert error_for(minimal(max_upload_size="lots")).startswith("max_upload_size:")


def test_relative_paths_are_relative_to_the_config_folder() -> None:
    config, _ = parse_config(minimal(signing_key_path="keys/k.key"), base_dir=Path("/srv/hs"))
    assert config.signing_key_path == Path("/srv/hs/keys/k.key")


def test_postgres_database_args_are_checked() -> None:
    config, _ = parse_config(
        minimal(
            database={
                "name": "psycopg2",
                "args": {"user": "u", "database": "d", "host": "h", "cp_min": 2, "cp_max": 3},
            }
        ),
        base_dir=Path("/srv"),
    )
    assert config.database.args == {"user": "u", "database": "d", "host": "h"}
    assert (config.database.cp_min, config.database.cp_max) == (2, 3)
    assert error_for(minimal(database={"name": "mysql"})).startswith("database.name:")
    assert error_for(
        minimal(database={"name": "psycopg2", "args": {"cp_min": 5, "cp_max": 2}})
    ).startswith("database.args.cp_min:")


def test_rate_limits_default_to_synapse_values() -> None:
    config, _ = parse_config(minimal(rc_message={"per_second": 1}), base_dir=Path("/srv"))
    assert (config.rate_limits.message.per_second, config.rate_limits.message.burst_count) == (
        1.0,
        10,
    )
    assert config.rate_limits.login_failed_attempts.burst_count == 3


def test_top_level_must_be_a_mapping() -> None:
    assert error_for(["not", "a", "mapping"]) == "expected a mapping, got a list"


def problems_for(data: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(data, base_dir=Path("/srv"), **kwargs)
    return raised.value.lines


def test_every_problem_is_reported_not_just_the_first() -> None:
    problems = problems_for(
        {
            "server_name": "example.org",
            "enable_registraton": True,
            "max_upload_size": "lots",
            "rc_login": {"adress": {}, "account": {"per_second": "fast"}},
            "database": {"name": "sqlite3", "args": {"databse": "x.db"}},
        }
    )
    assert problems == [
        "listeners: is required",
        "database.args.databse: unknown key (did you mean 'database'?)",
        "max_upload_size: expected a size such as 10M or 512K, got 'lots'",
        "rc_login.account.per_second: expected a number, got a string",
        "rc_login.adress: unknown key (did you mean 'address'?)",
        "enable_registraton: unknown key (did you mean 'enable_registration'?)",
    ]


def test_several_problems_in_one_listener_are_all_reported() -> None:
    problems = problems_for(
        {
            "server_name": "example.org",
            "listeners": [{"port": "http", "tls": "on", "x_forwarded": "yes", "bind_adresses": []}],
        }
    )
    assert problems == [
        "listeners[0].port: expected an integer, got a string",
        "listeners[0].tls: expected true or false, got a string",
        "listeners[0].x_forwarded: expected true or false, got a string",
        "listeners[0].bind_adresses: unknown key (did you mean 'bind_addresses'?)",
    ]


def test_resource_names_not_served_warn_and_unknown_ones_are_errors() -> None:
    config, warnings = parse_config(
        minimal(
            listeners=[{"port": 8008, "resources": [{"names": ["client", "media", "metrics"]}]}]
        ),
        base_dir=Path("/srv"),
    )
    assert config.listeners[0].resources == {"client", "media"}
    assert warnings == [
        "listeners[0].resources[0].names: resource 'metrics' is not served by this server yet; ignored",
    ]
    message = error_for(minimal(listeners=[{"port": 8008, "resources": [{"names": ["clinet"]}]}]))
    assert message.startswith(
        "listeners[0].resources[0].names: unknown resource 'clinet' (did you mean 'client'?"
    )
    # Only names we do not serve: the listener serves /health, not the client API.
    config, _ = parse_config(
        minimal(listeners=[{"port": 8008, "resources": [{"names": ["replication"]}]}]),
        base_dir=Path("/srv"),
    )
    assert config.listeners[0].resources == frozenset()


def test_synapse_metrics_listener_is_ignored_with_a_warning() -> None:
    config, warnings = parse_config(
        minimal(listeners=[{"port": 8008}, {"port": 9000, "type": "metrics"}]),
        base_dir=Path("/srv"),
    )
    assert [listener.port for listener in config.listeners] == [8008]
    assert warnings == ["listeners[1].type: a Synapse metrics listener is not served; ignored"]
    assert error_for(minimal(listeners=[{"port": 9000, "type": "manhole"}])) == (
        "listeners: at least one http listener is required"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_upload_size", 0),
        ("max_upload_size", "0M"),
        ("max_upload_size", -1),
        ("max_request_body_size", 0),
        ("refreshable_access_token_lifetime", 0),
        ("refreshable_access_token_lifetime", -5),
    ],
)
def test_sizes_and_durations_that_make_no_sense_are_refused(key: str, value: Any) -> None:
    message = error_for(minimal(**{key: value}))
    assert message.startswith(f"{key}: must be a positive")


def test_password_config_enabled_takes_synapse_only_for_reauth() -> None:
    config, warnings = parse_config(
        minimal(password_config={"enabled": "only_for_reauth", "localdb_enabled": True}),
        base_dir=Path("/srv"),
    )
    assert config.password_login_enabled is False
    assert warnings[0].startswith("password_config.enabled: 'only_for_reauth' is not supported")
    assert error_for(minimal(password_config={"enabled": "sometimes"})) == (
        "password_config.enabled: expected true, false or only_for_reauth, got 'sometimes'"
    )


def test_synapse_sub_keys_of_sections_we_read_are_tolerated() -> None:
    _, warnings = parse_config(
        minimal(
            listeners=[{"port": 8008, "tag": "main", "request_id_header": "X-Request-ID"}],
            database={
                "name": "sqlite3",
                "txn_limit": 10,
                "args": {"database": "x.db", "cp_min": 1},
            },
        ),
        base_dir=Path("/srv"),
    )
    assert sorted(w.split(":")[0] for w in warnings) == [
        "database.args.cp_min",
        "database.txn_limit",
        "listeners[0].request_id_header",
        "listeners[0].tag",
    ]


def test_paths_are_checked_when_asked(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    (tmp_path / "a-file").write_text("")
    data = minimal(
        signing_key_path=str(missing / "k.key"),
        log_config=str(tmp_path / "log.yaml"),
        database={"name": "sqlite3", "args": {"database": str(tmp_path / "a-file/db/hs.db")}},
    )
    problems = problems_for(data, check_paths=True)
    assert problems == [
        f"signing_key_path: the folder {missing} does not exist",
        f"database.args.database: the folder {tmp_path / 'a-file/db'} does not exist and "
        "cannot be created",
        f"log_config: {tmp_path / 'log.yaml'} is not a file",
    ]
    # A key created on first start (the embedded default) only needs a creatable folder.
    data["database"]["args"]["database"] = str(missing / "hs.db")
    (tmp_path / "log.yaml").write_text("version: 1\n")
    parse_config(data, base_dir=tmp_path, check_paths=True, creates_signing_key=True)
    # check-config also wants the key file itself.
    missing.mkdir(parents=True)
    assert problems_for(data, check_paths=True, require_signing_key=True) == [
        f"signing_key_path: {missing / 'k.key'} does not exist (create one with 'homeserver "
        "generate-config', or copy your Synapse server's key file)"
    ]


def test_room_encryption_default_takes_synapse_values_and_defaults_to_invite() -> None:
    def setting(text: str) -> str:
        data = yaml.safe_load(f"server_name: example.org\nlisteners: [{{port: 8008}}]\n{text}")
        config, warnings = parse_config(data, base_dir=Path("/srv"))
        assert warnings == []
        return config.encryption_enabled_by_default_for_room_type

    # Synapse's default is off; encrypting private rooms is this server's choice.
    assert setting("") == "invite"
    assert setting("encryption_enabled_by_default_for_room_type: all") == "all"
    # Unquoted, YAML reads off as false: Synapse takes it as off, so do we.
    assert setting("encryption_enabled_by_default_for_room_type: off") == "off"
    assert setting("encryption_enabled_by_default_for_room_type: 'off'") == "off"
    message = error_for(minimal(encryption_enabled_by_default_for_room_type="private"))
    assert message == (
        "encryption_enabled_by_default_for_room_type: must be one of all, invite, off, "
        "got 'private'"
    )
