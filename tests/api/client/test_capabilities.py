"""GET /capabilities, over HTTP."""

from __future__ import annotations

from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def test_capabilities(open_server: ServerProcess) -> None:
    token = register(open_server, "alice")["access_token"]
    response = call(open_server, "GET", "/capabilities", token=token)
    assert response.status == 200
    caps = response.json()["capabilities"]
    assert caps["m.change_password"] == {"enabled": True}
    assert caps["m.room_versions"]["default"] == "12"
    assert caps["m.room_versions"]["available"] == {str(v): "stable" for v in range(1, 13)}
    assert caps["m.set_displayname"] == {"enabled": True}
    assert caps["m.set_avatar_url"] == {"enabled": True}
    assert caps["m.3pid_changes"] == {"enabled": False}
    assert caps["m.get_login_token"] == {"enabled": True}


def test_capabilities_need_a_token(open_server: ServerProcess) -> None:
    assert call(open_server, "GET", "/capabilities").status == 401
