"""A push gateway and Web Push service for tests, in a process of its own on loopback.

``python -m tests.support.push_gateway PORT`` serves:
- ``POST /_matrix/push/v1/notify`` (push-gateway-api.md): records the JSON body and
  answers ``{"rejected": [...]}`` with the pushkeys it was told to reject;
- ``POST /webpush/<anything>`` (RFC 8030 push resource): records the headers and the
  (encrypted) body and answers 201, or the status it was told to;
- ``/_test/...``: what the test asks: ``GET /_test/received``, ``POST /_test/reject``
  ``{"pushkeys": [...]}``, ``POST /_test/status`` ``{"status": N}``; ``GET /health``.

:class:`PushGateway` runs it from a test: start, stop (an outage), start again on the
same port, read what arrived.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import http
from tests.support.server_process import REPO_ROOT, _environment, free_port, stop_process

NOTIFY_PATH = "/_matrix/push/v1/notify"


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.rejected: set[str] = set()
        self.status = 201


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(200, {})
            elif self.path == "/_test/received":
                with state.lock:
                    self._reply(200, list(state.received))
            else:
                self._reply(404, {"errcode": "M_UNRECOGNIZED"})

        def do_POST(self) -> None:
            body = self._body()
            if self.path == NOTIFY_PATH:
                notification = json.loads(body)
                pushkeys = [d["pushkey"] for d in notification["notification"]["devices"]]
                with state.lock:
                    state.received.append({"path": self.path, "json": notification})
                    rejected = [key for key in pushkeys if key in state.rejected]
                self._reply(200, {"rejected": rejected})
            elif self.path.startswith("/webpush/"):
                with state.lock:
                    state.received.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": base64.b64encode(body).decode(),
                        }
                    )
                    status = state.status
                self._reply(status)
            elif self.path == "/_test/reject":
                with state.lock:
                    state.rejected.update(json.loads(body)["pushkeys"])
                self._reply(200, {})
            elif self.path == "/_test/status":
                with state.lock:
                    state.status = int(json.loads(body)["status"])
                self._reply(200, {})
            else:
                self._reply(404, {"errcode": "M_UNRECOGNIZED"})

    return Handler


def serve(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(_State()))
    server.serve_forever()


class PushGateway:
    """The gateway process, from a test."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.notify_url = self.base_url + NOTIFY_PATH
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.push_gateway", str(self.port)],
            cwd=REPO_ROOT,
            env=_environment(),
        )
        http.wait_until_healthy(self.base_url, self._process, timeout=20, what="push gateway")

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def received(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http.request(self.base_url, "GET", "/_test/received").json()
        return result

    def reject(self, *pushkeys: str) -> None:
        http.request(self.base_url, "POST", "/_test/reject", json_body={"pushkeys": pushkeys})

    def answer_with(self, status: int) -> None:
        http.request(self.base_url, "POST", "/_test/status", json_body={"status": status})

    def wait_for(
        self, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
    ) -> list[dict[str, Any]]:
        """Poll until ``check(received)`` holds; the received list, or AssertionError."""
        deadline = time.monotonic() + timeout
        received: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            received = self.received()
            if check(received):
                return received
            time.sleep(0.1)
        raise AssertionError(f"gateway never got what was expected; it got {received}")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
