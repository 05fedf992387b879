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
