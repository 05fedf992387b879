"""Running the web client's browser scenarios (web-client/tests/e2e/) under Node.

The server is the real ``homeserver`` serving the built app (web-client/dist) at ``/``;
each scenario runs in its own ``node`` process driving headless Chromium through
playwright-core, prints one JSON line (also written to ``<out>/result.json``) and exits
0 only when every step passed and no page logged an error.  The scenario has its own
deadline; the subprocess timeout here is the backstop behind it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.interop.js_support import last_json_line, process_text
from tests.support.matrix import PASSWORD, register, running_server
from tests.support.server_process import REPO_ROOT, ServerProcess

WEB_CLIENT = REPO_ROOT / "web-client"
#: The built app the server serves; WEB_CLIENT_DIST points elsewhere (a private build).
DIST = Path(os.environ.get("WEB_CLIENT_DIST", WEB_CLIENT / "dist"))
RUNNER = WEB_CLIENT / "tests" / "e2e" / "run.mjs"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))

#: A scenario's own deadline inside Node (two browser profiles, sign-ins, crypto start).
SCENARIO_DEADLINE_S = 120
#: Extra time for Node to start, report and close the browser after its deadline.
SUBPROCESS_GRACE_S = 30


def missing_requirement() -> tuple[str, bool] | None:
    """What the scenarios lack to run, and whether that may skip them; None: nothing.

    Only a missing Chromium outside CI may skip (scripts/services.sh installs it); in
    CI (``CI`` set) nothing may, and the message says the command that fixes it.
    """
    if not CHROMIUM.exists():
        message = f"Chromium is not at {CHROMIUM}; install it (scripts/services.sh)"
        return message, not os.environ.get("CI")
    if shutil.which("node") is None:
        return "node is not on PATH; the browser tests need Node.js 20+", False
    if not (WEB_CLIENT / "node_modules" / "playwright-core" / "package.json").exists():
        return "web-client's packages are not installed; run: npm ci --prefix web-client", False
    if not (DIST / "index.html").exists():
        return (
            f"the web client is not built in {DIST}; run: npm run build --prefix web-client",
            False,
        )
    return None


def require_browser() -> None:
    """Skip (Chromium missing outside CI) or fail unless the scenarios can run."""
    missing = missing_requirement()
    if missing is not None:
        message, skippable = missing
        if skippable:
            pytest.skip(message)
        pytest.fail(message)


class BrowserHarnessError(RuntimeError):
    """The server or a scenario's Node process did not get as far as a report."""


@contextmanager
def serving_web_client(directory: Path) -> Iterator[ServerProcess]:
    """The real server on SQLite under ``directory``, serving the built app at ``/``.

    New rooms are not encrypted by the server's default: each scenario says whether its
    room is (the chat scenario's is), so the server-side checks can read the others.
    """
    directory.mkdir(parents=True, exist_ok=True)
    database = {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}}
    with running_server(
        directory,
        database,
        web_client={"enabled": True, "directory": str(DIST), "build": "never"},
        encryption_enabled_by_default_for_room_type="off",
    ) as server:
        page = server.request("GET", "/")
        if page.status != 200 or b'rel="manifest"' not in page.body:
            raise BrowserHarnessError(
                f"the server does not serve the web client at / (status {page.status}):\n"
                f"{page.body[:300]!r}\n--- server log (tail) ---\n{server.log()[-3000:]}"
            )
        yield server


@contextmanager
def web_client_server(directory: Path) -> Iterator[ServerProcess]:
    """``serving_web_client`` for a test: a harness error fails it."""
    try:
        with serving_web_client(directory) as server:
            yield server
    except BrowserHarnessError as error:
        pytest.fail(str(error), pytrace=False)


def browser_user(server: ServerProcess, localpart: str) -> dict[str, str]:
    """Register ``localpart``; what a scenario needs to sign in and to use the API."""
    registered = register(server, localpart)
    return {
        "localpart": localpart,
        "password": PASSWORD,
        "user_id": registered["user_id"],
        "access_token": registered["access_token"],
        "device_id": registered["device_id"],
    }


