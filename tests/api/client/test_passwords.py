"""Every byte of a password counts; bcrypt hashes from Synapse still work and get upgraded.

Through the real server over HTTP, on both engines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.support.database import run_sql
from tests.support.matrix import call, login, register, running_server
from tests.support.server_process import ServerProcess

#: 100 bytes; its twin differs only in the last one, past bcrypt's 72-byte reach.
LONG_PASSWORD = "p" * 99 + "a"
LONG_TWIN = "p" * 99 + "b"
PEPPER = "pepper-of-the-old-server"


def with_pepper(pepper: str) -> dict[str, Any]:
    """Server settings with ``pepper`` (keeping the tests' cheap argon2 cost)."""
    if not pepper:
        return {}
    cheap = {"time_cost": 1, "memory_cost": "8K", "parallelism": 1}
    return {"password_config": {"pepper": pepper, "argon2": cheap}}


def login_status(server: ServerProcess, user: str, password: str) -> int:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }
    return call(server, "POST", "/login", body=body).status


def stored_hash(database_config: dict[str, Any], user_id: str) -> str:
    rows = run_sql(database_config, "SELECT password_hash FROM users WHERE user_id = ?", user_id)
    return str(rows[0][0])


def plant_hash(database_config: dict[str, Any], user_id: str, password_hash: str) -> None:
    run_sql(
        database_config,
        "UPDATE users SET password_hash = ? WHERE user_id = ?",
        password_hash,
        user_id,
    )


def synapse_bcrypt_hash(password: str, pepper: str = "") -> str:
    """What Synapse stores: bcrypt over password + pepper, of which bcrypt reads 72 bytes."""
    peppered = (password + pepper).encode("utf-8")[:72]
    return bcrypt.hashpw(peppered, bcrypt.gensalt(4)).decode("ascii")


@pytest.mark.parametrize("pepper", ["", PEPPER])
def test_a_password_differing_only_in_its_100th_byte_is_refused(
    tmp_path: Path, database_config: dict[str, Any], pepper: str
) -> None:
    with running_server(tmp_path, database_config, **with_pepper(pepper)) as server:
        register(server, "longpass", password=LONG_PASSWORD)
        assert stored_hash(database_config, "@longpass:localhost").startswith("$argon2id$")
        assert login_status(server, "longpass", LONG_PASSWORD) == 200
        assert login_status(server, "longpass", LONG_TWIN) == 403
        assert login_status(server, "longpass", LONG_PASSWORD[:72]) == 403


def test_passwords_up_to_512_bytes_are_accepted_and_longer_ones_refused(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(tmp_path, database_config) as server:
        longest = "é" * 256  # 512 bytes of UTF-8
        register(server, "maxlen", password=longest)
        assert login_status(server, "maxlen", longest) == 200
        too_long = call(
            server,
            "POST",
            "/register",
            body={
                "username": "toolong",
                "password": longest + "x",
                "auth": {"type": "m.login.dummy"},
            },
        )
        assert too_long.status == 400, too_long.body
        assert too_long.json()["errcode"] == "M_INVALID_PARAM"
        # At login an over-long password is simply wrong: no hash is computed for it.
        assert login_status(server, "maxlen", longest + "x" * 100_000) == 403
        session = login(server, "maxlen", password=longest)
        change = call(
            server,
            "POST",
            "/account/password",
            token=session["access_token"],
            body={
                "new_password": "x" * 513,
                "auth": {
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": "maxlen"},
                    "password": longest,
                },
            },
        )
        assert change.status == 400 and change.json()["errcode"] == "M_INVALID_PARAM"


@pytest.mark.parametrize("pepper", ["", PEPPER])
def test_synapse_bcrypt_hash_logs_in_and_is_upgraded_to_argon2id(
    tmp_path: Path, database_config: dict[str, Any], pepper: str
) -> None:
    with running_server(tmp_path, database_config, **with_pepper(pepper)) as server:
        register(server, "imported", password="placeholder")
        register(server, "importedlong", password="placeholder")
        plant_hash(database_config, "@imported:localhost", synapse_bcrypt_hash("s3cret", pepper))
        plant_hash(
            database_config, "@importedlong:localhost", synapse_bcrypt_hash(LONG_PASSWORD, pepper)
        )

        assert login_status(server, "imported", "wrong") == 403
        assert stored_hash(database_config, "@imported:localhost").startswith("$2b$")
        assert login_status(server, "imported", "s3cret") == 200
        assert stored_hash(database_config, "@imported:localhost").startswith("$argon2id$")
        assert login_status(server, "imported", "s3cret") == 200
        assert login_status(server, "imported", "s3cret!") == 403

        # Synapse's hash of a long password covered 72 bytes; once upgraded, all count.
        assert login_status(server, "importedlong", LONG_PASSWORD) == 200
        assert stored_hash(database_config, "@importedlong:localhost").startswith("$argon2id$")
        assert login_status(server, "importedlong", LONG_TWIN) == 403
        assert login_status(server, "importedlong", LONG_PASSWORD) == 200


def test_a_cheaper_argon2_hash_is_upgraded_to_the_configured_cost(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    cheap = {"argon2": {"time_cost": 1, "memory_cost": "8K", "parallelism": 1}}
    dearer = {"argon2": {"time_cost": 2, "memory_cost": "16K", "parallelism": 1}}
    with running_server(tmp_path, database_config, password_config=cheap) as server:
        register(server, "rehash", password="pw")
        before = stored_hash(database_config, "@rehash:localhost")
    with running_server(tmp_path, database_config, password_config=dearer) as server:
        assert login_status(server, "rehash", "pw") == 200
        after = stored_hash(database_config, "@rehash:localhost")
    assert "m=8,t=1" in before and "m=16,t=2" in after
