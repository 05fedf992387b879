"""POST /register, /register/available and registration tokens, over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.accounts import register_with_secret
from tests.support.matrix import PASSWORD, call, register, running_server
from tests.support.server_process import ServerProcess

REG_TOKENS = "/_synapse/admin/v1/registration_tokens"


def test_registration_is_closed_unless_enabled(server_process: ServerProcess) -> None:
    response = call(server_process, "POST", "/register", body={"username": "a", "password": "p"})
    assert response.status == 403
    assert response.json()["errcode"] == "M_FORBIDDEN"
    available = call(server_process, "GET", "/register/available?username=a")
    assert available.status == 403
    # Every registration token is invalid then, and the server says so with 403.
    validity = server_process.request(
        "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=t"
    )
    assert validity.status == 403


def test_register_without_auth_starts_a_uia_session(open_server: ServerProcess) -> None:
    response = call(
        open_server, "POST", "/register", body={"username": "alice", "password": PASSWORD}
    )
    assert response.status == 401
    body = response.json()
    assert body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert body["params"] == {}
    assert body["completed"] == []
    assert isinstance(body["session"], str) and body["session"]
    assert "errcode" not in body


def test_register_completes_the_dummy_stage_with_only_auth_resent(
    open_server: ServerProcess,
) -> None:
    first = call(open_server, "POST", "/register", body={"username": "alice", "password": PASSWORD})
    session = first.json()["session"]
    # The parameters were stored with the session; the client sends only auth now.
    second = call(
        open_server,
        "POST",
        "/register",
        body={"auth": {"type": "m.login.dummy", "session": session}},
    )
    assert second.status == 200, second.body
    body = second.json()
    assert body["user_id"] == "@alice:localhost"
    assert body["home_server"] == "localhost"
    assert body["device_id"]
    whoami = call(open_server, "GET", "/account/whoami", token=body["access_token"])
    assert whoami.json()["user_id"] == "@alice:localhost"
    # The session is used up.
    again = call(
        open_server,
        "POST",
        "/register",
        body={"auth": {"type": "m.login.dummy", "session": session}},
    )
    assert again.status == 400


def test_new_user_has_the_localpart_as_display_name(open_server: ServerProcess) -> None:
    register(open_server, "bob")
    profile = call(open_server, "GET", "/profile/@bob:localhost")
    assert profile.json() == {"displayname": "bob"}


def test_inhibit_login_returns_no_access_token(open_server: ServerProcess) -> None:
    body = register(open_server, "carol", inhibit_login=True)
    assert body["user_id"] == "@carol:localhost"
    assert "access_token" not in body and "device_id" not in body


def test_register_with_device_id_and_display_name(open_server: ServerProcess) -> None:
    body = register(open_server, "dave", device_id="MYPHONE", initial_device_display_name="Phone")
    assert body["device_id"] == "MYPHONE"
    device = call(open_server, "GET", "/devices/MYPHONE", token=body["access_token"])
    assert device.json()["display_name"] == "Phone"


def test_register_with_refresh_token_gets_an_expiring_token(open_server: ServerProcess) -> None:
    body = register(open_server, "erin", refresh_token=True)
    assert body["refresh_token"]
    assert body["expires_in_ms"] == 5 * 60 * 1000


def test_username_is_lowercased(open_server: ServerProcess) -> None:
    assert register(open_server, "Frank")["user_id"] == "@frank:localhost"


def test_register_without_username_gets_a_numeric_one(open_server: ServerProcess) -> None:
    first = register(open_server, None)  # type: ignore[arg-type]
    second = register(open_server, None)  # type: ignore[arg-type]
    for body in (first, second):
        localpart = body["user_id"][1:].split(":")[0]
        assert localpart.isdigit()
    assert first["user_id"] != second["user_id"]


def test_taken_username_is_refused_before_auth(open_server: ServerProcess) -> None:
    register(open_server, "gina")
    response = call(open_server, "POST", "/register", body={"username": "gina", "password": "x"})
    assert response.status == 400
    assert response.json()["errcode"] == "M_USER_IN_USE"


def test_invalid_and_numeric_usernames_are_refused(open_server: ServerProcess) -> None:
    for username in ("not valid!", "12345", "a" * 300):
        response = call(
            open_server, "POST", "/register", body={"username": username, "password": "x"}
        )
        assert response.status == 400, username
        assert response.json()["errcode"] == "M_INVALID_USERNAME", username


def test_wrong_types_are_bad_json(open_server: ServerProcess) -> None:
    for body in ({"username": 5}, {"password": ["x"]}, {"inhibit_login": "yes"}, {"auth": "x"}):
        response = call(open_server, "POST", "/register", body=body)
        assert response.status == 400, body
        assert response.json()["errcode"] == "M_BAD_JSON", body
    response = call(open_server, "POST", "/register", body=[1])
    assert response.json()["errcode"] == "M_BAD_JSON"


def test_guest_registration_is_forbidden(open_server: ServerProcess) -> None:
    response = call(open_server, "POST", "/register?kind=guest", body={})
    assert response.status == 403
    assert response.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"
    bogus = call(open_server, "POST", "/register?kind=robot", body={})
    assert bogus.status == 400
    assert bogus.json()["errcode"] == "M_INVALID_PARAM"


def test_register_available(open_server: ServerProcess) -> None:
    register(open_server, "henry")
    free = call(open_server, "GET", "/register/available?username=ivy")
    assert (free.status, free.json()) == (200, {"available": True})
    taken = call(open_server, "GET", "/register/available?username=henry")
    assert (taken.status, taken.json()["errcode"]) == (400, "M_USER_IN_USE")
    bad = call(open_server, "GET", "/register/available?username=no%20spaces")
    assert bad.json()["errcode"] == "M_INVALID_USERNAME"
    missing = call(open_server, "GET", "/register/available")
    assert missing.json()["errcode"] == "M_MISSING_PARAM"


def test_registration_is_rate_limited_per_address(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(
        tmp_path, database_config, rc_registration={"per_second": 0.001, "burst_count": 2}
    ) as server:
        register(server, "one")
        register(server, "two")
        response = call(
            server,
            "POST",
            "/register",
            body={"username": "three", "password": "x", "auth": {"type": "m.login.dummy"}},
        )
        assert response.status == 429
        assert response.json()["errcode"] == "M_LIMIT_EXCEEDED"
        assert response.json()["retry_after_ms"] > 0


# --- registration tokens ---------------------------------------------------------


def _admin_token(server: ServerProcess) -> str:
    response = register_with_secret(server, "admin", admin=True)
    token: str = response.json()["access_token"]
    return token


def _create_token(server: ServerProcess, admin: str, **fields: Any) -> dict[str, Any]:
    response = server.request(
        "POST", REG_TOKENS + "/new", json_body=fields, headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status == 200, response.body
    result: dict[str, Any] = response.json()
    return result


def test_token_registration_needs_the_token_stage(token_server: ServerProcess) -> None:
    admin = _admin_token(token_server)
    token = _create_token(token_server, admin, token="letmein", uses_allowed=1)
    assert token == {
        "token": "letmein",
        "uses_allowed": 1,
        "pending": 0,
        "completed": 0,
        "expiry_time": None,
    }
    first = call(token_server, "POST", "/register", body={"username": "jo", "password": PASSWORD})
    assert first.status == 401
    assert first.json()["flows"] == [{"stages": ["m.login.registration_token"]}]
    session = first.json()["session"]
    wrong = call(
        token_server,
        "POST",
        "/register",
        body={"auth": {"type": "m.login.registration_token", "token": "nope", "session": session}},
    )
    assert wrong.status == 401
    assert wrong.json()["errcode"] == "M_FORBIDDEN"
    assert wrong.json()["session"] == session
    dummy = call(
        token_server,
        "POST",
        "/register",
        body={"auth": {"type": "m.login.dummy", "session": session}},
    )
    assert dummy.status == 401  # not a stage of the offered flow
    right = call(
        token_server,
        "POST",
        "/register",
        body={
            "auth": {"type": "m.login.registration_token", "token": "letmein", "session": session}
        },
    )
    assert right.status == 200, right.body
    assert right.json()["user_id"] == "@jo:localhost"
    used = token_server.request(
        "GET", REG_TOKENS + "/letmein", headers={"Authorization": f"Bearer {admin}"}
    ).json()
    assert (used["pending"], used["completed"]) == (0, 1)
    # Its only use is spent.
    validity = call(
        token_server,
        "GET",
        "/register/m.login.registration_token/validity?token=letmein",
    )
    # v1 endpoint: /_matrix/client/v1/...
    assert validity.status == 404
    v1 = token_server.request(
        "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=letmein"
    )
    assert v1.json() == {"valid": False}
    again = call(
        token_server,
        "POST",
        "/register",
        body={
            "username": "kim",
            "auth": {"type": "m.login.registration_token", "token": "letmein"},
        },
    )
    assert again.status == 401
    assert again.json()["errcode"] == "M_FORBIDDEN"


def test_token_validity_endpoint(token_server: ServerProcess) -> None:
    admin = _admin_token(token_server)
    _create_token(token_server, admin, token="good")
    path = "/_matrix/client/v1/register/m.login.registration_token/validity"
    assert token_server.request("GET", path + "?token=good").json() == {"valid": True}
    assert token_server.request("GET", path + "?token=bad").json() == {"valid": False}
    assert token_server.request("GET", path).json()["errcode"] == "M_MISSING_PARAM"


def test_registration_token_admin_api(token_server: ServerProcess) -> None:
    admin = _admin_token(token_server)
    headers = {"Authorization": f"Bearer {admin}"}
    generated = _create_token(token_server, admin, length=10)
    assert len(generated["token"]) == 10
    _create_token(token_server, admin, token="spent", uses_allowed=0)
    listed = token_server.request("GET", REG_TOKENS, headers=headers).json()
    assert {t["token"] for t in listed["registration_tokens"]} == {generated["token"], "spent"}
    valid = token_server.request("GET", REG_TOKENS + "?valid=true", headers=headers).json()
    assert [t["token"] for t in valid["registration_tokens"]] == [generated["token"]]
    updated = token_server.request(
        "PUT", REG_TOKENS + "/spent", json_body={"uses_allowed": 5}, headers=headers
    )
    assert updated.json()["uses_allowed"] == 5
    duplicate = token_server.request(
        "POST", REG_TOKENS + "/new", json_body={"token": "spent"}, headers=headers
    )
    assert duplicate.status == 400
    for bad in ({"token": "has space"}, {"uses_allowed": -1}, {"expiry_time": 1}, {"length": 65}):
        response = token_server.request("POST", REG_TOKENS + "/new", json_body=bad, headers=headers)
        assert (response.status, response.json()["errcode"]) == (400, "M_INVALID_PARAM"), bad
    assert token_server.request("DELETE", REG_TOKENS + "/spent", headers=headers).status == 200
    missing = token_server.request("GET", REG_TOKENS + "/spent", headers=headers)
    assert (missing.status, missing.json()["errcode"]) == (404, "M_NOT_FOUND")


def test_registration_token_admin_api_is_for_admins_only(token_server: ServerProcess) -> None:
    user = register_with_secret(token_server, "plain").json()["access_token"]
    response = token_server.request("GET", REG_TOKENS, headers={"Authorization": f"Bearer {user}"})
    assert (response.status, response.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert token_server.request("GET", REG_TOKENS).status == 401
