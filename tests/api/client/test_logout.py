"""POST /logout and /logout/all, over HTTP."""

from __future__ import annotations

from tests.support.matrix import call, login, register
from tests.support.server_process import ServerProcess


def test_logout_ends_only_that_session_and_deletes_its_device(open_server: ServerProcess) -> None:
    register(open_server, "alice")
    phone = login(open_server, "alice", device_id="PHONE")
    laptop = login(open_server, "alice", device_id="LAPTOP")
    assert call(open_server, "GET", "/account/whoami", token=phone["access_token"]).status == 200
    assert call(open_server, "POST", "/logout", token=phone["access_token"], body={}).status == 200
    gone = call(open_server, "GET", "/account/whoami", token=phone["access_token"])
    assert (gone.status, gone.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert gone.json()["soft_logout"] is False
    devices = call(open_server, "GET", "/devices", token=laptop["access_token"]).json()["devices"]
    assert "PHONE" not in {d["device_id"] for d in devices}
    assert "LAPTOP" in {d["device_id"] for d in devices}


def test_logout_all_ends_every_session_at_once(open_server: ServerProcess) -> None:
    first = register(open_server, "bob")
    others = [login(open_server, "bob") for _ in range(3)]
    for session in others:  # used once, so the server has them cached
        assert (
            call(open_server, "GET", "/account/whoami", token=session["access_token"]).status == 200
        )
    assert (
        call(open_server, "POST", "/logout/all", token=first["access_token"], body={}).status == 200
    )
    for session in [first, *others]:
        response = call(open_server, "GET", "/account/whoami", token=session["access_token"])
        assert response.status == 401
    fresh = login(open_server, "bob")
    devices = call(open_server, "GET", "/devices", token=fresh["access_token"]).json()["devices"]
    assert [d["device_id"] for d in devices] == [fresh["device_id"]]


def test_logout_needs_a_token(open_server: ServerProcess) -> None:
    response = call(open_server, "POST", "/logout", body={})
    assert (response.status, response.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    response = call(open_server, "POST", "/logout/all", token="mhs_bogus", body={})
    assert (response.status, response.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
