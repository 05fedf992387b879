"""Profile endpoints, over HTTP."""

from __future__ import annotations

from tests.support.matrix import call, register
from tests.support.server_process import ServerProcess


def test_set_and_get_display_name_and_avatar(open_server: ServerProcess) -> None:
    token = register(open_server, "alice")["access_token"]
    put = call(
        open_server,
        "PUT",
        "/profile/@alice:localhost/displayname",
        token=token,
        body={"displayname": "Alice A."},
    )
    assert put.status == 200
    avatar = "mxc://localhost/abc"
    put = call(
        open_server,
        "PUT",
        "/profile/@alice:localhost/avatar_url",
        token=token,
        body={"avatar_url": avatar},
    )
    assert put.status == 200
    assert call(open_server, "GET", "/profile/@alice:localhost/displayname").json() == {
        "displayname": "Alice A."
    }
    assert call(open_server, "GET", "/profile/@alice:localhost/avatar_url").json() == {
        "avatar_url": avatar
    }
    assert call(open_server, "GET", "/profile/@alice:localhost").json() == {
        "displayname": "Alice A.",
        "avatar_url": avatar,
    }


def test_unset_fields_and_unknown_users_are_not_found(open_server: ServerProcess) -> None:
    token = register(open_server, "bob")["access_token"]
    assert call(open_server, "GET", "/profile/@bob:localhost/avatar_url").status == 404
    for path in (
        "/profile/@nobody:localhost",
        "/profile/@bob:remote.example",
        "/profile/@nobody:localhost/displayname",
    ):
        response = call(open_server, "GET", path)
        assert (response.status, response.json()["errcode"]) == (404, "M_NOT_FOUND"), path
    put = call(
        open_server,
        "PUT",
        "/profile/@nobody:localhost/displayname",
        token=token,
        body={"displayname": "x"},
    )
    assert put.status == 403  # not their own profile


def test_only_the_owner_may_change_a_profile(open_server: ServerProcess) -> None:
    register(open_server, "carol")
    mallory = register(open_server, "mallory")["access_token"]
    response = call(
        open_server,
        "PUT",
        "/profile/@carol:localhost/displayname",
        token=mallory,
        body={"displayname": "pwned"},
    )
    assert (response.status, response.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert (
        call(
            open_server, "PUT", "/profile/@carol:localhost/displayname", body={"displayname": "x"}
        ).status
        == 401
    )


def test_profile_input_errors(open_server: ServerProcess) -> None:
    token = register(open_server, "dave")["access_token"]
    path = "/profile/@dave:localhost"
    cases = [
        ("/displayname", {"displayname": 5}, 400, "M_BAD_JSON"),
        ("/displayname", {}, 400, "M_MISSING_PARAM"),
        ("/displayname", {"displayname": "x" * 300}, 400, "M_INVALID_PARAM"),
        ("/avatar_url", {"avatar_url": "http://evil/x.png"}, 400, "M_INVALID_PARAM"),
        ("/m.custom_field", {"m.custom_field": "x"}, 403, "M_FORBIDDEN"),
    ]
    for suffix, body, status, errcode in cases:
        response = call(open_server, "PUT", path + suffix, token=token, body=body)
        assert (response.status, response.json()["errcode"]) == (status, errcode), body
    bad_id = call(open_server, "GET", "/profile/not-a-user-id")
    assert bad_id.status == 400


def test_deleting_a_field_clears_it(open_server: ServerProcess) -> None:
    token = register(open_server, "erin")["access_token"]
    assert (
        call(open_server, "DELETE", "/profile/@erin:localhost/displayname", token=token).status
        == 200
    )
    assert call(open_server, "GET", "/profile/@erin:localhost").json() == {}
