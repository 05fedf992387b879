"""Where a config comes from: a YAML file, or the embedded default."""

from __future__ import annotations

from pathlib import Path

import yaml

from homeserver.config.model import HomeServerConfig
from homeserver.config.parse import parse_config
from homeserver.config.reader import ConfigError

EMBEDDED_SERVER_NAME = "localhost"
EMBEDDED_PORT = 8008
EMBEDDED_BIND_ADDRESS = "127.0.0.1"


def load_config_file(
    path: Path, *, require_signing_key: bool = False
) -> tuple[HomeServerConfig, list[str]]:
    """Read and validate a YAML config file; relative paths in it are relative to it.

    The folders it names must exist (the signing key's) or be creatable (the SQLite
    database's); ``require_signing_key``: the key file too (for ``check-config``).
    """
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise ConfigError("", f"cannot read config file {path}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError("", f"{path} is not valid YAML{where}: {problem}") from None
    return parse_config(
        data,
        base_dir=path.resolve().parent,
        check_paths=True,
        require_signing_key=require_signing_key,
    )


def embedded_default_config(
    data_dir: Path, *, port: int = EMBEDDED_PORT, bind_address: str = EMBEDDED_BIND_ADDRESS
) -> HomeServerConfig:
    """The zero-configuration server: ``localhost`` on 127.0.0.1:8008 (or ``port`` and
    ``bind_address``), SQLite and the signing key under ``data_dir``, registration
    closed."""
    data = {
        "server_name": EMBEDDED_SERVER_NAME,
        "public_baseurl": f"http://localhost:{port}/",
        "listeners": [
            {
                "port": port,
                "bind_addresses": [bind_address],
                "type": "http",
                "resources": [{"names": ["client"]}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": "homeserver.db"}},
        "signing_key_path": f"{EMBEDDED_SERVER_NAME}.signing.key",
        "media_store_path": "media_store",
        "enable_registration": False,
    }
    # The key and database are created under data_dir on first start: it must be creatable.
    config, _ = parse_config(
        data, base_dir=data_dir.resolve(), check_paths=True, creates_signing_key=True
    )
    return config
