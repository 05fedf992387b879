"""Checking the files and folders a config names, before anything is started.

So that ``check-config`` (and start-up, before anything is opened) reports a
signing key or a database in a folder that does not exist, instead of the server
failing on it later.
"""

from __future__ import annotations

import os
from pathlib import Path

from homeserver.config.federation import federation_path_problems
from homeserver.config.model import HomeServerConfig
from homeserver.config.reader import ConfigError


def path_problems(
    config: HomeServerConfig,
    *,
    creates_signing_key: bool = False,
    require_signing_key: bool = False,
) -> list[ConfigError]:
    """The problems with the paths in ``config``.

    The SQLite database's folder is created at start-up, so it must exist or be
    creatable.  The signing key's folder must exist, or be creatable when the key is
    created on first start (``creates_signing_key``: the embedded default); with
    ``require_signing_key`` the key file itself must exist (``check-config``: the
    server would stop on it).  ``log_config`` must be a readable file.
    """
    problems = []
    key_path = config.signing_key_path
    if key_path.is_dir():
        problems.append(ConfigError("signing_key_path", f"{key_path} is a folder, not a file"))
    elif not key_path.exists():
        if creates_signing_key:
            if (why := _cannot_create_folder(key_path.parent)) is not None:
                problems.append(ConfigError("signing_key_path", why))
        elif not key_path.parent.is_dir():
            problems.append(
                ConfigError("signing_key_path", f"the folder {key_path.parent} does not exist")
            )
        elif require_signing_key:
            problems.append(
                ConfigError(
                    "signing_key_path",
                    f"{key_path} does not exist (create one with 'homeserver "
                    "generate-config', or copy your Synapse server's key file)",
                )
            )
    if config.database.name == "sqlite3" and "database" in config.database.args:
        database = Path(config.database.args["database"])
        key = "database.args.database"
        if database.is_dir():
            problems.append(ConfigError(key, f"{database} is a folder, not a file"))
        elif not database.exists() and (why := _cannot_create_folder(database.parent)):
            problems.append(ConfigError(key, why))
    if config.log_config is not None:
        if not config.log_config.is_file():
            problems.append(ConfigError("log_config", f"{config.log_config} is not a file"))
        elif not os.access(config.log_config, os.R_OK):
            problems.append(ConfigError("log_config", f"{config.log_config} is not readable"))
    problems.extend(federation_path_problems(config.federation))
    return problems


def _cannot_create_folder(folder: Path) -> str | None:
    """Why ``folder`` cannot be used to create a file in, or None if it can."""
    if folder.is_dir():
        return None if os.access(folder, os.W_OK | os.X_OK) else f"cannot write to {folder}"
    # The nearest existing ancestor must be a folder we can create sub-folders in.
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK):
        return None
    return f"the folder {folder} does not exist and cannot be created"
