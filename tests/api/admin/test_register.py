"""Shared-secret registration, as Synapse's tooling uses it, and the tokens it issues."""

from __future__ import annotations

from tests.support.accounts import ADMIN_REGISTER, register_with_secret
from tests.support.server_process import ServerProcess

WHOAMI = "/_matrix/client/v3/account/whoami"


def test_registered_user_can_use_the_returned_token(server_process: ServerProcess) -> None:
    response = register_with_secret(server_process, "alice")
    assert response.status == 200, response.body
    body = response.json()
    assert body["user_id"] == "@alice:localhost"
    assert body["home_server"] == "localhost"
    whoami = server_process.request(
        "GET", WHOAMI, headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert whoami.status == 200
    assert whoami.json() == {
        "user_id": "@alice:localhost",
        "device_id": body["device_id"],
        "is_guest": False,
    }


def test_wrong_mac_is_forbidden(server_process: ServerProcess) -> None:
    response = register_with_secret(server_process, "mallory", secret="guess")
    assert response.status == 403
    assert response.json()["errcode"] == "M_FORBIDDEN"


def test_repeated_wrong_macs_are_rate_limited(server_process: ServerProcess) -> None:
    statuses = [register_with_secret(server_process, "mallory", secret="guess") for _ in range(6)]
    limited = [r for r in statuses if r.status == 429]
    assert limited, [r.status for r in statuses]
    body = limited[0].json()
    assert body["errcode"] == "M_LIMIT_EXCEEDED"
    assert body["retry_after_ms"] > 0
    assert int(limited[0].headers["retry-after"]) >= 1


def test_nonce_cannot_be_reused(server_process: ServerProcess) -> None:
    from homeserver.auth.shared_secret import registration_mac
    from tests.support.accounts import SHARED_SECRET

    nonce = server_process.request("GET", ADMIN_REGISTER).json()["nonce"]
    body = {
        "nonce": nonce,
        "username": "bob",
        "password": "pw",
        "admin": False,
        "mac": registration_mac(SHARED_SECRET, nonce, "bob", "pw", False),
    }
    assert server_process.request("POST", ADMIN_REGISTER, json_body=body).status == 200
    again = server_process.request("POST", ADMIN_REGISTER, json_body={**body, "username": "bob"})
    assert again.status == 400


def test_taken_username_is_m_user_in_use(server_process: ServerProcess) -> None:
    assert register_with_secret(server_process, "carol").status == 200
    response = register_with_secret(server_process, "carol")
    assert response.status == 400
    assert response.json()["errcode"] == "M_USER_IN_USE"


def test_invalid_username_is_m_invalid_username(server_process: ServerProcess) -> None:
    response = register_with_secret(server_process, "Not Valid!")
    assert response.status == 400
    assert response.json()["errcode"] == "M_INVALID_USERNAME"


def test_registered_account_survives_a_crash(server_process: ServerProcess) -> None:
    token = register_with_secret(server_process, "dave").json()["access_token"]
    server_process.kill()  # SIGKILL: no chance to flush anything after the 200
    server_process.start()
    whoami = server_process.request("GET", WHOAMI, headers={"Authorization": f"Bearer {token}"})
    assert whoami.status == 200
    assert whoami.json()["user_id"] == "@dave:localhost"
