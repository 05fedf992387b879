"""An operator's first hour: the embedded default's options, what start-up says,
and a database that will not change its server name (what ``/`` shows:
tests/webclient/test_serving.py).

Real ``homeserver`` processes; the server-name check on both engines.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from homeserver.crypto.keys import write_new_signing_key
from tests.support import http
from tests.support.database import run_sql
from tests.support.server_process import (
    ServerProcess,
    _environment,
    free_port,
    run_command,
    server_config,
)


@contextmanager
def embedded_default(cwd: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``homeserver --port <free> ARGS`` in ``cwd``, once it answers /health."""
    port = free_port()
    process = subprocess.Popen(
        # Tests never run npm: the web client is built (or not) before they run.
        [sys.executable, "-m", "homeserver", "--port", str(port), "--no-web-client-build", *args],
        cwd=cwd,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        http.wait_until_healthy(
            f"http://127.0.0.1:{port}", process, timeout=30, what="the embedded default"
        )
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=30)


def output_of(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.read()


def test_embedded_default_listens_where_port_and_bind_say(tmp_path: Path) -> None:
    with embedded_default(tmp_path, "--bind", "127.0.0.1") as (_, port):
        versions = http.request(f"http://127.0.0.1:{port}", "GET", "/_matrix/client/versions")
        assert versions.status == 200
        well_known = http.request(f"http://127.0.0.1:{port}", "GET", "/.well-known/matrix/client")
        assert well_known.json()["m.homeserver"]["base_url"] == f"http://localhost:{port}/"


def test_port_and_bind_are_refused_with_a_config_file(tmp_path: Path) -> None:
    database = {"name": "sqlite3", "args": {"database": str(tmp_path / "hs.db")}}
    config = tmp_path / "homeserver.yaml"
    config.write_text(yaml.safe_dump(server_config(tmp_path, database, free_port())))
    result = run_command(["-c", str(config), "--port", "9000"], cwd=tmp_path)
    assert result.returncode == 1
    assert "--port and --bind set up the embedded default" in result.stderr
    bad_port = run_command(["--port", "70000"], cwd=tmp_path)
    assert bad_port.returncode == 1
    assert "--port must be between 1 and 65535" in bad_port.stderr


def test_startup_says_registration_is_closed_and_how_to_create_accounts(tmp_path: Path) -> None:
    with embedded_default(tmp_path, "--data-dir", "elsewhere") as (process, _):
        pass
    log = output_of(process)
    assert "registration is closed" in log
    assert "homeserver register-user -u NAME [--admin] --data-dir elsewhere" in log


def start_config(
    tmp_path: Path, database_config: dict[str, Any], server_name: str
) -> ServerProcess:
    config = server_config(tmp_path, database_config, free_port(), server_name=server_name)
    key_path = Path(config["signing_key_path"])
    if not key_path.exists():
        write_new_signing_key(key_path)
    return ServerProcess(tmp_path, config)


def test_database_of_one_server_refuses_to_start_under_another_name(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    first = start_config(tmp_path, database_config, "localhost")
    first.start()
    first.stop()
    other = tmp_path / "other"
    other.mkdir()
    renamed = start_config(other, database_config, "example.com")
    result = run_command(["-c", str(renamed.config_path)], cwd=other)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert "the database belongs to server 'localhost', not 'example.com'" in last_line
    # Under its own name it still starts.
    first.start()
    first.stop()


def test_database_from_before_the_name_was_recorded_belongs_to_its_users(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    """A database of an earlier version: the name is recorded from its accounts."""
    first = start_config(tmp_path, database_config, "localhost")
    first.start()
    first.stop()
    result = run_command(
        ["register-user", "-c", str(first.config_path), "-u", "alice", "-p", "pw"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    run_sql(database_config, "DELETE FROM server_identity")
    other = tmp_path / "other"
    other.mkdir()
    renamed = start_config(other, database_config, "example.com")
    refused = run_command(["-c", str(renamed.config_path)], cwd=other)
    assert refused.returncode == 1
    assert "belongs to server 'localhost'" in refused.stderr
