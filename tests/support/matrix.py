"""Client-API helpers for tests against a running server: register, log in, call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.accounts import SHARED_SECRET
from tests.support.http import Response
from tests.support.server_process import ServerProcess, free_port, server_config

CLIENT = "/_matrix/client/v3"
PASSWORD = "correct horse battery"

#: Generous limits so tests that are not about rate limiting never hit them.
RELAXED_LIMITS: dict[str, Any] = {
    "rc_registration": {"per_second": 100, "burst_count": 100},
    "rc_login": {
        "address": {"per_second": 100, "burst_count": 100},
        "account": {"per_second": 100, "burst_count": 100},
        "failed_attempts": {"per_second": 100, "burst_count": 100},
    },
    "rc_message": {"per_second": 1000, "burst_count": 1000},
    "rc_sync": {"per_second": 1000, "burst_count": 1000},
    "rc_threads": {"per_second": 1000, "burst_count": 1000},
    "rc_hierarchy": {"per_second": 1000, "burst_count": 1000},
    "rc_search": {"per_second": 1000, "burst_count": 1000},
    "rc_to_device": {"per_second": 1000, "burst_count": 1000},
    "rc_pushers": {"per_second": 1000, "burst_count": 1000},
    "rc_joins": {"local": {"per_second": 1000, "burst_count": 1000}},
    "rc_invites": {
        "per_room": {"per_second": 1000, "burst_count": 1000},
        "per_user": {"per_second": 1000, "burst_count": 1000},
        "per_issuer": {"per_second": 1000, "burst_count": 1000},
    },
}


@contextmanager
def running_server(
    tmp_path: Path, database_config: dict[str, Any], **overrides: Any
) -> Iterator[ServerProcess]:
    """The real server with open registration (unless overridden) and relaxed limits."""
    settings: dict[str, Any] = {
        "registration_shared_secret": SHARED_SECRET,
        "enable_registration": True,
        "enable_registration_without_verification": True,
        **RELAXED_LIMITS,
    }
    settings.update(overrides)
    process = ServerProcess(
        tmp_path, server_config(tmp_path, database_config, free_port(), **settings)
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(
    server: ServerProcess,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers.update(auth(token))
    return server.request(method, CLIENT + path, json_body=body, headers=all_headers)


def register(
    server: ServerProcess, username: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    """Register through /register with the dummy stage, in one request."""
    body = {"username": username, "password": password, "auth": {"type": "m.login.dummy"}, **extra}
    response = call(server, "POST", "/register", body=body)
    assert response.status == 200, response.body
    result: dict[str, Any] = response.json()
    return result


def login(
    server: ServerProcess, username: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": username},
        "password": password,
        **extra,
    }
    response = call(server, "POST", "/login", body=body)
    assert response.status == 200, response.body
    result: dict[str, Any] = response.json()
    return result


def password_auth(
    username: str, password: str = PASSWORD, session: str | None = None
) -> dict[str, Any]:
    auth_dict: dict[str, Any] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": username},
        "password": password,
    }
    if session is not None:
        auth_dict["session"] = session
    return auth_dict
