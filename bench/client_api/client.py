"""A minimal Matrix client for the benchmark, over aiohttp.

aiohttp rather than treq because the client shares the machine's cores with the
server being measured: its C HTTP parser keeps the client's own CPU time small, so
the figures are mostly the server's.  One ``aiohttp.ClientSession`` per server keeps
connections alive between requests (HTTP/1.1 keep-alive), as a real client does.

spec: client-server-api/_index.md (createRoom, join, send, sync);
admin register: Synapse's ``/_synapse/admin/v1/register`` (nonce + HMAC-SHA1).
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import attrs

from homeserver.auth.shared_secret import registration_mac

CLIENT_PREFIX = "/_matrix/client/v3"
ADMIN_REGISTER = "/_synapse/admin/v1/register"
PASSWORD = "bench password 1"


class RequestFailed(Exception):
    """A non-2xx answer; the message names the request and the Matrix error."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        try:
            parsed = json.loads(body)
            detail = f"{parsed.get('errcode')}: {parsed.get('error')}"
        except (ValueError, AttributeError):
            detail = body[:200]
        super().__init__(f"{method} {path} -> {status} {detail}")
        self.status = status
        #: The raw answer (a UIA 401 carries the session to answer with).
        self.body = body


def session(connections: int = 100) -> aiohttp.ClientSession:
    """A session whose pool keeps up to ``connections`` open connections."""
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=120)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))


@attrs.frozen
class Account:
    user_id: str
    access_token: str


class Client:
    """Requests to one server, as one user (or anonymously)."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, account: Account | None = None
    ) -> None:
        self.http = http
        self.base_url = base_url
        self.account = account
        self._txn = itertools.count()
        self._txn_prefix = secrets.token_hex(4)

    def as_user(self, account: Account) -> Client:
        return Client(self.http, self.base_url, account)

    @property
    def user_id(self) -> str:
        assert self.account is not None
        return self.account.user_id

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], int]:
        """Send one request; return the JSON body and the response's size in bytes."""
        headers = {}
        if self.account is not None:
            headers["Authorization"] = f"Bearer {self.account.access_token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        async with self.http.request(
            method, self.base_url + path, data=data, headers=headers, params=params
        ) as response:
            raw = await response.read()
            if not 200 <= response.status < 300:
                raise RequestFailed(method, path, response.status, raw.decode(errors="replace"))
        return json.loads(raw), len(raw)

    async def register_with_secret(self, username: str, shared_secret: str) -> Account:
        """Create a (non-admin) account through the shared-secret admin API."""
        nonce = (await self.call("GET", ADMIN_REGISTER))[0]["nonce"]
        body = {
            "nonce": nonce,
            "username": username,
            "password": PASSWORD,
            "admin": False,
            "mac": registration_mac(shared_secret, nonce, username, PASSWORD, False),
        }
        answer = (await self.call("POST", ADMIN_REGISTER, body))[0]
        return Account(user_id=answer["user_id"], access_token=answer["access_token"])

    async def create_room(
        self,
        *,
        room_version: str | None,
        name: str,
        preset: str = "public_chat",
        topic: str | None = None,
        invite: Sequence[str] = (),
    ) -> str:
        body: dict[str, Any] = {"preset": preset, "name": name}
        if room_version is not None:
            body["room_version"] = room_version
        if topic is not None:
            body["topic"] = topic
        if invite:
            body["invite"] = list(invite)
        return str((await self.call("POST", f"{CLIENT_PREFIX}/createRoom", body))[0]["room_id"])

    async def joined_rooms(self) -> list[str]:
        answer = (await self.call("GET", f"{CLIENT_PREFIX}/joined_rooms"))[0]
        return [str(room_id) for room_id in answer["joined_rooms"]]

    async def join(self, room_id: str) -> None:
        await self.call("POST", f"{CLIENT_PREFIX}/join/{quote(room_id, safe='')}", {})

    async def send_text(self, room_id: str, text: str) -> str:
        """``PUT /rooms/{roomId}/send/m.room.message/{txnId}``; the new event's ID."""
        txn = f"{self._txn_prefix}.{next(self._txn)}"
        path = f"{CLIENT_PREFIX}/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn}"
        answer = (await self.call("PUT", path, {"msgtype": "m.text", "body": text}))[0]
        return str(answer["event_id"])

    async def count_messages(self, room_id: str) -> int:
        """How many ``m.room.message`` events ``GET /rooms/{id}/messages`` lists, paging
        back from the end of the room."""
        path = f"{CLIENT_PREFIX}/rooms/{quote(room_id, safe='')}/messages"
        params = {"dir": "b", "limit": "100"}
        count = 0
        while True:
            page = (await self.call("GET", path, params=params))[0]
            chunk = page.get("chunk", [])
            count += sum(1 for event in chunk if event.get("type") == "m.room.message")
            if not chunk or "end" not in page:
                return count
            params["from"] = page["end"]

    async def sync(
        self, *, since: str | None = None, timeout_ms: int | None = None
    ) -> tuple[dict[str, Any], int]:
        """``GET /sync`` without a filter; the body and its size in bytes."""
        params: dict[str, str] = {}
        if since is not None:
            params["since"] = since
        if timeout_ms is not None:
            params["timeout"] = str(timeout_ms)
        return await self.call("GET", f"{CLIENT_PREFIX}/sync", params=params or None)
