"""``GET /pushers`` and ``POST /pushers/set`` over HTTP, on both engines: set, update,
delete, ``append``, the request checks, the rate limit and the cap per user, and a
pusher's end with its device or its account.

spec: client-server-api/modules/push.md#client-behaviour, data/api/client-server/pusher.yaml
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.support.matrix import call, login, password_auth, register, running_server
from tests.support.server_process import ServerProcess

GATEWAY = "https://push.example.org/_matrix/push/v1/notify"
#: A P-256 public key (uncompressed, URL-safe base64): a browser subscription's p256dh.
WEBPUSH_KEY = (
    "BHaPeBwiJR25pFf4uRu77T8lIJhIaAXmDDH_-s_NnfrpCJVXfJbNAtVEft9QAUNG3MWPFJ5Isa0SWAHTvJwW5y8"
)


def http_pusher(pushkey: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "http",
        "app_id": "org.example.app.ios",
        "pushkey": pushkey,
        "app_display_name": "Example",
        "device_display_name": "Alice's phone",
        "profile_tag": "xyz",
        "lang": "en-US",
        "data": {"url": GATEWAY, "format": "event_id_only", "custom": 1},
    }
    body.update(overrides)
    return body


def set_pusher(server: ServerProcess, token: str, body: dict[str, Any]) -> None:
    response = call(server, "POST", "/pushers/set", token=token, body=body)
    assert response.status == 200, response.body
    assert response.json() == {}


def pushers(server: ServerProcess, token: str) -> list[dict[str, Any]]:
    response = call(server, "GET", "/pushers", token=token)
    assert response.status == 200, response.body
    result: list[dict[str, Any]] = response.json()["pushers"]
    return result


def test_a_pusher_is_set_listed_updated_and_deleted(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    assert pushers(open_server, alice) == []
    set_pusher(open_server, alice, http_pusher("key-1"))
    expected = {k: v for k, v in http_pusher("key-1").items() if k != "append"}
    assert pushers(open_server, alice) == [expected]

    # The same (app_id, pushkey) again updates that pusher.
    set_pusher(open_server, alice, http_pusher("key-1", device_display_name="New phone"))
    listed = pushers(open_server, alice)
    assert [p["device_display_name"] for p in listed] == ["New phone"]

    set_pusher(open_server, alice, http_pusher("key-2"))
    assert sorted(p["pushkey"] for p in pushers(open_server, alice)) == ["key-1", "key-2"]

    # kind: null deletes; only app_id and pushkey are needed.
    set_pusher(
        open_server, alice, {"kind": None, "app_id": "org.example.app.ios", "pushkey": "key-1"}
    )
    assert [p["pushkey"] for p in pushers(open_server, alice)] == ["key-2"]
    # Deleting what is not there is fine.
    set_pusher(open_server, alice, {"kind": None, "app_id": "other", "pushkey": "key-9"})


def test_append_false_takes_the_pushkey_from_other_users(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    carol = register(open_server, "carol")["access_token"]
    set_pusher(open_server, alice, http_pusher("shared"))
    set_pusher(open_server, bob, http_pusher("shared", append=True))
    assert len(pushers(open_server, alice)) == 1
    assert len(pushers(open_server, bob)) == 1

    # append defaults to false: carol's pusher removes alice's and bob's.
    set_pusher(open_server, carol, http_pusher("shared"))
    assert pushers(open_server, alice) == []
    assert pushers(open_server, bob) == []
    assert len(pushers(open_server, carol)) == 1


#: (request body, errcode): each refused with 400.
BAD_REQUESTS: list[tuple[Any, str]] = [
    ({"kind": "http", "pushkey": "k"}, "M_MISSING_PARAM"),
    ({k: v for k, v in http_pusher("k").items() if k != "lang"}, "M_MISSING_PARAM"),
    (http_pusher("k" * 513), "M_INVALID_PARAM"),
    (http_pusher("é" * 257), "M_INVALID_PARAM"),
    (http_pusher("k", app_id="a" * 65), "M_INVALID_PARAM"),
    (http_pusher("k", kind="carrier-pigeon"), "M_INVALID_PARAM"),
    (http_pusher("k", data={"format": "event_id_only"}), "M_MISSING_PARAM"),
    (http_pusher("k", data={"url": "https://push.example.org/notify"}), "M_INVALID_PARAM"),
    (http_pusher("k", data={"url": "ftp://h/_matrix/push/v1/notify"}), "M_INVALID_PARAM"),
    (http_pusher("k", data="not an object"), "M_INVALID_PARAM"),
    (http_pusher("k", append="yes"), "M_INVALID_PARAM"),
    ({**http_pusher("k"), "pushkey": 7}, "M_INVALID_PARAM"),
    ({**http_pusher("k"), "kind": "webpush", "data": {"url": GATEWAY}}, "M_MISSING_PARAM"),
    (
        {**http_pusher("not-a-key"), "kind": "webpush", "data": {"url": GATEWAY, "auth": "AAAA"}},
        "M_INVALID_PARAM",
    ),
    # A push service over plain http (only whitelisted addresses may be).
    (
        {
            **http_pusher(WEBPUSH_KEY),
            "kind": "webpush",
            "data": {"url": "http://push.example.org/sub/1", "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
        },
        "M_INVALID_PARAM",
    ),
]


def test_bad_pusher_requests_are_refused(open_server: ServerProcess) -> None:
    token = register(open_server, "alice")["access_token"]
    for body, errcode in BAD_REQUESTS:
        response = call(open_server, "POST", "/pushers/set", token=token, body=body)
        assert response.status == 400, (body, response.body)
        assert response.json()["errcode"] == errcode, (body, response.body)
    assert pushers(open_server, token) == []


def test_a_64_character_app_id_and_512_byte_pushkey_are_accepted(
    open_server: ServerProcess,
) -> None:
    alice = register(open_server, "alice")["access_token"]
    set_pusher(open_server, alice, http_pusher("é" * 256, app_id="a" * 64))
    assert len(pushers(open_server, alice)) == 1


def test_a_pusher_goes_with_the_device_that_set_it(open_server: ServerProcess) -> None:
    first = register(open_server, "alice")["access_token"]
    second = login(open_server, "alice")["access_token"]
    set_pusher(open_server, first, http_pusher("from-first"))
    set_pusher(open_server, second, http_pusher("from-second"))
    assert len(pushers(open_server, first)) == 2

    assert call(open_server, "POST", "/logout", token=second, body={}).status == 200
    assert [p["pushkey"] for p in pushers(open_server, first)] == ["from-first"]


def test_pushers_are_per_user(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    bob = register(open_server, "bob")["access_token"]
    set_pusher(open_server, alice, http_pusher("alice-key"))
    assert pushers(open_server, bob) == []
    # Bob cannot delete alice's pusher by naming it.
    set_pusher(
        open_server, bob, {"kind": None, "app_id": "org.example.app.ios", "pushkey": "alice-key"}
    )
    assert len(pushers(open_server, alice)) == 1


def test_a_webpush_pusher_needs_an_https_endpoint(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    body = {
        **http_pusher(WEBPUSH_KEY),
        "kind": "webpush",
        "data": {"url": "https://push.example.org/sub/1", "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
    }
    set_pusher(open_server, alice, body)
    assert [p["kind"] for p in pushers(open_server, alice)] == ["webpush"]


def test_setting_pushers_is_rate_limited(tmp_path: Path, database_config: dict[str, Any]) -> None:
    limits = {"rc_pushers": {"per_second": 0.001, "burst_count": 2}}
    with running_server(tmp_path, database_config, **limits) as server:
        alice = register(server, "alice")["access_token"]
        set_pusher(server, alice, http_pusher("one"))
        set_pusher(server, alice, http_pusher("two"))
        response = call(server, "POST", "/pushers/set", token=alice, body=http_pusher("three"))
        assert response.status == 429, response.body
        assert response.json()["errcode"] == "M_LIMIT_EXCEEDED"
        # Per user: bob is not held back by alice.
        bob = register(server, "bob")["access_token"]
        set_pusher(server, bob, http_pusher("bobs"))


def test_a_user_has_at_most_50_pushers(open_server: ServerProcess) -> None:
    alice = register(open_server, "alice")["access_token"]
    for number in range(50):
        set_pusher(open_server, alice, http_pusher(f"key-{number}"))
    response = call(open_server, "POST", "/pushers/set", token=alice, body=http_pusher("more"))
    assert response.status == 400, response.body
    assert response.json()["errcode"] == "M_LIMIT_EXCEEDED"
    # Updating one of them, or deleting one to make room, still works.
    set_pusher(open_server, alice, http_pusher("key-0", lang="fr"))
    set_pusher(
        open_server, alice, {"kind": None, "app_id": "org.example.app.ios", "pushkey": "key-1"}
    )
    set_pusher(open_server, alice, http_pusher("more"))
    assert len(pushers(open_server, alice)) == 50


def test_deactivation_removes_the_accounts_pushers(open_server: ServerProcess) -> None:
    token = register(open_server, "henry")["access_token"]
    set_pusher(open_server, token, http_pusher("henry-key"))
    first = call(open_server, "POST", "/account/deactivate", token=token, body={})
    assert first.status == 401
    done = call(
        open_server,
        "POST",
        "/account/deactivate",
        token=token,
        body={"auth": password_auth("henry", session=first.json()["session"])},
    )
    assert done.status == 200, done.body
    # The account can no longer list them; the server says it removed them.
    removed = re.compile(r"removed http pusher \d+ of @henry:localhost")
    deadline = time.monotonic() + 30
    while not removed.search(open_server.log()):
        assert time.monotonic() < deadline, "the pusher was never removed"
        time.sleep(0.1)
