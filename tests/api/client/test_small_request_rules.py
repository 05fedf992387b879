"""Request rules conformance suites check: stopping typing, UIA with another user's
password, shared-secret user names.

spec: client-server-api/_index.md#put_matrixclientv3roomsroomidtypinguserid ("If
false, the timeout key can be omitted"), #delete_matrixclientv3devicesdeviceid,
#post_matrixclientv3delete_devices; Synapse: 403 M_FORBIDDEN for another user's
password, shared-secret registration lowercases the user name.
"""

from __future__ import annotations

from tests.api.client.test_rooms import create_room
from tests.support.accounts import register_with_secret
from tests.support.matrix import call, login, password_auth, register
from tests.support.server_process import ServerProcess


def test_stopping_typing_needs_no_timeout(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    room_id = create_room(open_server, alice)
    path = f"/rooms/{room_id}/typing/@alice:localhost"
    started = call(open_server, "PUT", path, token=alice, body={"typing": True, "timeout": 30000})
    assert started.status == 200, started.body
    stopped = call(open_server, "PUT", path, token=alice, body={"typing": False})
    assert (stopped.status, stopped.json()) == (200, {})
    # Stopping when not typing is fine too.
    again = call(open_server, "PUT", path, token=alice, body={"typing": False})
    assert again.status == 200, again.body


def test_deleting_a_device_with_another_users_password_is_forbidden(
    open_server: ServerProcess,
) -> None:
    register(open_server, "mallory")
    token = register(open_server, "victim", device_id="MAIN")["access_token"]
    login(open_server, "victim", device_id="OTHER")
    first = call(open_server, "DELETE", "/devices/OTHER", token=token)
    assert first.status == 401
    refused = call(
        open_server,
        "DELETE",
        "/devices/OTHER",
        token=token,
        body={"auth": password_auth("mallory", session=first.json()["session"])},
    )
    assert (refused.status, refused.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert call(open_server, "GET", "/devices/OTHER", token=token).status == 200


def test_bulk_device_delete_with_another_users_password_is_forbidden(
    open_server: ServerProcess,
) -> None:
    register(open_server, "mallory")
    token = register(open_server, "victim", device_id="MAIN")["access_token"]
    login(open_server, "victim", device_id="OTHER")
    body = {"devices": ["OTHER"], "auth": password_auth("mallory")}
    refused = call(open_server, "POST", "/delete_devices", token=token, body=body)
    assert (refused.status, refused.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert call(open_server, "GET", "/devices/OTHER", token=token).status == 200
    # The owner's own password still works.
    body["auth"] = password_auth("victim")
    assert call(open_server, "POST", "/delete_devices", token=token, body=body).status == 200
    assert call(open_server, "GET", "/devices/OTHER", token=token).status == 404


def test_shared_secret_registration_lowercases_the_user_name(open_server: ServerProcess) -> None:
    response = register_with_secret(open_server, "MixedCase")
    assert response.status == 200, response.body
    assert response.json()["user_id"] == "@mixedcase:localhost"
    token = response.json()["access_token"]
    whoami = call(open_server, "GET", "/account/whoami", token=token)
    assert whoami.json()["user_id"] == "@mixedcase:localhost"
    # The lowercased name is now taken, whatever case it is asked for in.
    taken = register_with_secret(open_server, "mixedcase")
    assert (taken.status, taken.json()["errcode"]) == (400, "M_USER_IN_USE")
