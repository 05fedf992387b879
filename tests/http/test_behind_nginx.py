"""Client addresses behind a real nginx: rate limits, last-seen IPs, the access log.

Clients bind their sockets to different loopback addresses (all of 127/8 is
loopback on Linux), so nginx's ``$remote_addr`` — and the X-Forwarded-For entry it
appends — differs per client, while every connection the server sees comes from
nginx at 127.0.0.1.  A second listener without ``x_forwarded`` shows that a client
sending the header itself is not believed there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support import http
from tests.support.matrix import CLIENT, PASSWORD, RELAXED_LIMITS, register, running_server
from tests.support.nginx import Nginx
from tests.support.server_process import ServerProcess, free_port

WRONG = "not the password"


def client_request(
    base_url: str,
    source: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    forwarded_for: str | None = None,
) -> http.Response:
    headers: dict[str, str] = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return http.request(
        base_url, method, CLIENT + path, json_body=body, headers=headers, source_address=(source, 0)
    )


def login_body(user: str, password: str) -> dict[str, Any]:
    return {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }


def last_seen_ip(base_url: str, source: str, token: str, **kwargs: Any) -> str:
    """The ``last_seen_ip`` of the device ``token`` belongs to, as that device sees it."""
    whoami = client_request(base_url, source, "GET", "/account/whoami", token=token, **kwargs)
    device_id = whoami.json()["device_id"]
    devices = client_request(base_url, source, "GET", "/devices", token=token, **kwargs)
    assert devices.status == 200, devices.body
    (device,) = [d for d in devices.json()["devices"] if d["device_id"] == device_id]
    return str(device["last_seen_ip"])


def access_log_lines(server: ServerProcess, fragment: str) -> list[str]:
    """Access log lines containing ``fragment``, waiting briefly for the write."""
    deadline = time.monotonic() + 5
    while True:
        lines = [
            line.split("homeserver.access: ", 1)[1]
            for line in server.log().splitlines()
            if "homeserver.access: " in line and fragment in line
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_each_client_is_known_by_its_own_address(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    direct_port, proxied_port = free_port(), free_port()
    listeners = [
        {
            "port": direct_port,
            "bind_addresses": ["127.0.0.1"],
            "resources": [{"names": ["client"]}],
        },
        {
            "port": proxied_port,
            "bind_addresses": ["127.0.0.1"],
            "x_forwarded": True,
            "resources": [{"names": ["client"]}],
        },
    ]
    limits = {
        **RELAXED_LIMITS["rc_login"],
        # Three login attempts per address, then none for a long while.
        "address": {"per_second": 0.001, "burst_count": 3},
    }
    with running_server(tmp_path, database_config, listeners=listeners, rc_login=limits) as server:
        register(server, "alice")
        register(server, "bob")
        proxy = Nginx(tmp_path, proxied_port)
        proxy.start()
        try:
            via_proxy = proxy.base_url

            # (1) 127.0.0.2 uses up its login attempts; 127.0.0.3 still logs in.
            for _ in range(3):
                failed = client_request(
                    via_proxy, "127.0.0.2", "POST", "/login", body=login_body("bob", WRONG)
                )
                assert failed.status == 403, failed.body
            limited = client_request(
                via_proxy, "127.0.0.2", "POST", "/login", body=login_body("bob", PASSWORD)
            )
            assert (limited.status, limited.json()["errcode"]) == (429, "M_LIMIT_EXCEEDED")
            bob = client_request(
                via_proxy, "127.0.0.3", "POST", "/login", body=login_body("bob", PASSWORD)
            )
            assert bob.status == 200, bob.body

            # (2) The device's last-seen IP is the client's, not nginx's 127.0.0.1.
            assert last_seen_ip(via_proxy, "127.0.0.3", bob.json()["access_token"]) == "127.0.0.3"

            # A client's own X-Forwarded-For reaches us with nginx's entry appended
            # after it; the right-most entry is the one nginx wrote.
            alice = client_request(
                via_proxy,
                "127.0.0.4",
                "POST",
                "/login",
                body=login_body("alice", PASSWORD),
                forwarded_for="9.9.9.9",
            )
            assert alice.status == 200, alice.body
            alice_token = alice.json()["access_token"]
            seen = last_seen_ip(via_proxy, "127.0.0.4", alice_token, forwarded_for="9.9.9.9")
            assert seen == "127.0.0.4"

            # (3) The access log names the client.
            assert access_log_lines(
                server, "127.0.0.3 @bob:localhost GET /_matrix/client/v3/devices 200"
            )
            assert (
                len(access_log_lines(server, "127.0.0.2 - POST /_matrix/client/v3/login 403")) == 3
            )
            assert access_log_lines(server, "127.0.0.2 - POST /_matrix/client/v3/login 429")
            assert access_log_lines(
                server, "127.0.0.4 @alice:localhost GET /_matrix/client/v3/devices 200"
            )
        finally:
            proxy.stop()

        # (4) Straight to the listener without x_forwarded, the header is not believed:
        # not for last-seen IPs, the access log or rate limits.
        direct = server.base_url
        carol_token = register(server, "carol")["access_token"]
        seen = last_seen_ip(direct, "127.0.0.5", carol_token, forwarded_for="1.2.3.4")
        assert seen == "127.0.0.5"
        assert access_log_lines(
            server, "127.0.0.5 @carol:localhost GET /_matrix/client/v3/devices 200"
        )
        for attempt in range(3):
            failed = client_request(
                direct,
                "127.0.0.6",
                "POST",
                "/login",
                body=login_body("carol", WRONG),
                forwarded_for=f"10.0.0.{attempt}",  # a fresh "address" every time
            )
            assert failed.status == 403, failed.body
        limited = client_request(
            direct,
            "127.0.0.6",
            "POST",
            "/login",
            body=login_body("carol", PASSWORD),
            forwarded_for="10.0.0.99",
        )
        assert limited.status == 429, limited.body
        forged = ("1.2.3.4", "9.9.9.9", "10.0.0.")
        assert not [line for line in access_log_lines(server, "") if line.startswith(forged)]
