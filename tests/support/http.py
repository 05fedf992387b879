"""A small blocking HTTP client for tests that talk to a server in another process."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from typing import Any
from urllib.parse import urlsplit

import attrs


@attrs.frozen
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    source_address: tuple[str, int] | None = None,
) -> Response:
    """One request on a new connection; ``source_address`` binds the client's end."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None, base_url
    conn = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=timeout, source_address=source_address
    )
    send_headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode("utf-8")
        send_headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=body, headers=send_headers)
        reply = conn.getresponse()
        return Response(
            status=reply.status,
            headers={name.lower(): value for name, value in reply.getheaders()},
            body=reply.read(),
        )
    finally:
        conn.close()


def wait_until_healthy(
    base_url: str, process: subprocess.Popen[Any], *, timeout: float, what: str
) -> None:
    """Return once ``GET /health`` on ``base_url`` answers 200 while ``process`` runs.

    ``RuntimeError`` naming ``what`` if the process exits or ``timeout`` passes first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early")
        try:
            if request(base_url, "GET", "/health", timeout=1).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer /health in {timeout}s")