@attrs.frozen
class BrowserRun:
    """What one browser scenario reported."""

    name: str
    returncode: int
    report: dict[str, Any]
    stderr: str
    out: Path
    server: ServerProcess

    @property
    def result(self) -> dict[str, Any]:
        result: dict[str, Any] = self.report.get("result") or {}
        return result

    def diagnostics(self) -> str:
        """The failed step, the error, the pages' console problems, the logs, the screenshots."""
        console = self.report.get("console") or {}
        problems = (
            "\n".join(f"  {json.dumps(p)}" for p in console.get("problems", [])) or "  (none)"
        )
        shots = (
            "\n".join(f"  {s['path']}" for s in self.report.get("screenshots", [])) or "  (none)"
        )
        return (
            f"browser scenario {self.name!r} exited {self.returncode}"
            f" at step {self.report.get('step')!r}:\n{self.report.get('error')}\n"
            f"steps done: {self.report.get('steps')}\n"
            f"result so far: {json.dumps(self.result)[:2000]}\n"
            f"console problems:\n{problems}\n"
            f"screenshots:\n{shots}\n"
            f"--- node stderr ---\n{self.stderr[-4000:]}\n"
            f"--- server log (tail) ---\n{self.server.log()[-4000:]}"
        )

    def succeeded(self) -> dict[str, Any]:
        """The scenario's result, failing the test with the diagnostics if it did not pass."""
        if not self.report.get("ok") or self.returncode != 0:
            pytest.fail(self.diagnostics(), pytrace=False)
        return self.result


def launch_scenario(
    name: str,
    server: ServerProcess,
    users: Mapping[str, Mapping[str, str]],
    out: Path,
    *,
    deadline_s: float = SCENARIO_DEADLINE_S,
    env: Mapping[str, str] | None = None,
) -> BrowserRun:
    """Run web-client/tests/e2e/scenarios/<name>.mjs against ``server``; output under ``out``."""
    node = shutil.which("node") or "node"
    out.mkdir(parents=True, exist_ok=True)
    users_file = out / "users.json"
    users_file.write_text(json.dumps({k: dict(v) for k, v in users.items()}))
    command = [
        node,
        str(RUNNER),
        name,
        "--base-url",
        server.base_url,
        "--users",
        str(users_file),
        "--out",
        str(out),
        "--deadline-ms",
        str(int(deadline_s * 1000)),
    ]
    try:
        done = subprocess.run(
            command,
            cwd=WEB_CLIENT,
            capture_output=True,
            text=True,
            timeout=deadline_s + SUBPROCESS_GRACE_S,
            env={**os.environ, "CHROMIUM_PATH": str(CHROMIUM), **(env or {})},
        )
    except subprocess.TimeoutExpired as expired:
        raise BrowserHarnessError(
            f"browser scenario {name!r} did not exit within {deadline_s + SUBPROCESS_GRACE_S}s\n"
            f"--- node stderr ---\n{process_text(expired.stderr)[-4000:]}\n"
            f"--- server log (tail) ---\n{server.log()[-3000:]}"
        ) from None
    report = last_json_line(done.stdout)
    if report is None:
        raise BrowserHarnessError(
            f"browser scenario {name!r} exited {done.returncode} without a JSON result\n"
            f"--- node stdout ---\n{done.stdout[-3000:]}\n"
            f"--- node stderr ---\n{done.stderr[-4000:]}"
        )
    return BrowserRun(name, done.returncode, report, done.stderr, out, server)


def run_browser_scenario(
    name: str,
    server: ServerProcess,
    users: Mapping[str, Mapping[str, str]],
    out: Path,
    *,
    deadline_s: float = SCENARIO_DEADLINE_S,
) -> BrowserRun:
    """``launch_scenario`` for a test: a harness error fails it with the logs."""
    require_browser()
    try:
        return launch_scenario(name, server, users, out, deadline_s=deadline_s)
    except BrowserHarnessError as error:
        pytest.fail(str(error), pytrace=False)
