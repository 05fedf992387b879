"""``GET /admin/whois/{userId}``, over HTTP.

spec: client-server-api/_index.md#get_matrixclientv3adminwhoisuserid
"""

from __future__ import annotations

from urllib.parse import quote

from tests.support.accounts import register_with_secret
from tests.support.matrix import call, login, register
from tests.support.server_process import ServerProcess


def test_whois_shows_sessions_to_admins_and_the_user_only(open_server: ServerProcess) -> None:
    assert register_with_secret(open_server, "root", "root password", admin=True).status == 200
    admin = login(open_server, "root", "root password")["access_token"]
    alice = register(open_server, "alice", device_id="PHONE")
    bob = register(open_server, "bob")["access_token"]
    # A request from alice's device with a user agent, just now: the last-seen update
    # is still in memory (flushed every few seconds) and must show all the same.
    seen = call(
        open_server,
        "GET",
        "/account/whoami",
        token=alice["access_token"],
        headers={"User-Agent": "AliceClient/1.0"},
    )
    assert seen.status == 200
    path = f"/admin/whois/{quote(alice['user_id'])}"

    # The admin first; alice's own look-up is itself her latest request, so she sends
    # the same user agent with it.
    for viewer in (admin, alice["access_token"]):
        response = call(
            open_server, "GET", path, token=viewer, headers={"User-Agent": "AliceClient/1.0"}
        )
        assert response.status == 200, response.body
        body = response.json()
        assert body["user_id"] == alice["user_id"]
        assert list(body["devices"]) == ["PHONE"]
        [session] = body["devices"]["PHONE"]["sessions"]
        [connection] = session["connections"]
        assert connection["ip"] == "127.0.0.1"
        assert connection["user_agent"] == "AliceClient/1.0"
        assert isinstance(connection["last_seen"], int) and connection["last_seen"] > 0

    refused = call(open_server, "GET", path, token=bob)
    assert refused.status == 403
    assert refused.json()["errcode"] == "M_FORBIDDEN"
    assert call(open_server, "GET", path).status == 401
    remote = call(open_server, "GET", f"/admin/whois/{quote('@x:elsewhere.example')}", token=admin)
    assert remote.status == 400
