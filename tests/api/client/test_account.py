"""POST /account/password and /account/deactivate, over HTTP."""

from __future__ import annotations

from tests.support.matrix import PASSWORD, call, login, password_auth, register
from tests.support.server_process import ServerProcess

NEW_PASSWORD = "new staple battery"


def test_password_change_needs_the_current_password(open_server: ServerProcess) -> None:
    token = register(open_server, "alice")["access_token"]
    first = call(
        open_server, "POST", "/account/password", token=token, body={"new_password": NEW_PASSWORD}
    )
    assert first.status == 401
    assert first.json()["flows"] == [{"stages": ["m.login.password"]}]
    session = first.json()["session"]
    wrong = call(
        open_server,
        "POST",
        "/account/password",
        token=token,
        body={"auth": password_auth("alice", "wrong", session)},
    )
    assert wrong.status == 401
    assert wrong.json()["errcode"] == "M_FORBIDDEN"
    assert wrong.json()["completed"] == []
    assert wrong.json()["session"] == session
    right = call(
        open_server,
        "POST",
        "/account/password",
        token=token,
        body={"auth": password_auth("alice", session=session)},
    )
    assert right.status == 200, right.body
    login(open_server, "alice", NEW_PASSWORD)
    old = call(
        open_server,
        "POST",
        "/login",
        body={"type": "m.login.password", "user": "alice", "password": PASSWORD},
    )
    assert old.status == 403


def test_password_change_logs_out_other_devices_but_not_the_caller(
    open_server: ServerProcess,
) -> None:
    caller = register(open_server, "bob")["access_token"]
    others = [login(open_server, "bob")["access_token"] for _ in range(2)]
    for token in others:  # used once, so the server has them cached
        assert call(open_server, "GET", "/account/whoami", token=token).status == 200
    response = call(
        open_server,
        "POST",
        "/account/password",
        token=caller,
        body={"new_password": NEW_PASSWORD, "auth": password_auth("bob")},
    )
    assert response.status == 200, response.body
    assert call(open_server, "GET", "/account/whoami", token=caller).status == 200
    for token in others:
        assert call(open_server, "GET", "/account/whoami", token=token).status == 401
    devices = call(open_server, "GET", "/devices", token=caller).json()["devices"]
    assert len(devices) == 1


def test_password_change_can_keep_other_devices(open_server: ServerProcess) -> None:
    caller = register(open_server, "carol")["access_token"]
    other = login(open_server, "carol")["access_token"]
    body = {"new_password": NEW_PASSWORD, "logout_devices": False, "auth": password_auth("carol")}
    assert call(open_server, "POST", "/account/password", token=caller, body=body).status == 200
    assert call(open_server, "GET", "/account/whoami", token=other).status == 200


def test_password_change_without_access_token_uses_the_password_stage(
    open_server: ServerProcess,
) -> None:
    token = register(open_server, "dave")["access_token"]
    body = {"new_password": NEW_PASSWORD, "auth": password_auth("dave")}
    assert call(open_server, "POST", "/account/password", body=body).status == 200
    assert call(open_server, "GET", "/account/whoami", token=token).status == 401
    login(open_server, "dave", NEW_PASSWORD)


def test_password_stage_for_another_user_is_refused(open_server: ServerProcess) -> None:
    register(open_server, "erin")
    token = register(open_server, "frank")["access_token"]
    body = {"new_password": NEW_PASSWORD, "auth": password_auth("erin")}
    response = call(open_server, "POST", "/account/password", token=token, body=body)
    assert (response.status, response.json()["errcode"]) == (403, "M_FORBIDDEN")


def test_password_change_input_errors(open_server: ServerProcess) -> None:
    token = register(open_server, "gina")["access_token"]
    for body, errcode in (
        ({"new_password": 5}, "M_BAD_JSON"),
        ({"new_password": "x", "logout_devices": "no"}, "M_BAD_JSON"),
        ({"new_password": "", "auth": password_auth("gina")}, "M_INVALID_PARAM"),
        ({"auth": password_auth("gina")}, "M_MISSING_PARAM"),
    ):
        response = call(open_server, "POST", "/account/password", token=token, body=body)
        assert (response.status, response.json()["errcode"]) == (400, errcode), body


def test_deactivation_ends_the_account(open_server: ServerProcess) -> None:
    token = register(open_server, "henry")["access_token"]
    other = login(open_server, "henry")["access_token"]
    assert call(open_server, "GET", "/account/whoami", token=other).status == 200
    first = call(open_server, "POST", "/account/deactivate", token=token, body={})
    assert first.status == 401
    session = first.json()["session"]
    done = call(
        open_server,
        "POST",
        "/account/deactivate",
        token=token,
        body={"auth": password_auth("henry", session=session), "erase": True},
    )
    assert done.status == 200, done.body
    assert done.json() == {"id_server_unbind_result": "no-support"}
    for access_token in (token, other):
        assert call(open_server, "GET", "/account/whoami", token=access_token).status == 401
    again = call(
        open_server,
        "POST",
        "/login",
        body={"type": "m.login.password", "user": "henry", "password": PASSWORD},
    )
    assert (again.status, again.json()["errcode"]) == (403, "M_USER_DEACTIVATED")
    taken = call(open_server, "GET", "/register/available?username=henry")
    assert taken.json()["errcode"] == "M_USER_IN_USE"
    # erase: true removed the profile's contents.
    assert call(open_server, "GET", "/profile/@henry:localhost").json() == {}
