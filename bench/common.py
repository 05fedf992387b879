"""Shared helpers for benchmarks: timing and a Synapse installation to compare against.

Every benchmark runs the same workload on our code and on Synapse in one run and
reports the ratio.  Synapse lives in its own virtualenv (``bench/.venv-synapse``,
created on first use from PyPI) so its pinned dependencies never touch ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from synapse_compat.config_keys import SYNAPSE_RELEASE

BENCH_DIR = Path(__file__).resolve().parent
SYNAPSE_VENV = Path(os.environ.get("SYNAPSE_VENV", BENCH_DIR / ".venv-synapse"))
# The release our Synapse compatibility (e.g. the config keys we accept) is built on.
SYNAPSE_REQUIREMENT = os.environ.get("SYNAPSE_REQUIREMENT", f"matrix-synapse=={SYNAPSE_RELEASE}")


def synapse_python() -> Path:
    """The Python of a virtualenv with matrix-synapse installed, creating it if needed."""
    python = SYNAPSE_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SYNAPSE_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import synapse"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", SYNAPSE_REQUIREMENT], check=True)
    return python


def run_in_synapse(script: Path, *args: str) -> dict[str, float]:
    """Run ``script`` under Synapse's Python; it prints one JSON object of figures."""
    result = subprocess.run(
        [str(synapse_python()), str(script), *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=str(BENCH_DIR),
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def ops_per_second(func: Callable[[], object], *, min_seconds: float = 1.0) -> float:
    """Call ``func`` repeatedly for at least ``min_seconds``; return calls per second."""
    count = 0
    start = time.perf_counter()
    deadline = start + min_seconds
    while True:
        func()
        count += 1
        if count % 16 == 0 and time.perf_counter() >= deadline:
            break
    return count / (time.perf_counter() - start)


def synapse_python_with_postgres() -> Path:
    """:func:`synapse_python`, plus psycopg2 so Synapse can use PostgreSQL.

    Synapse's ``postgres`` extra builds psycopg2 from source (needs ``pg_config`` and
    a compiler); the binary wheel is the same driver and installs anywhere.
    """
    python = synapse_python()
    probe = subprocess.run([str(python), "-c", "import psycopg2"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "psycopg2-binary"], check=True)
    return python
