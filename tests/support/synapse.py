"""A real Synapse for tests: the benchmarks' pinned installation, and its tools.

Synapse lives in its own virtualenv (``bench/.venv-synapse``, see
:func:`bench.common.synapse_python`), created on first use; a file lock keeps test
workers running in parallel from installing it twice at once.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

from bench.common import SYNAPSE_VENV, synapse_python


def synapse() -> Path:
    """The Python of the virtualenv with the pinned matrix-synapse installed."""
    # Inside the (git-ignored) virtualenv folder; venv creation accepts it there.
    SYNAPSE_VENV.mkdir(parents=True, exist_ok=True)
    lock_path = SYNAPSE_VENV / ".install.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return synapse_python()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def generate_synapse_config(folder: Path, server_name: str = "example.com") -> Path:
    """``homeserver.yaml`` (with its signing key and log config) as Synapse writes it."""
    config_path = folder / "homeserver.yaml"
    subprocess.run(
        [
            str(synapse()),
            "-m",
            "synapse.app.homeserver",
            "--generate-config",
            "--server-name",
            server_name,
            "--config-path",
            str(config_path),
            "--report-stats=no",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return config_path
