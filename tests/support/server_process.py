"""Running the real ``homeserver`` command in a child process, as an operator would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support import http

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_command(
    args: Sequence[str], *, cwd: Path, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``homeserver <args>`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "homeserver", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_environment(),
    )


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Ask ``process`` to stop (SIGTERM), and kill it if it has not within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def server_config(
    tmp_path: Path, database: dict[str, Any], port: int, **extra: Any
) -> dict[str, Any]:
    """A minimal config for a test server on ``port`` using ``database``."""
    config: dict[str, Any] = {
        "server_name": "localhost",
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "resources": [{"names": ["client"]}],
            }
        ],
        "database": database,
        "signing_key_path": str(tmp_path / "localhost.signing.key"),
        "media_store_path": str(tmp_path / "media"),
        # The cheapest password hash argon2id allows: tests and benches log in a lot.
        "password_config": {"argon2": {"time_cost": 1, "memory_cost": "8K", "parallelism": 1}},
        # No web client unless a test asks for one (tests/webclient): what a path
        # outside the API answers must not depend on whether web-client/dist was built.
        # A test never runs npm either (nor does ServerProcess).
        "web_client": {"enabled": False, "build": "never"},
    }
    config.update(extra)
    return config


class ServerProcess:
    """``homeserver -c <config>`` in the background, stopped by :meth:`stop`."""

    def __init__(self, tmp_path: Path, config: dict[str, Any]) -> None:
        self.tmp_path = tmp_path
        self.config_path = tmp_path / "homeserver.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.port = int(config["listeners"][0]["port"])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(
        self, *, create_key: bool = True, timeout: float = 30, build_web_client: bool = False
    ) -> None:
        """``build_web_client``: let the server build the web client as ``homeserver``
        does; by default a test server serves web-client/dist as it is, never npm."""
        key_path = Path(yaml.safe_load(self.config_path.read_text())["signing_key_path"])
        if create_key and not key_path.exists():
            from homeserver.crypto.keys import write_new_signing_key

            write_new_signing_key(key_path)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "homeserver",
                "-c",
                str(self.config_path),
                *([] if build_web_client else ["--no-web-client-build"]),
            ],
            cwd=self.tmp_path,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=_environment(),
        )
        try:
            http.wait_until_healthy(self.base_url, self._process, timeout=timeout, what="server")
        except RuntimeError as failed:
            self.stop()
            raise RuntimeError(f"{failed}:\n{self.log()}") from None

    @property
    def pid(self) -> int:
        """The running server's process ID (for /proc/<pid>/status, say)."""
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def request(self, method: str, path: str, **kwargs: Any) -> http.Response:
        return http.request(self.base_url, method, path, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
            self._log.close()

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
            self._log.close()
