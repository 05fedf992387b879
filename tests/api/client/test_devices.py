"""Device management endpoints, over HTTP."""

from __future__ import annotations

from tests.support.matrix import call, login, password_auth, register
from tests.support.server_process import ServerProcess

UA_KEY = "org.matrix.msc3852.last_seen_user_agent"


def test_devices_show_last_seen_address_time_and_user_agent(open_server: ServerProcess) -> None:
    register(open_server, "alice", device_id="FIRST")
    second = login(open_server, "alice", device_id="SECOND", initial_device_display_name="Tablet")
    token = second["access_token"]
    response = call(
        open_server, "GET", "/account/whoami", token=token, headers={"User-Agent": "TestClient/1.0"}
    )
    assert response.status == 200
    devices = call(
        open_server, "GET", "/devices", token=token, headers={"User-Agent": "TestClient/1.0"}
    )
    by_id = {d["device_id"]: d for d in devices.json()["devices"]}
    assert set(by_id) == {"FIRST", "SECOND"}
    seen = by_id["SECOND"]
    assert seen["display_name"] == "Tablet"
    assert seen["last_seen_ip"] == "127.0.0.1"
    assert isinstance(seen["last_seen_ts"], int) and seen["last_seen_ts"] > 0
    assert seen[UA_KEY] == "TestClient/1.0"
    assert by_id["FIRST"]["last_seen_ts"] is None  # never used since registration


def test_get_and_rename_a_device(open_server: ServerProcess) -> None:
    token = register(open_server, "bob", device_id="DEV")["access_token"]
    assert (
        call(open_server, "PUT", "/devices/DEV", token=token, body={"display_name": "Work"}).status
        == 200
    )
    assert call(open_server, "GET", "/devices/DEV", token=token).json()["display_name"] == "Work"
    assert call(open_server, "PUT", "/devices/DEV", token=token, body={}).status == 200


def test_unknown_devices_are_not_found(open_server: ServerProcess) -> None:
    token = register(open_server, "carol")["access_token"]
    other = register(open_server, "dan", device_id="DANS")["access_token"]
    assert other
    for method, body in (("GET", None), ("PUT", {"display_name": "x"}), ("DELETE", {})):
        for device in ("NOPE", "DANS"):  # someone else's device is unknown too
            response = call(open_server, method, f"/devices/{device}", token=token, body=body)
            assert (response.status, response.json()["errcode"]) == (404, "M_NOT_FOUND"), method


def test_rename_with_wrong_type_is_bad_json(open_server: ServerProcess) -> None:
    token = register(open_server, "erin", device_id="D")["access_token"]
    response = call(open_server, "PUT", "/devices/D", token=token, body={"display_name": 3})
    assert (response.status, response.json()["errcode"]) == (400, "M_BAD_JSON")


def test_deleting_a_device_needs_uia_and_revokes_its_tokens(open_server: ServerProcess) -> None:
    token = register(open_server, "fay", device_id="MAIN")["access_token"]
    old = login(open_server, "fay", device_id="OLD")["access_token"]
    assert call(open_server, "GET", "/account/whoami", token=old).status == 200
    first = call(open_server, "DELETE", "/devices/OLD", token=token)
    assert first.status == 401
    assert first.json()["flows"] == [{"stages": ["m.login.password"]}]
    session = first.json()["session"]
    done = call(
        open_server,
        "DELETE",
        "/devices/OLD",
        token=token,
        body={"auth": password_auth("fay", session=session)},
    )
    assert done.status == 200, done.body
    assert call(open_server, "GET", "/account/whoami", token=old).status == 401
    assert call(open_server, "GET", "/devices/OLD", token=token).status == 404


def test_delete_devices_in_bulk(open_server: ServerProcess) -> None:
    token = register(open_server, "gus", device_id="KEEP")["access_token"]
    a = login(open_server, "gus", device_id="A")["access_token"]
    b = login(open_server, "gus", device_id="B")["access_token"]
    body = {"devices": ["A", "B", "UNKNOWN"]}
    first = call(open_server, "POST", "/delete_devices", token=token, body=body)
    assert first.status == 401
    session = first.json()["session"]
    done = call(
        open_server,
        "POST",
        "/delete_devices",
        token=token,
        body={"auth": password_auth("gus", session=session)},
    )
    assert done.status == 200, done.body
    for gone in (a, b):
        assert call(open_server, "GET", "/account/whoami", token=gone).status == 401
    devices = call(open_server, "GET", "/devices", token=token).json()["devices"]
    assert [d["device_id"] for d in devices] == ["KEEP"]
    bad = call(open_server, "POST", "/delete_devices", token=token, body={"devices": "A"})
    assert (bad.status, bad.json()["errcode"]) == (400, "M_BAD_JSON")


def test_uia_session_cannot_be_reused_for_another_request(open_server: ServerProcess) -> None:
    token = register(open_server, "hal", device_id="H1")["access_token"]
    login(open_server, "hal", device_id="H2")
    session = call(open_server, "DELETE", "/devices/H2", token=token).json()["session"]
    response = call(
        open_server,
        "POST",
        "/account/deactivate",
        token=token,
        body={"auth": password_auth("hal", session=session)},
    )
    assert (response.status, response.json()["errcode"]) == (403, "M_FORBIDDEN")
