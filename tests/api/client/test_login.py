"""GET/POST /login, login tokens and login rate limits, over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.matrix import (
    PASSWORD,
    call,
    login,
    password_auth,
    register,
    running_server,
)
from tests.support.server_process import ServerProcess


def test_login_flows_offer_password_and_token(open_server: ServerProcess) -> None:
    response = call(open_server, "GET", "/login")
    assert response.json() == {
        "flows": [
            {"type": "m.login.password"},
            {"type": "m.login.token", "get_login_token": True},
        ]
    }


def test_password_login_returns_a_working_session(open_server: ServerProcess) -> None:
    register(open_server, "alice")
    body = login(open_server, "alice", initial_device_display_name="Laptop")
    assert body["user_id"] == "@alice:localhost"
    assert body["home_server"] == "localhost"
    assert body["well_known"]["m.homeserver"]["base_url"].startswith("http://127.0.0.1:")
    assert "refresh_token" not in body and "expires_in_ms" not in body
    whoami = call(open_server, "GET", "/account/whoami", token=body["access_token"])
    assert whoami.json()["device_id"] == body["device_id"]
    device = call(open_server, "GET", f"/devices/{body['device_id']}", token=body["access_token"])
    assert device.json()["display_name"] == "Laptop"


def test_login_accepts_user_id_legacy_user_field_and_any_case(open_server: ServerProcess) -> None:
    register(open_server, "bob")
    assert login(open_server, "@bob:localhost")["user_id"] == "@bob:localhost"
    assert login(open_server, "BOB")["user_id"] == "@bob:localhost"
    legacy = call(
        open_server,
        "POST",
        "/login",
        body={"type": "m.login.password", "user": "bob", "password": PASSWORD},
    )
    assert legacy.status == 200
    assert legacy.json()["user_id"] == "@bob:localhost"


def test_wrong_password_and_unknown_user_look_the_same(open_server: ServerProcess) -> None:
    register(open_server, "carol")
    wrong = call(
        open_server,
        "POST",
        "/login",
        body={"type": "m.login.password", "user": "carol", "password": "x"},
    )
    unknown = call(
        open_server,
        "POST",
        "/login",
        body={"type": "m.login.password", "user": "nobody", "password": "x"},
    )
    remote = call(
        open_server,
        "POST",
        "/login",
        body={"type": "m.login.password", "user": "@carol:elsewhere", "password": PASSWORD},
    )
    for response in (wrong, unknown, remote):
        assert response.status == 403
        assert response.json() == wrong.json()
    assert wrong.json()["errcode"] == "M_FORBIDDEN"


def test_repeated_failures_are_rate_limited(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    limits = {
        "address": {"per_second": 100, "burst_count": 100},
        "account": {"per_second": 100, "burst_count": 100},
        "failed_attempts": {"per_second": 0.001, "burst_count": 3},
    }
    with running_server(tmp_path, database_config, rc_login=limits) as server:
        register(server, "dave")
        bad = {"type": "m.login.password", "user": "dave", "password": "guess"}
        statuses = [call(server, "POST", "/login", body=bad).status for _ in range(3)]
        assert statuses == [403, 403, 403]
        limited = call(server, "POST", "/login", body=bad)
        assert limited.status == 429
        assert limited.json()["errcode"] == "M_LIMIT_EXCEEDED"
        assert limited.json()["retry_after_ms"] > 0
        # Even the right password waits now: the lock-out is per account.
        right = call(server, "POST", "/login", body={**bad, "password": PASSWORD})
        assert right.status == 429


def test_logins_are_rate_limited_per_address(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    limits = {"address": {"per_second": 0.001, "burst_count": 2}}
    with running_server(tmp_path, database_config, rc_login=limits) as server:
        register(server, "erin")
        login(server, "erin")
        login(server, "erin")
        response = call(
            server,
            "POST",
            "/login",
            body={"type": "m.login.password", "user": "erin", "password": PASSWORD},
        )
        assert response.status == 429


def test_login_with_an_existing_device_id_replaces_its_token(open_server: ServerProcess) -> None:
    register(open_server, "fay")
    first = login(open_server, "fay", device_id="DESK")
    second = login(open_server, "fay", device_id="DESK")
    assert second["device_id"] == "DESK"
    assert call(open_server, "GET", "/account/whoami", token=first["access_token"]).status == 401
    assert call(open_server, "GET", "/account/whoami", token=second["access_token"]).status == 200


def test_login_request_errors(open_server: ServerProcess) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"type": "m.login.bogus"}, 400, "M_UNKNOWN"),
        ({"password": "x"}, 400, "M_MISSING_PARAM"),
        ({"type": 1}, 400, "M_BAD_JSON"),
        ({"type": "m.login.password", "user": "x"}, 400, "M_MISSING_PARAM"),
        ({"type": "m.login.password", "user": 5, "password": "x"}, 400, "M_BAD_JSON"),
        (
            {"type": "m.login.password", "identifier": {"type": "m.id.user"}, "password": "x"},
            400,
            "M_BAD_JSON",
        ),
        (
            {"type": "m.login.password", "identifier": {"type": "m.id.weird"}, "password": "x"},
            400,
            "M_UNKNOWN",
        ),
        (
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "a@b"},
                "password": "x",
            },
            403,
            "M_FORBIDDEN",
        ),
        (
            {"type": "m.login.password", "user": "x", "password": "y", "refresh_token": "yes"},
            400,
            "M_BAD_JSON",
        ),
        ({"type": "m.login.token"}, 400, "M_MISSING_PARAM"),
        ({"type": "m.login.token", "token": "forged"}, 403, "M_FORBIDDEN"),
    ]
    for body, status, errcode in cases:
        response = call(open_server, "POST", "/login", body=body)
        assert (response.status, response.json()["errcode"]) == (status, errcode), body


def test_login_token_from_get_token_logs_in_once(open_server: ServerProcess) -> None:
    token = register(open_server, "gus")["access_token"]
    first = open_server.request(
        "POST",
        "/_matrix/client/v1/login/get_token",
        json_body={},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert first.status == 401
    assert first.json()["flows"] == [{"stages": ["m.login.password"]}]
    session = first.json()["session"]
    done = open_server.request(
        "POST",
        "/_matrix/client/v1/login/get_token",
        json_body={"auth": password_auth("gus", session=session)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert done.status == 200, done.body
    assert done.json()["expires_in_ms"] == 120_000
    login_token = done.json()["login_token"]
    body = {"type": "m.login.token", "token": login_token}
    logged_in = call(open_server, "POST", "/login", body=body)
    assert logged_in.status == 200
    assert logged_in.json()["user_id"] == "@gus:localhost"
    reused = call(open_server, "POST", "/login", body=body)
    assert (reused.status, reused.json()["errcode"]) == (403, "M_FORBIDDEN")


def test_disabled_password_login(tmp_path: Path, database_config: dict[str, Any]) -> None:
    with running_server(tmp_path, database_config, password_config={"enabled": False}) as server:
        flows = call(server, "GET", "/login").json()["flows"]
        assert [f["type"] for f in flows] == ["m.login.token"]
        user = register(server, "hal")
        response = call(
            server,
            "POST",
            "/login",
            body={"type": "m.login.password", "user": "hal", "password": PASSWORD},
        )
        assert (response.status, response.json()["errcode"]) == (400, "M_UNKNOWN")
        caps = call(server, "GET", "/capabilities", token=user["access_token"]).json()
        assert caps["capabilities"]["m.change_password"] == {"enabled": False}
        change = call(
            server,
            "POST",
            "/account/password",
            token=user["access_token"],
            body={"new_password": "n"},
        )
        assert change.status == 403
