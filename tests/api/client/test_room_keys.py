"""Server-side key backups over HTTP against the real server (both engines): the
version lifecycle, writes to a version that is not current (403 with
``current_version``), the replacement rule's tie-breakers, etags and counts, deletes
of a session, a room and everything, bad input, other users' backups, and a bulk
upload of 2,000 sessions in one request.

spec: client-server-api/modules/end_to_end_encryption.md#server-side-key-backups,
data/api/client-server/key_backup.yaml
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.http import Response
from tests.support.matrix import call, register, running_server
from tests.support.server_process import ServerProcess

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
AUTH_DATA: dict[str, Any] = {
    "public_key": "abcdefg",
    "signatures": {"@alice:localhost": {"ed25519:DEV": "sig"}},
}
ROOM = "!room:localhost"


@pytest.fixture
def server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config) as process:
        yield process


@pytest.fixture
def alice(server: ServerProcess) -> str:
    token: str = register(server, "alice")["access_token"]
    return token


def key(
    first_index: int = 0, forwarded: int = 0, verified: bool = False, data: str = "c"
) -> dict[str, Any]:
    return {
        "first_message_index": first_index,
        "forwarded_count": forwarded,
        "is_verified": verified,
        "session_data": {"ephemeral": "e", "ciphertext": data, "mac": "m"},
    }


def ok(response: Response) -> Any:
    assert response.status == 200, response.body
    return response.json()


def error(response: Response, status: int, errcode: str) -> dict[str, Any]:
    assert response.status == status, response.body
    body: dict[str, Any] = response.json()
    assert body["errcode"] == errcode, body
    return body


def create(server: ServerProcess, token: str, auth_data: dict[str, Any] = AUTH_DATA) -> str:
    body = {"algorithm": ALGORITHM, "auth_data": auth_data}
    version: str = ok(call(server, "POST", "/room_keys/version", token, body))["version"]
    return version


def session_path(version: str, room_id: str = ROOM, session_id: str = "s") -> str:
    return f"/room_keys/keys/{quote(room_id)}/{quote(session_id)}?version={version}"


def put_key(
    server: ServerProcess, token: str, version: str, data: dict[str, Any], session: str = "s"
) -> Response:
    return call(server, "PUT", session_path(version, session_id=session), token, data)


def stored(server: ServerProcess, token: str, version: str, session: str = "s") -> Any:
    return ok(call(server, "GET", session_path(version, session_id=session), token))


def test_version_lifecycle_create_read_update_delete(server: ServerProcess, alice: str) -> None:
    error(call(server, "GET", "/room_keys/version", alice), 404, "M_NOT_FOUND")
    assert create(server, alice) == "1"
    current = ok(call(server, "GET", "/room_keys/version", alice))
    assert current == {
        "algorithm": ALGORITHM,
        "auth_data": AUTH_DATA,
        "count": 0,
        "etag": current["etag"],
        "version": "1",
    }
    assert isinstance(current["etag"], str)
    assert create(server, alice, {"public_key": "second"}) == "2"
    assert ok(call(server, "GET", "/room_keys/version", alice))["version"] == "2"
    assert ok(call(server, "GET", "/room_keys/version/1", alice))["auth_data"] == AUTH_DATA

    new_auth = {"public_key": "updated", "signatures": {}}
    body = {"algorithm": ALGORITHM, "auth_data": new_auth, "version": "1"}
    assert ok(call(server, "PUT", "/room_keys/version/1", alice, body)) == {}
    assert ok(call(server, "GET", "/room_keys/version/1", alice))["auth_data"] == new_auth

    assert ok(call(server, "DELETE", "/room_keys/version/2", alice)) == {}
    # Deleting again succeeds; the version is gone and the one before is current.
    assert ok(call(server, "DELETE", "/room_keys/version/2", alice)) == {}
    error(call(server, "GET", "/room_keys/version/2", alice), 404, "M_NOT_FOUND")
    assert ok(call(server, "GET", "/room_keys/version", alice))["version"] == "1"
    # Numbers are not reused.
    assert create(server, alice) == "3"


def test_updating_a_version_checks_algorithm_version_and_existence(
    server: ServerProcess, alice: str
) -> None:
    create(server, alice)
    wrong_algorithm = {"algorithm": "org.example.other", "auth_data": {}}
    error(
        call(server, "PUT", "/room_keys/version/1", alice, wrong_algorithm), 400, "M_INVALID_PARAM"
    )
    wrong_version = {"algorithm": ALGORITHM, "auth_data": AUTH_DATA, "version": "2"}
    error(call(server, "PUT", "/room_keys/version/1", alice, wrong_version), 400, "M_INVALID_PARAM")
    body = {"algorithm": ALGORITHM, "auth_data": AUTH_DATA}
    error(call(server, "PUT", "/room_keys/version/9", alice, body), 404, "M_NOT_FOUND")
    error(call(server, "DELETE", "/room_keys/version/9", alice), 404, "M_NOT_FOUND")
    error(call(server, "DELETE", "/room_keys/version/abc", alice), 404, "M_NOT_FOUND")


def test_writing_to_an_old_version_is_403_with_the_current_version(
    server: ServerProcess, alice: str
) -> None:
    error(put_key(server, alice, "1", key()), 404, "M_NOT_FOUND")
    create(server, alice)
    create(server, alice)
    for version in ("1", "7", "x"):
        body = error(put_key(server, alice, version, key()), 403, "M_WRONG_ROOM_KEYS_VERSION")
        assert body["current_version"] == "2"
    rooms = {"rooms": {ROOM: {"sessions": {"s": key()}}}}
    body = error(
        call(server, "PUT", "/room_keys/keys?version=1", alice, rooms),
        403,
        "M_WRONG_ROOM_KEYS_VERSION",
    )
    assert body["current_version"] == "2"
    assert ok(put_key(server, alice, "2", key()))["count"] == 1
    # Reading an old version still works; it holds nothing.
    assert ok(call(server, "GET", "/room_keys/keys?version=1", alice)) == {"rooms": {}}


def test_a_verified_key_wins_whatever_its_index(server: ServerProcess, alice: str) -> None:
    version = create(server, alice)
    first = ok(put_key(server, alice, version, key(first_index=0, verified=False, data="a")))
    kept = ok(put_key(server, alice, version, key(first_index=0, verified=False, data="b")))
    assert kept == first
    replaced = ok(put_key(server, alice, version, key(first_index=9, verified=True, data="v")))
    assert replaced["etag"] != first["etag"] and replaced["count"] == 1
    assert stored(server, alice, version) == key(first_index=9, verified=True, data="v")
    # An unverified key never replaces a verified one, even with a lower index.
    ok(put_key(server, alice, version, key(first_index=0, verified=False, data="u")))
    assert stored(server, alice, version)["session_data"]["ciphertext"] == "v"


def test_with_equal_verification_the_lower_first_message_index_wins(
    server: ServerProcess, alice: str
) -> None:
    version = create(server, alice)
    ok(put_key(server, alice, version, key(first_index=5, forwarded=0, data="five")))
    # Higher index loses even with fewer forwards... (there are none fewer than 0)
    ok(put_key(server, alice, version, key(first_index=6, forwarded=0, data="six")))
    assert stored(server, alice, version)["session_data"]["ciphertext"] == "five"
    # ...and a lower index wins even with more forwards.
    ok(put_key(server, alice, version, key(first_index=4, forwarded=3, data="four")))
    assert stored(server, alice, version) == key(first_index=4, forwarded=3, data="four")


def test_with_equal_index_the_lower_forwarded_count_wins(server: ServerProcess, alice: str) -> None:
    version = create(server, alice)
    ok(put_key(server, alice, version, key(first_index=2, forwarded=2, data="two")))
    ok(put_key(server, alice, version, key(first_index=2, forwarded=3, data="three")))
    assert stored(server, alice, version)["session_data"]["ciphertext"] == "two"
    ok(put_key(server, alice, version, key(first_index=2, forwarded=1, data="one")))
    assert stored(server, alice, version)["session_data"]["ciphertext"] == "one"
    # All equal: the stored key stays.
    before = ok(call(server, "GET", f"/room_keys/version/{version}", alice))["etag"]
    ok(put_key(server, alice, version, key(first_index=2, forwarded=1, data="tie")))
    assert stored(server, alice, version)["session_data"]["ciphertext"] == "one"
    assert ok(call(server, "GET", f"/room_keys/version/{version}", alice))["etag"] == before


def test_etag_changes_with_the_keys_and_count_follows(server: ServerProcess, alice: str) -> None:
    version = create(server, alice)
    etags = [ok(call(server, "GET", f"/room_keys/version/{version}", alice))["etag"]]
    other = "!other:localhost"
    body = {
        "rooms": {
            ROOM: {"sessions": {"a": key(), "b": key()}},
            other: {"sessions": {"c": key()}},
        }
    }
    result = ok(call(server, "PUT", f"/room_keys/keys?version={version}", alice, body))
    assert result["count"] == 3
    etags.append(result["etag"])
    room_body = {"sessions": {"d": key(), "a": key(first_index=9)}}
    result = ok(
        call(server, "PUT", f"/room_keys/keys/{quote(ROOM)}?version={version}", alice, room_body)
    )
    assert result["count"] == 4
    etags.append(result["etag"])
    info = ok(call(server, "GET", f"/room_keys/version/{version}", alice))
    assert (info["count"], info["etag"]) == (4, etags[-1])
    assert len(set(etags)) == 3

    everything = ok(call(server, "GET", f"/room_keys/keys?version={version}", alice))
    assert {room: sorted(v["sessions"]) for room, v in everything["rooms"].items()} == {
        ROOM: ["a", "b", "d"],
        other: ["c"],
    }
    room = ok(call(server, "GET", f"/room_keys/keys/{quote(ROOM)}?version={version}", alice))
    assert sorted(room["sessions"]) == ["a", "b", "d"]
    assert room["sessions"]["a"] == key()
    empty = ok(call(server, "GET", f"/room_keys/keys/{quote('!none:x')}?version={version}", alice))
    assert empty == {"sessions": {}}
    error(call(server, "GET", session_path(version, session_id="zzz"), alice), 404, "M_NOT_FOUND")


def test_deleting_a_session_a_room_and_everything(server: ServerProcess, alice: str) -> None:
    version = create(server, alice)
    other = "!other:localhost"
    body = {
        "rooms": {
            ROOM: {"sessions": {"a": key(), "b": key()}},
            other: {"sessions": {"c": key(), "d": key()}},
        }
    }
    uploaded = ok(call(server, "PUT", f"/room_keys/keys?version={version}", alice, body))
    deleted = ok(call(server, "DELETE", session_path(version, session_id="a"), alice))
    assert deleted["count"] == 3 and deleted["etag"] != uploaded["etag"]
    unchanged = ok(call(server, "DELETE", session_path(version, session_id="a"), alice))
    assert unchanged == deleted
    room_path = f"/room_keys/keys/{quote(other)}?version={version}"
    assert ok(call(server, "DELETE", room_path, alice))["count"] == 1
    assert ok(call(server, "GET", room_path, alice)) == {"sessions": {}}
    assert ok(call(server, "DELETE", f"/room_keys/keys?version={version}", alice))["count"] == 0
    assert ok(call(server, "GET", f"/room_keys/keys?version={version}", alice)) == {"rooms": {}}
    error(call(server, "DELETE", "/room_keys/keys?version=42", alice), 404, "M_NOT_FOUND")
    # Deleting the version takes its keys with it.
    ok(put_key(server, alice, version, key()))
    ok(call(server, "DELETE", f"/room_keys/version/{version}", alice))
    error(call(server, "GET", f"/room_keys/keys?version={version}", alice), 404, "M_NOT_FOUND")


def test_another_users_backup_is_invisible(server: ServerProcess, alice: str) -> None:
    version = create(server, alice)
    ok(put_key(server, alice, version, key()))
    bob = register(server, "bob")["access_token"]
    error(call(server, "GET", "/room_keys/version", bob), 404, "M_NOT_FOUND")
    error(call(server, "GET", f"/room_keys/version/{version}", bob), 404, "M_NOT_FOUND")
    error(call(server, "GET", f"/room_keys/keys?version={version}", bob), 404, "M_NOT_FOUND")
    error(call(server, "DELETE", f"/room_keys/version/{version}", bob), 404, "M_NOT_FOUND")
    error(put_key(server, bob, version, key()), 404, "M_NOT_FOUND")
    assert create(server, bob) == "1"
    assert ok(call(server, "GET", f"/room_keys/keys?version={version}", bob)) == {"rooms": {}}
    assert stored(server, alice, version) == key()


def test_bad_input_is_answered_with_matrix_errors(server: ServerProcess, alice: str) -> None:
    version = create(server, alice)
    post = "/room_keys/version"
    error(call(server, "POST", post, alice, {"auth_data": {}}), 400, "M_MISSING_PARAM")
    error(call(server, "POST", post, alice, {"algorithm": ALGORITHM}), 400, "M_MISSING_PARAM")
    error(call(server, "POST", post, alice, {"algorithm": 1, "auth_data": {}}), 400, "M_BAD_JSON")
    bad_auth = {"algorithm": ALGORITHM, "auth_data": []}
    error(call(server, "POST", post, alice, bad_auth), 400, "M_BAD_JSON")
    no_key = {"algorithm": ALGORITHM, "auth_data": {"signatures": {}}}
    error(call(server, "POST", post, alice, no_key), 400, "M_BAD_JSON")
    error(call(server, "POST", post, alice, [1]), 400, "M_BAD_JSON")

    error(
        call(server, "PUT", f"/room_keys/keys/{quote(ROOM)}/s", alice, key()),
        400,
        "M_MISSING_PARAM",
    )
    error(call(server, "GET", "/room_keys/keys", alice), 400, "M_MISSING_PARAM")
    error(call(server, "DELETE", f"/room_keys/keys/{quote(ROOM)}", alice), 400, "M_MISSING_PARAM")
    bad: Any
    for bad in ("nope", 3, None, []):
        body = {**key(), "session_data": bad}
        error(put_key(server, alice, version, body), 400, "M_BAD_JSON")
    wrong_types: list[tuple[str, Any]] = [
        ("first_message_index", "1"),
        ("first_message_index", True),
        ("first_message_index", 1.5),
        ("forwarded_count", None),
        ("is_verified", 1),
    ]
    for name, bad in wrong_types:
        error(put_key(server, alice, version, {**key(), name: bad}), 400, "M_BAD_JSON")
    error(put_key(server, alice, version, {**key(), "forwarded_count": -1}), 400, "M_INVALID_PARAM")
    for name in ("first_message_index", "forwarded_count", "is_verified", "session_data"):
        partial = {k: v for k, v in key().items() if k != name}
        error(put_key(server, alice, version, partial), 400, "M_MISSING_PARAM")
    keys_path = f"/room_keys/keys?version={version}"
    error(call(server, "PUT", keys_path, alice, {}), 400, "M_MISSING_PARAM")
    error(call(server, "PUT", keys_path, alice, {"rooms": []}), 400, "M_BAD_JSON")
    not_a_room: dict[str, Any] = {"rooms": {"room": {"sessions": {}}}}
    error(call(server, "PUT", keys_path, alice, not_a_room), 400, "M_INVALID_PARAM")
    error(call(server, "PUT", keys_path, alice, {"rooms": {ROOM: {}}}), 400, "M_MISSING_PARAM")
    bad_sessions = {"rooms": {ROOM: {"sessions": {"s": "key"}}}}
    error(call(server, "PUT", keys_path, alice, bad_sessions), 400, "M_BAD_JSON")
    error(
        call(server, "GET", f"/room_keys/keys/not-a-room?version={version}", alice),
        400,
        "M_INVALID_PARAM",
    )
    # A bad key anywhere in a bulk upload stores nothing.
    mixed = {"rooms": {ROOM: {"sessions": {"good": key(), "bad": {**key(), "is_verified": 0}}}}}
    error(call(server, "PUT", keys_path, alice, mixed), 400, "M_BAD_JSON")
    assert ok(call(server, "GET", f"/room_keys/version/{version}", alice))["count"] == 0
    error(call(server, "GET", "/room_keys/version/0", alice), 404, "M_NOT_FOUND")
    error(call(server, "GET", "/room_keys/version/01", alice), 404, "M_NOT_FOUND")
    error(call(server, "GET", "/room_keys/keys?version=abc", alice), 404, "M_NOT_FOUND")
    error(call(server, "GET", "/room_keys/version", None), 401, "M_MISSING_TOKEN")


def test_a_bulk_upload_of_2000_sessions_in_20_rooms_is_one_request(
    server: ServerProcess, alice: str
) -> None:
    version = create(server, alice)
    rooms = {
        f"!room{r}:localhost": {"sessions": {f"session{s}": key(s) for s in range(100)}}
        for r in range(20)
    }
    path = f"/room_keys/keys?version={version}"
    result = ok(call(server, "PUT", path, alice, {"rooms": rooms}))
    assert result["count"] == 2000
    info = ok(call(server, "GET", f"/room_keys/version/{version}", alice))
    assert (info["count"], info["etag"]) == (2000, result["etag"])
    everything = ok(call(server, "GET", path, alice))
    assert sum(len(room["sessions"]) for room in everything["rooms"].values()) == 2000
    assert everything["rooms"]["!room7:localhost"]["sessions"]["session42"] == key(42)
    # Sent again, nothing is better: nothing changes.
    again = ok(call(server, "PUT", path, alice, {"rooms": rooms}))
    assert again == result


def test_r0_paths_serve_the_same_backup(server: ServerProcess, alice: str) -> None:
    version = create(server, alice)
    response = server.request(
        "GET",
        "/_matrix/client/r0/room_keys/version",
        headers={"Authorization": f"Bearer {alice}"},
    )
    assert response.status == 200 and response.json()["version"] == version
