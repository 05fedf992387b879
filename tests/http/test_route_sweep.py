"""Every route the server registers, fed bad input over HTTP: never a 500, always a
proper Matrix error.

The route table comes from the server itself (an in-process build of the same
router), so a new endpoint is swept without anyone listing it here.  Each route gets
garbage path parameters, garbage query parameters and, for methods with a body,
malformed and wrongly-typed JSON; the bodies are drawn from a fixed seed so a
failure names the exact request to replay.  Each route gets a fresh token and a
fresh room, so a route that changes state (leave, ban, power levels) cannot hide
another route's behaviour.

spec: client-server-api/_index.md#standard-error-response, #common-error-codes
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_twisted

from homeserver.api.client.auth_fallback import PATH as AUTH_FALLBACK_PATH
from homeserver.app import build_homeserver
from homeserver.config.load import embedded_default_config
from homeserver.pushers.email.unsubscribe import UNSUBSCRIBE_PATH
from homeserver.reactor import installed_reactor
from homeserver.threepids.handler import SUBMIT_TOKEN_PATH
from tests.support.accounts import register_with_secret
from tests.support.http import Response
from tests.support.matrix import login, running_server
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.slow

USER = "@sweeper:localhost"
PASSWORD = "correct horse"

#: Routes that end the session the sweep runs with; their own tests cover them.
SESSION_ENDING = {
    ("POST", "/_matrix/client/v3/logout"),
    ("POST", "/_matrix/client/v3/logout/all"),
}

#: Pages people open from a link in an email (address validation, one-click
#: unsubscribe) or from their client (the UIA fallback): they answer bad input with
#: an HTML page and an error status.
HTML_PAGES = {
    ("GET", SUBMIT_TOKEN_PATH),
    ("GET", UNSUBSCRIBE_PATH),
    ("POST", UNSUBSCRIBE_PATH),
    *(
        (method, f"/_matrix/client/{version}{AUTH_FALLBACK_PATH}")
        for method in ("GET", "POST")
        for version in ("v3", "r0")
    ),
}


def is_html_page(method: str, path: str) -> bool:
    """Whether ``path`` (parameters filled in) is one of :data:`HTML_PAGES`."""
    return any(
        method == page_method
        and re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(pattern)), path)
        for page_method, pattern in HTML_PAGES
    )


#: Field names clients send across the client-server API.
FIELDS = (
    "type", "content", "membership", "user_id", "reason", "name", "topic", "preset",
    "invite", "visibility", "room_version", "initial_state", "creation_content",
    "power_level_content_override", "room_alias_name", "is_direct", "auth", "session",
    "username", "password", "identifier", "device_id", "initial_device_display_name",
    "refresh_token", "refresh_token", "inhibit_login", "new_password", "logout_devices",
    "devices", "display_name", "displayname", "avatar_url", "room_id", "order", "body",
    "msgtype", "m.relates_to", "event_id", "ts", "dir", "limit", "filter", "since",
    "server", "typing", "timeout", "m.fully_read", "m.read", "m.read.private",
    "thread_id", "token", "uses_allowed", "expiry_time", "length", "nonce", "mac",
    "admin", "alias", "via", "third_party_signed", "search_term", "generic_search_term",
    "include_all_networks", "third_party_instance_id", "room", "presence", "event_fields",
    "event_format", "account_data", "not_types", "types", "senders", "rooms", "join_rule",
    "history_visibility", "users", "events", "events_default", "ban", "kick", "redact",
)  # fmt: skip

#: Values of every JSON type, including ones no field accepts.
WEIRD_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 2**70, -(2**70), 1.5, 1e308, "", "x", "\u0000", "🙂" * 3,
    "@", "!", "#", "$", "@a:b:c", [], [None], [1, "a"], {}, {"": None}, {"a": {"b": []}},
)  # fmt: skip

#: Query strings no endpoint should choke on.
BAD_QUERIES = (
    "limit=abc", "limit=-5", "limit=99999999999999999999999", "limit=1.5", "from=garbage",
    "from=s99999999999_0_0_0", "to=%FF", "dir=x", "since=s-1", "since=%00", "timeout=abc",
    "timeout=-1", "filter=%7B", "filter=999999", "filter=%5B%5D", "at=zz", "ts=abc",
    "ts=-1", "membership=x", "not_membership=join&membership=join", "recurse=maybe",
    "max_depth=-1", "suggested_only=2", "format=zz", "full_state=yes", "set_presence=x",
    "server=%20", "include=none", "kind=x", "user_id=nobody", "access_token=",
    # Nested past the parser's limit, and far past Python's recursion limit.
    "filter=" + "%5B" * 101 + "%5D" * 101, "filter=" + '{"a":' * 2000 + "1" + "}" * 2000,
)  # fmt: skip

#: Garbage for one path parameter at a time.
BAD_SEGMENTS = ("x", "%00", "%FF", "!nope:localhost", "@nobody:localhost", "a" * 3000, "%2F")


@pytest_twisted.async_yield_fixture
async def route_table(tmp_path: Path) -> AsyncIterator[list[tuple[str, str]]]:
    """Every (method, path pattern) the server serves, read off an in-process build."""
    config = embedded_default_config(tmp_path / "route-table")
    homeserver = await build_homeserver(config, installed_reactor(), create_signing_key=True)
    try:
        routes = {
            route
            for listener in config.listeners
            for route in homeserver.build_router(listener).routes()
        }
    finally:
        homeserver.database.close()
    # r0 paths share v3's handlers.
    yield sorted(r for r in routes if "/r0/" not in r[1])


@pytest.fixture
def sweep_server(tmp_path: Path, database_config: dict[str, Any]) -> Iterator[ServerProcess]:
    with running_server(tmp_path, database_config) as server:
        yield server


class _Sweep:
    def __init__(self, server: ServerProcess, seed: str) -> None:
        self.server = server
        self.random = random.Random(seed)
        self.failures: list[str] = []
        self.token = ""
        self.good: dict[str, str] = {}

    def call(
        self, method: str, path: str, body: bytes | None = None, token: str | None = None
    ) -> Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.server.request(method, path, body=body, headers=headers)

    def fresh_session(self) -> None:
        """A new token and a new room with one message, for the next route."""
        self.token = login(self.server, "sweeper", PASSWORD)["access_token"]
        created = self.call(
            "POST",
            "/_matrix/client/v3/createRoom",
            json.dumps({"preset": "public_chat"}).encode(),
        )
        assert created.status == 200, created.body
        room_id = created.json()["room_id"]
        sent = self.call(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/t1",
            json.dumps({"msgtype": "m.text", "body": "hello"}).encode(),
        )
        assert sent.status == 200, sent.body
        device_id = self.call("GET", "/_matrix/client/v3/account/whoami").json()["device_id"]
        self.good = {
            "room_id": room_id,
            "room_id_or_alias": room_id,
            "event_id": sent.json()["event_id"],
            "user_id": USER,
            "device_id": device_id,
            "event_type": "m.room.message",
            "state_key": "",
            "txn_id": f"txn{self.random.randrange(10**9)}",
            "room_alias": "#sweep:localhost",
            "data_type": "im.example.sweep",
            "tag": "u.sweep",
            "filter_id": "0",
            "key_name": "displayname",
            "receipt_type": "m.read",
            "rel_type": "m.annotation",
            "token": "abcd",
        }

    def path(self, pattern: str, bad: tuple[str, str] | None = None) -> str:
        def fill(found: re.Match[str]) -> str:
            name = found.group(1)
            if bad is not None and bad[0] == name:
                return bad[1]
            return quote(self.good.get(name, "x"), safe="")

        return re.sub(r"\{(\w+)\}", fill, pattern)

    def bodies(self) -> list[bytes]:
        fixed = [b"", b"{", b"[]", b'"x"', b"null", b"{}", b"\xff\xfe", b'{"a": NaN}']
        # Nesting past the limit, as arrays and objects, and as a field's value.
        fixed += [b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000]
        fixed += [b'{"content":' + b"[" * 101 + b"]" * 101 + b"}"]
        drawn = []
        for _ in range(30):
            keys = self.random.sample(FIELDS, self.random.randint(1, 6))
            body = {key: self.random.choice(WEIRD_VALUES) for key in keys}
            drawn.append(json.dumps(body).encode())
        # NUL in every field, alone and inside the shapes fields take.
        nul = "a\u0000b"
        for key in FIELDS:
            for value in (nul, [nul], {nul: nul}, {"type": nul, "user": nul}):
                drawn.append(json.dumps({key: value}).encode())
        return fixed + drawn

    def check(self, method: str, path: str, response: Response, body: bytes | None) -> None:
        where = f"{method} {path[:200]} body={body[:300] if body else body!r}"
        # The spec answers media of an unreachable server 502 and an upload still
        # awaited 504 (both Matrix errors, checked below); any other 5xx is a bug.
        upstream = response.status in (502, 504) and "/media/" in path
        if response.status >= 500 and not upstream:
            self.failures.append(f"{response.status} for {where}: {response.body[:300]!r}")
            return
        if response.status < 400:
            return
        if is_html_page(method, path.split("?")[0]):
            html = response.headers.get("content-type", "").startswith("text/html")
            # A path parameter that is not UTF-8 (or holds NUL) is refused before any
            # page runs: that answer is a Matrix error like everywhere else.
            if html:
                return
            if "%00" not in path and "%FF" not in path.upper():
                self.failures.append(f"{response.status} without an HTML page for {where}")
                return
        try:
            error = response.json()
        except ValueError:
            self.failures.append(f"{response.status} without JSON for {where}")
            return
        if response.status == 401 and isinstance(error, dict) and "flows" in error:
            return  # user-interactive auth asking for a stage (spec: #user-interactive-api)
        if not (
            isinstance(error, dict)
            and isinstance(error.get("errcode"), str)
            and isinstance(error.get("error"), str)
        ):
            self.failures.append(f"{response.status} not a Matrix error for {where}: {error}")

    def sweep_route(self, method: str, pattern: str) -> None:
        self.fresh_session()
        with_body = method in ("POST", "PUT", "DELETE")
        good_path = self.path(pattern)
        for name in re.findall(r"\{(\w+)\}", pattern):
            for segment in BAD_SEGMENTS:
                path = self.path(pattern, (name, segment))
                body = b"{}" if with_body else None
                self.check(method, path, self.call(method, path, body), body)
        for query in BAD_QUERIES:
            path = f"{good_path}?{query}"
            body = b"{}" if with_body else None
            self.check(method, path, self.call(method, path, body), body)
        if with_body:
            for body in self.bodies():
                self.check(method, good_path, self.call(method, good_path, body), body)
        # A bad token on every route: 401, never a 500.
        unauthenticated = self.call(method, good_path, b"{}" if with_body else None, "nope")
        self.check(method, good_path, unauthenticated, None)


def test_every_route_answers_bad_input_with_a_matrix_error(
    route_table: list[tuple[str, str]], sweep_server: ServerProcess
) -> None:
    assert len(route_table) > 50  # the table really is the server's
    registered = register_with_secret(sweep_server, "sweeper", PASSWORD, admin=True)
    assert registered.status == 200, registered.body
    sweep = _Sweep(sweep_server, seed="route-sweep")
    for method, pattern in route_table:
        if (method, pattern) not in SESSION_ENDING:
            sweep.sweep_route(method, pattern)
    assert sweep.failures == [], "\n".join(sweep.failures[:40])
    # And the server is still up and answering.
    health = sweep_server.request("GET", "/health")
    assert health.status == 200
