"""A real Synapse (the pinned PyPI release) federating with our servers on loopback.

It is named ``localhost:<federation port>`` like our test servers
(tests/support/federation.py), serves federation and keys over TLS with a leaf
certificate of the test CA, and the client API on a plain HTTP listener, so every
client-API helper written for our server (tests/support/matrix.py, nio) works on it:
:class:`SynapseProcess` is a :class:`ServerProcess` whose command is Synapse's.

Start-up is kept short: the config is written directly (no ``--generate-config``
run), one process, SQLite, no workers, no optional modules, no media thumbnails.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import yaml

from homeserver.crypto.keys import write_new_signing_key
from tests.support import http
from tests.support.accounts import SHARED_SECRET, register_with_secret
from tests.support.federation import LOOPBACK_RANGES, FederatedServer, TestCA
from tests.support.matrix import PASSWORD
from tests.support.server_process import ServerProcess, free_port
from tests.support.synapse import synapse

#: Far above what any test does: rate limits are not what these tests are about.
_GENEROUS = {"per_second": 1000, "burst_count": 1000}
RELAXED_SYNAPSE_LIMITS: dict[str, Any] = {
    "rc_message": _GENEROUS,
    "rc_registration": _GENEROUS,
    "rc_login": {"address": _GENEROUS, "account": _GENEROUS, "failed_attempts": _GENEROUS},
    "rc_admin_redaction": _GENEROUS,
    "rc_joins": {"local": _GENEROUS, "remote": _GENEROUS},
    "rc_joins_per_room": _GENEROUS,
    "rc_key_requests": _GENEROUS,
    "rc_invites": {"per_room": _GENEROUS, "per_user": _GENEROUS, "per_issuer": _GENEROUS},
    "rc_media_create": _GENEROUS,
    "rc_presence": {"per_user": _GENEROUS},
    "rc_delayed_event_mgmt": _GENEROUS,
    "rc_room_creation": _GENEROUS,
    "rc_profile": _GENEROUS,
    "rc_federation": {
        "window_size": 1000,
        "sleep_limit": 1000,
        "sleep_delay": 0,
        "reject_limit": 10_000,
        "concurrent": 100,
    },
    "federation_rr_transactions_per_room_per_second": 1000,
}


def synapse_config(
    folder: Path, ca: TestCA, *, name: str, client_port: int, federation_port: int
) -> dict[str, Any]:
    """Synapse's ``homeserver.yaml`` for a loopback federation test."""
    pair = ca.issue(name)
    return {
        "server_name": f"localhost:{federation_port}",
        "public_baseurl": f"http://127.0.0.1:{client_port}/",
        "pid_file": str(folder / "homeserver.pid"),
        "report_stats": False,
        # The client listener first: ServerProcess probes the first listener's /health.
        "listeners": [
            {
                "port": client_port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "resources": [{"names": ["client"], "compress": False}],
            },
            {
                "port": federation_port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": True,
                "resources": [{"names": ["federation", "keys"], "compress": False}],
            },
        ],
        "tls_certificate_path": str(pair.certificate_path),
        "tls_private_key_path": str(pair.private_key_path),
        "federation_verify_certificates": True,
        "federation_custom_ca_list": [str(ca.certificate_path)],
        "ip_range_whitelist": list(LOOPBACK_RANGES),
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        # Retry a server that was down soon: the catch-up tests take one down and up.
        "federation": {
            "destination_min_retry_interval": "1s",
            "destination_retry_multiplier": 1.5,
            "destination_max_retry_interval": "5s",
        },
        "database": {"name": "sqlite3", "args": {"database": str(folder / "homeserver.db")}},
        "signing_key_path": str(folder / f"{name}.signing.key"),
        "media_store_path": str(folder / "media"),
        "dynamic_thumbnails": False,
        "url_preview_enabled": False,
        "enable_metrics": False,
        "registration_shared_secret": SHARED_SECRET,
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "presence": {"enabled": True},
        "require_auth_for_profile_requests": False,
        "allow_public_rooms_over_federation": True,
        **RELAXED_SYNAPSE_LIMITS,
    }


class SynapseProcess(ServerProcess):
    """Synapse, run as ``python -m synapse.app.homeserver -c <config>``.

    Everything but the command is :class:`ServerProcess`'s: ``base_url`` is the
    client listener, ``stop`` (SIGTERM, then SIGKILL), ``kill``, ``log``, ``pid``.
    Synapse logs to stderr when it has no ``log_config``; that goes to ``log()``.
    """

    #: Seconds the last :meth:`start` took until ``/health`` answered.
    startup_seconds: float = 0.0

    def start(
        self, *, create_key: bool = True, timeout: float = 90, build_web_client: bool = False
    ) -> None:
        config = yaml.safe_load(self.config_path.read_text())
        key_path = Path(config["signing_key_path"])
        if create_key and not key_path.exists():
            write_new_signing_key(key_path)  # the same file format as Synapse's
        python = synapse()
        began = time.monotonic()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(python), "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.tmp_path,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            http.wait_until_healthy(self.base_url, self._process, timeout=timeout, what="synapse")
        except RuntimeError as failed:
            self.stop()
            raise RuntimeError(f"{failed}:\n{self.log()[-20_000:]}") from None
        self.startup_seconds = time.monotonic() - began


@attrs.frozen
class SynapseServer(FederatedServer):
    """A running Synapse in a federation test (the same fields as our servers')."""

    process: SynapseProcess

    def register_user(self, localpart: str, *, admin: bool = False) -> dict[str, Any]:
        """Create ``localpart`` through Synapse's shared-secret admin API; the
        response carries ``user_id``, ``access_token`` and ``device_id``."""
        response = register_with_secret(self.process, localpart, PASSWORD, admin=admin)
        assert response.status == 200, (response.status, response.body)
        result: dict[str, Any] = response.json()
        return result


@contextmanager
def synapse_server(tmp_path: Path, ca: TestCA, *, name: str = "synapse") -> Iterator[SynapseServer]:
    """A running Synapse in ``tmp_path/name``, stopped (by its PID) on exit."""
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    federation_port = free_port()
    config = synapse_config(
        folder, ca, name=name, client_port=free_port(), federation_port=federation_port
    )
    process = SynapseProcess(folder, config)
    process.start()
    try:
        yield SynapseServer(
            process=process,
            server_name=config["server_name"],
            federation_port=federation_port,
            federation_url=f"https://localhost:{federation_port}",
            signing_key_path=Path(config["signing_key_path"]),
        )
    finally:
        process.stop()
