"""POST /refresh: rotation and expiry of refreshable access tokens, over HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support.matrix import call, login, register, running_server
from tests.support.server_process import ServerProcess


def _refresh(server: ServerProcess, refresh_token: str) -> Any:
    return call(server, "POST", "/refresh", body={"refresh_token": refresh_token})


def test_refresh_rotates_and_revokes_the_old_token_once_the_new_one_is_used(
    open_server: ServerProcess,
) -> None:
    register(open_server, "alice")
    session = login(open_server, "alice", refresh_token=True)
    assert session["expires_in_ms"] == 5 * 60 * 1000
    old_refresh = session["refresh_token"]

    first = _refresh(open_server, old_refresh)
    assert first.status == 200, first.body
    new = first.json()
    assert set(new) == {"access_token", "refresh_token", "expires_in_ms"}
    assert new["refresh_token"] != old_refresh
    # The client may not have received the answer: the old token still works ...
    retry = _refresh(open_server, old_refresh)
    assert retry.status == 200
    newest = retry.json()
    # ... and the pair it replaced (never used) is gone.
    assert call(open_server, "GET", "/account/whoami", token=new["access_token"]).status == 401
    # Using the newest access token revokes the old refresh token.
    whoami = call(open_server, "GET", "/account/whoami", token=newest["access_token"])
    assert whoami.json()["device_id"] == session["device_id"]
    revoked = _refresh(open_server, old_refresh)
    assert revoked.status == 401
    assert revoked.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert revoked.json()["soft_logout"] is False
    # The token that replaced it keeps rotating.
    assert _refresh(open_server, newest["refresh_token"]).status == 200


def test_using_the_new_refresh_token_revokes_the_old_one(open_server: ServerProcess) -> None:
    register(open_server, "bob")
    old = login(open_server, "bob", refresh_token=True)["refresh_token"]
    new = _refresh(open_server, old).json()["refresh_token"]
    assert _refresh(open_server, new).status == 200
    assert _refresh(open_server, old).status == 401


def test_unknown_refresh_token_and_bad_input(open_server: ServerProcess) -> None:
    unknown = _refresh(open_server, "mhr_nothing")
    assert (unknown.status, unknown.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    missing = call(open_server, "POST", "/refresh", body={})
    assert missing.json()["errcode"] == "M_MISSING_PARAM"
    wrong = call(open_server, "POST", "/refresh", body={"refresh_token": 1})
    assert wrong.json()["errcode"] == "M_BAD_JSON"


def test_expired_access_token_is_a_soft_logout_and_refresh_recovers(
    tmp_path: Path, database_config: dict[str, Any]
) -> None:
    with running_server(
        tmp_path, database_config, refreshable_access_token_lifetime="1s"
    ) as server:
        register(server, "carol")
        session = login(server, "carol", refresh_token=True)
        assert session["expires_in_ms"] == 1000
        assert call(server, "GET", "/account/whoami", token=session["access_token"]).status == 200
        time.sleep(1.2)
        expired = call(server, "GET", "/account/whoami", token=session["access_token"])
        assert expired.status == 401
        assert expired.json()["errcode"] == "M_UNKNOWN_TOKEN"
        assert expired.json()["soft_logout"] is True
        renewed = _refresh(server, session["refresh_token"]).json()
        whoami = call(server, "GET", "/account/whoami", token=renewed["access_token"])
        assert whoami.json()["device_id"] == session["device_id"]


def test_logout_revokes_the_refresh_token(open_server: ServerProcess) -> None:
    register(open_server, "dan")
    session = login(open_server, "dan", refresh_token=True)
    assert (
        call(open_server, "POST", "/logout", token=session["access_token"], body={}).status == 200
    )
    assert _refresh(open_server, session["refresh_token"]).status == 401
