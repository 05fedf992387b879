"""Running matrix-js-sdk scenarios (tests/interop/js/scenarios.mjs) under Node.

Each scenario runs in its own ``node`` process against a real server and prints one
JSON line: what the SDK observed, plus every HTTP request each client made.  The
scenario has its own hard deadline (it then reports the step it was stuck at and the
failed requests); the subprocess timeout here is the backstop behind it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import attrs
import pytest

from tests.support.server_process import REPO_ROOT, ServerProcess

JS_DIR = REPO_ROOT / "tests" / "interop" / "js"
SCENARIOS = JS_DIR / "scenarios.mjs"
INSTALL_COMMAND = "npm ci --prefix tests/interop/js --no-audit --no-fund"

#: The scenario's own deadline inside Node.
SCENARIO_DEADLINE_S = 60
#: Extra time for Node to start, import the SDK and report after its deadline.
SUBPROCESS_GRACE_S = 30


def require_installed() -> str:
    """The ``node`` executable, failing the test with the fix if Node or the SDK is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; matrix-js-sdk interop tests need Node.js")
    if not (JS_DIR / "node_modules" / "matrix-js-sdk" / "package.json").exists():
        pytest.fail(f"matrix-js-sdk is not installed; run: {INSTALL_COMMAND}")
    return node


def node_user(registered: Mapping[str, Any]) -> dict[str, str]:
    """The credentials a scenario's client needs, from a /register response."""
    return {
        "user_id": registered["user_id"],
        "access_token": registered["access_token"],
        "device_id": registered["device_id"],
    }


@attrs.frozen
class ScenarioRun:
    """What one Node scenario reported."""

    name: str
    returncode: int
    ok: bool
    result: dict[str, Any]
    step: str | None
    error: str | None
    steps: list[str]
    failed_requests: list[dict[str, Any]]
    pending_requests: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    stderr: str
    server: ServerProcess

    def diagnostics(self) -> str:
        """Everything useful when the scenario did not do what the test expected."""
        failed = "\n".join(f"  {json.dumps(r)}" for r in self.failed_requests) or "  (none)"
        pending = "\n".join(f"  {json.dumps(r)}" for r in self.pending_requests) or "  (none)"
        return (
            f"js-sdk scenario {self.name!r} exited {self.returncode}"
            f" at step {self.step!r}: {self.error}\n"
            f"steps done: {self.steps}\n"
            f"failed requests:\n{failed}\n"
            f"requests still waiting for an answer:\n{pending}\n"
            f"--- node stderr ---\n{self.stderr[-6000:]}\n"
            f"--- server log (tail) ---\n{self.server.log()[-4000:]}"
        )

    def succeeded(self) -> dict[str, Any]:
        """The scenario's result, failing the test with the diagnostics if it did not finish."""
        if not self.ok or self.returncode != 0:
            pytest.fail(self.diagnostics(), pytrace=False)
        return self.result

    def refusals(self) -> list[tuple[str, str, str, int]]:
        """Failed requests as (client, method, route, status), ids replaced by names."""
        return [
            (r["client"], r["method"], route(r["path"]), int(r.get("status") or 0))
            for r in self.failed_requests
        ]


_ROOM_ID = re.compile(r"/rooms/(?:!|%21)[^/]+")
_SEND_TXN = re.compile(r"(/send/[^/]+)/[^/]+$")


def route(path: str) -> str:
    """``path`` with the room id and transaction id generalised, for stable assertions."""
    return _SEND_TXN.sub(r"\1/{txnId}", _ROOM_ID.sub("/rooms/{roomId}", path))


def run_scenario(
    name: str,
    server: ServerProcess,
    users: Mapping[str, Mapping[str, Any]],
    *,
    logins: Mapping[str, Mapping[str, str]] | None = None,
    deadline_s: float = SCENARIO_DEADLINE_S,
) -> ScenarioRun:
    """Run scenario ``name`` with the given clients' credentials against ``server``.

    ``logins`` maps a client name to ``{"user", "password"}`` for clients the scenario
    logs in itself (a new device appearing mid-scenario).
    """
    node = require_installed()
    env = dict(os.environ)
    env["JS_SDK_SCENARIO_DEADLINE_MS"] = str(int(deadline_s * 1000))
    try:
        done = subprocess.run(
            [node, str(SCENARIOS), name, server.base_url],
            cwd=JS_DIR,
            input=json.dumps(
                {
                    "users": {k: node_user(v) for k, v in users.items()},
                    "logins": {k: dict(v) for k, v in (logins or {}).items()},
                }
            ),
            capture_output=True,
            text=True,
            timeout=deadline_s + SUBPROCESS_GRACE_S,
            env=env,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(
            f"js-sdk scenario {name!r} did not exit within {deadline_s + SUBPROCESS_GRACE_S}s\n"
            f"--- node stderr ---\n{process_text(expired.stderr)[-6000:]}\n"
            f"--- server log (tail) ---\n{server.log()[-4000:]}",
            pytrace=False,
        )
    report = last_json_line(done.stdout)
    if report is None:
        pytest.fail(
            f"js-sdk scenario {name!r} exited {done.returncode} without a JSON result\n"
            f"--- node stdout ---\n{done.stdout[-3000:]}\n"
            f"--- node stderr ---\n{done.stderr[-6000:]}\n"
            f"--- server log (tail) ---\n{server.log()[-4000:]}",
            pytrace=False,
        )
    return ScenarioRun(
        name=name,
        returncode=done.returncode,
        ok=bool(report.get("ok")),
        result=report.get("result") or {},
        step=report.get("step"),
        error=report.get("error"),
        steps=list(report.get("steps") or []),
        failed_requests=list(report.get("failed_requests") or []),
        pending_requests=list(report.get("pending_requests") or []),
        requests=list(report.get("requests") or []),
        stderr=done.stderr,
        server=server,
    )


def last_json_line(stdout: str) -> dict[str, Any] | None:
    """The report a Node script printed last: its last line that is a JSON object."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                return None
            return parsed if isinstance(parsed, dict) else None
    return None


def process_text(output: str | bytes | None) -> str:
    """A child process's output as text, whichever form subprocess handed it over in."""
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output
