"""The ``homeserver`` command as an operator runs it: real processes, real files."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeserver.crypto.keys import write_new_signing_key
from tests.support import http
from tests.support.accounts import SHARED_SECRET
from tests.support.server_process import (
    ServerProcess,
    _environment,
    free_port,
    run_command,
    server_config,
)


def write_config(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def sqlite_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    database = {"name": "sqlite3", "args": {"database": str(tmp_path / "hs.db")}}
    return server_config(tmp_path, database, free_port(), **extra)


def test_bad_config_key_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, sqlite_config(tmp_path, enable_registraton=True))
    result = run_command(["-c", str(path)], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "homeserver: config error: enable_registraton: unknown key "
        "(did you mean 'enable_registration'?)"
    ]


def test_bad_config_value_exits_nonzero_naming_the_key(tmp_path: Path) -> None:
    data = sqlite_config(tmp_path)
    data["listeners"][0]["port"] = "http"
    result = run_command(["-c", str(write_config(tmp_path, data))], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "homeserver: config error: listeners[0].port: expected an integer, got a string"
    )


def test_invalid_yaml_is_reported_with_its_position(tmp_path: Path) -> None:
    path = write_config(tmp_path, "server_name: [unclosed\n")
    result = run_command(["-c", str(path)], cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not valid YAML at line" in result.stderr


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run_command(["-c", str(tmp_path / "nope.yaml")], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("homeserver: config error: cannot read config file")


def test_missing_signing_key_is_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, sqlite_config(tmp_path))
    result = run_command(["-c", str(path)], cwd=tmp_path)
    assert result.returncode == 1
    assert "signing key file" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_generate_config_writes_a_config_that_starts(tmp_path: Path) -> None:
    result = run_command(["generate-config", "--server-name", "chat.example.org"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config_path = tmp_path / "homeserver.yaml"
    key_path = tmp_path / "data" / "chat.example.org.signing.key"
    assert key_path.read_text().startswith("ed25519 a_")
    assert (config_path.stat().st_mode & 0o777) == 0o600
    data = yaml.safe_load(config_path.read_text())
    assert data["server_name"] == "chat.example.org"
    assert len(data["registration_shared_secret"]) >= 32
    check = run_command(["check-config", "-c", str(config_path)], cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "OK" in check.stdout
    # Refuses to overwrite the config (and with it the secret).
    again = run_command(["generate-config", "--server-name", "x.org"], cwd=tmp_path)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_generated_signing_key_is_readable_by_synapse_tooling(tmp_path: Path) -> None:
    # signedjson is the library Synapse reads its key file with.
    from signedjson.key import read_signing_keys

    run_command(["generate-config", "--server-name", "example.org"], cwd=tmp_path)
    with (tmp_path / "data" / "example.org.signing.key").open() as stream:
        keys = read_signing_keys(stream)
    assert keys[0].alg == "ed25519" and keys[0].version.startswith("a_")


def test_register_user_writes_an_admin_to_the_database(tmp_path: Path) -> None:
    path = write_config(tmp_path, sqlite_config(tmp_path))
    result = run_command(
        ["register-user", "-c", str(path), "-u", "root", "-p", "pw", "--admin"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "registered @root:localhost (admin)"
    with sqlite3.connect(tmp_path / "hs.db") as conn:
        row = conn.execute(
            "SELECT is_admin, password_hash FROM users WHERE user_id = ?", ("@root:localhost",)
        ).fetchone()
    assert row[0] == 1 and row[1].startswith("$argon2id$")


def test_register_user_reads_password_from_stdin_and_refuses_duplicates(tmp_path: Path) -> None:
    path = write_config(tmp_path, sqlite_config(tmp_path))
    first = run_command(
        ["register-user", "-c", str(path), "-u", "eve"], cwd=tmp_path, stdin="secret\n"
    )
    assert first.returncode == 0, first.stderr
    second = run_command(
        ["register-user", "-c", str(path), "-u", "eve"], cwd=tmp_path, stdin="secret\n"
    )
    assert second.returncode == 1
    assert second.stderr.strip() == "homeserver: User ID already taken."


def test_register_user_over_http_uses_the_shared_secret(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path, sqlite_config(tmp_path, registration_shared_secret=SHARED_SECRET)
    )
    server.start()
    try:
        result = run_command(
            [
                "register-user",
                "-c",
                str(server.config_path),
                "--url",
                server.base_url,
                "-u",
                "frank",
                "-p",
                "pw",
            ],
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "registered @frank:localhost"
        wrong = run_command(
            [
                "register-user",
                "-c",
                str(server.config_path),
                "--url",
                server.base_url,
                "-k",
                "wrong",
                "-u",
                "gina",
                "-p",
                "pw",
            ],
            cwd=tmp_path,
        )
        assert wrong.returncode == 1
        assert wrong.stderr.strip() == "homeserver: the server refused: HMAC incorrect"
    finally:
        server.stop()


def test_database_from_a_newer_version_stops_startup(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, sqlite_config(tmp_path))
    server.start()
    server.stop()
    with sqlite3.connect(tmp_path / "hs.db") as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (9999, 'future', 0)")
    result = run_command(["-c", str(server.config_path)], cwd=tmp_path)
    assert result.returncode == 1
    assert "written by a newer version" in result.stderr.strip().splitlines()[-1]


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, sqlite_config(tmp_path))
    server.start()
    try:
        other = tmp_path / "other"
        other.mkdir()
        data = sqlite_config(other)
        data["listeners"][0]["port"] = server.port
        path = write_config(other, data)
        write_new_signing_key(Path(data["signing_key_path"]))
        result = run_command(["-c", str(path)], cwd=other)
        assert result.returncode == 1
        assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
    finally:
        server.stop()


@pytest.mark.slow
def test_no_arguments_runs_the_embedded_default(tmp_path: Path) -> None:
    """The README's first command: no config, SQLite and key under ./data, port 8008."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8008)) == 0:
            pytest.fail("port 8008 is already in use; this test needs it for the embedded default")
    process = subprocess.Popen(
        # Without npm on the PATH: a test never builds the web client (a stale build
        # costs one warning, tests/webclient/test_build.py).
        [sys.executable, "-m", "homeserver"],
        cwd=tmp_path,
        env={**_environment(), "PATH": str(Path(sys.executable).parent)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = http.request(
                    "http://127.0.0.1:8008", "GET", "/_matrix/client/versions", timeout=1
                )
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert process.poll() is None, "the answer came from another server on port 8008"
        assert response.status == 200
        assert "v1.1" in response.json()["versions"]
        assert (tmp_path / "data" / "homeserver.db").exists()
        assert (tmp_path / "data" / "localhost.signing.key").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_check_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    data = sqlite_config(tmp_path, enable_registraton=True, max_upload_size=0)
    del data["listeners"]
    path = write_config(tmp_path, data)
    write_new_signing_key(Path(data["signing_key_path"]))
    result = run_command(["check-config", "-c", str(path)], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "homeserver: config error: listeners: is required",
        "homeserver: config error: max_upload_size: must be a positive size, got 0",
        "homeserver: config error: enable_registraton: unknown key "
        "(did you mean 'enable_registration'?)",
    ]


def test_start_reports_every_problem_at_once(tmp_path: Path) -> None:
    data = sqlite_config(tmp_path, max_request_body_size=0)
    data["listeners"][0]["resources"] = [{"names": ["client", "clinet"]}]
    data["database"]["args"]["databse"] = "x.db"
    result = run_command(["-c", str(write_config(tmp_path, data))], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "homeserver: config error: listeners[0].resources[0].names: unknown resource 'clinet' "
        "(did you mean 'client'? known: client, consent, federation, health, keys, media, "
        "metrics, openid, replication, static)",
        "homeserver: config error: database.args.databse: unknown key (did you mean 'database'?)",
        "homeserver: config error: max_request_body_size: must be a positive size, got 0",
    ]


def test_check_config_warns_about_resources_not_served(tmp_path: Path) -> None:
    data = sqlite_config(tmp_path)
    data["listeners"][0]["resources"] = [{"names": ["client", "media", "metrics"]}]
    path = write_config(tmp_path, data)
    write_new_signing_key(Path(data["signing_key_path"]))
    result = run_command(["check-config", "-c", str(path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # "media" is served (the content repository); "metrics" not yet.
    assert result.stderr.strip().splitlines() == [
        "homeserver: warning: listeners[0].resources[0].names: resource 'metrics' is not "
        "served by this server yet; ignored"
    ]


def test_check_config_reports_paths_that_would_fail_later(tmp_path: Path) -> None:
    data = sqlite_config(
        tmp_path,
        signing_key_path=str(tmp_path / "keys" / "k.key"),
        log_config=str(tmp_path / "log.yaml"),
    )
    (tmp_path / "a-file").write_text("")
    data["database"]["args"]["database"] = str(tmp_path / "a-file" / "hs.db")
    path = write_config(tmp_path, data)
    for command in (["check-config", "-c", str(path)], ["-c", str(path)]):
        result = run_command(command, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"homeserver: config error: signing_key_path: the folder {tmp_path / 'keys'} "
            "does not exist",
            f"homeserver: config error: database.args.database: the folder "
            f"{tmp_path / 'a-file'} does not exist and cannot be created",
            f"homeserver: config error: log_config: {tmp_path / 'log.yaml'} is not a file",
        ]
    # The folder exists but the key does not: the server would stop, so check-config says so.
    (tmp_path / "keys").mkdir()
    data["database"]["args"]["database"] = str(tmp_path / "new-folder" / "hs.db")
    del data["log_config"]
    result = run_command(["check-config", "-c", str(write_config(tmp_path, data))], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"homeserver: config error: signing_key_path: {tmp_path / 'keys' / 'k.key'} does not "
        "exist (create one with 'homeserver generate-config', or copy your Synapse server's "
        "key file)"
    ]


def test_check_config_of_the_embedded_default_needs_a_creatable_data_dir(tmp_path: Path) -> None:
    ok = run_command(["check-config", "--data-dir", str(tmp_path / "new" / "data")], cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "a-file").write_text("")
    bad = run_command(
        ["check-config", "--data-dir", str(tmp_path / "a-file" / "data")], cwd=tmp_path
    )
    assert bad.returncode == 2
    data_dir = tmp_path / "a-file" / "data"
    assert bad.stderr.strip().splitlines() == [
        f"homeserver: config error: {key}: the folder {data_dir} does not exist and cannot "
        "be created"
        for key in ("signing_key_path", "database.args.database")
    ]
