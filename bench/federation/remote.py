"""Light remote servers the benchmark plays itself: each is ``localhost:<port>`` over
TLS (a leaf of the test CA), serves its signing key, accepts ``/send`` transactions
(recording when each message arrived), and can join a room on another server
through make_join/send_join and then sign and send PDUs of its own.

One asyncio process runs any number of them (aiohttp), so neither the sender of the
inbound workload nor the 50 destinations of the fan-out workload need a homeserver.

spec: server-server-api.md#retrieving-server-keys, server-server-api.md#transactions,
server-server-api.md#joining-rooms, server-server-api.md#request-authentication
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import attrs
from aiohttp import web
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from signedjson.types import SigningKey
from yarl import URL

from federation.transport.x_matrix import sign_request
from homeserver.events.hashing import compute_event_id
from homeserver.events.room_versions import RoomVersion, get_room_version
from homeserver.events.signing import sign_event_and_compute_id
from tests.support.federation import TestCA
from tests.support.server_process import free_port

DAY_MS = 86_400_000


def _quote(segment: str) -> str:
    return quote(segment, safe="")


class RemoteFailed(Exception):
    """A federation request the benchmark made was refused."""


@attrs.define
class JoinedRoom:
    """What a remote server needs to keep sending into a room it joined."""

    room_id: str
    room_version: RoomVersion
    user_id: str
    create_id: str
    power_levels_id: str
    join_id: str
    #: The event the next PDU builds on, and its depth.
    latest_id: str
    depth: int


class RemoteServer:
    """One light remote server: keys, an inbox of transactions, a signing client."""

    def __init__(self, ca: TestCA, *, label: str, session: aiohttp.ClientSession) -> None:
        self.port = free_port()
        self.server_name = f"localhost:{self.port}"
        self.signing_key: SigningKey = generate_signing_key("bench")
        self._ca = ca
        self._label = label
        self._session = session
        self._runner: web.AppRunner | None = None
        #: Message body -> arrival time (``time.monotonic``) of its first delivery.
        self.arrivals: dict[str, float] = {}
        self.transactions = 0
        self._txn = 0
        #: The PDUs this server created, by event ID: a receiver that processes them
        #: out of order (Synapse stages what it receives and works through it in the
        #: background) asks for the ones it lacks, as from any real sender.
        self.created: dict[str, dict[str, Any]] = {}

    # --- serving -------------------------------------------------------------------

    async def start(self) -> None:
        pair = self._ca.issue(f"remote-{self._label}")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pair.certificate_path), str(pair.private_key_path))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/_matrix/key/v2/server", self._keys)
        app.router.add_put("/_matrix/federation/v1/send/{txn}", self._send)
        app.router.add_get("/_matrix/federation/v1/event/{event_id}", self._event)
        app.router.add_post(
            "/_matrix/federation/v1/get_missing_events/{room_id}", self._missing_events
        )
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def key_response(self) -> dict[str, Any]:
        verify_key = get_verify_key(self.signing_key)
        body = {
            "server_name": self.server_name,
            "valid_until_ts": int(time.time() * 1000) + DAY_MS,
            "verify_keys": {
                f"ed25519:{self.signing_key.version}": {"key": encode_verify_key_base64(verify_key)}
            },
            "old_verify_keys": {},
        }
        signed: dict[str, Any] = sign_json(body, self.server_name, self.signing_key)
        return signed

    async def _keys(self, request: web.Request) -> web.Response:
        return web.json_response(self.key_response())

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        now = time.monotonic()
        self.transactions += 1
        for pdu in body.get("pdus", []):
            if pdu.get("type") == "m.room.message":
                text = pdu.get("content", {}).get("body")
                if isinstance(text, str):
                    self.arrivals.setdefault(text, now)
        return web.json_response({"pdus": {}})

    async def _event(self, request: web.Request) -> web.Response:
        pdu = self.created.get(request.match_info["event_id"])
        if pdu is None:
            return await self._unknown(request)
        return web.json_response(
            {
                "origin": self.server_name,
                "origin_server_ts": int(time.time() * 1000),
                "pdus": [pdu],
            }
        )

    async def _missing_events(self, request: web.Request) -> web.Response:
        """spec: server-server-api.md#post_matrixfederationv1get_missing_eventsroomid"""
        body = await request.json()
        earliest = set(body.get("earliest_events", []))
        limit = min(int(body.get("limit", 10)), 100)
        found: list[dict[str, Any]] = []
        frontier = [e for e in body.get("latest_events", []) if e in self.created]
        seen: set[str] = set()
        while frontier and len(found) < limit:
            event_id = frontier.pop()
            for parent in self.created[event_id]["prev_events"]:
                if parent in earliest or parent in seen or parent not in self.created:
                    continue
                seen.add(parent)
                found.append(self.created[parent])
                frontier.append(parent)
        found.sort(key=lambda pdu: int(pdu["depth"]))
        return web.json_response({"events": found[:limit]})

    async def _unknown(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"errcode": "M_UNRECOGNIZED", "error": "not served by the benchmark"}, status=404
        )

    # --- asking --------------------------------------------------------------------

    async def request(
        self,
        destination: str,
        method: str,
        path: str,
        body: object | None = None,
        *,
        within_seconds: float = 300.0,
    ) -> Any:
        """A signed request to ``destination`` (``localhost:<port>``)."""
        headers = {
            "Authorization": sign_request(
                self.signing_key,
                origin=self.server_name,
                destination=destination,
                method=method,
                uri=path,
                content=body,
            )
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        # encoded=True: send the target exactly as signed (yarl would normalise it).
        url = URL(f"https://{destination}{path}", encoded=True)
        async with self._session.request(
            method,
            url,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=within_seconds),
        ) as response:
            raw = await response.read()
            if not 200 <= response.status < 300:
                raise RemoteFailed(
                    f"{self.server_name} {method} {destination}{path} -> {response.status} "
                    f"{raw[:300].decode(errors='replace')}"
                )
            return json.loads(raw)

    async def join(self, destination: str, room_id: str, localpart: str = "bench") -> JoinedRoom:
        """Join ``room_id`` (public) as ``@localpart:<us>`` through ``destination``."""
        user_id = f"@{localpart}:{self.server_name}"
        versions = "&".join(f"ver={v}" for v in ("10", "11", "12"))
        made = await self.request(
            destination,
            "GET",
            f"/_matrix/federation/v1/make_join/{_quote(room_id)}/{_quote(user_id)}?{versions}",
        )
        room_version = get_room_version(str(made["room_version"]))
        pdu = dict(made["event"])
        pdu.pop("event_id", None)
        pdu.pop("signatures", None)
        pdu.pop("hashes", None)
        pdu["origin_server_ts"] = int(time.time() * 1000)
        event_id = sign_event_and_compute_id(pdu, self.server_name, self.signing_key, room_version)
        self.created[event_id] = pdu
        answer = await self.request(
            destination,
            "PUT",
            f"/_matrix/federation/v2/send_join/{_quote(room_id)}/{_quote(event_id)}",
            pdu,
        )
        by_type = {(event.get("type"), event.get("state_key")): event for event in answer["state"]}
        create = by_type[("m.room.create", "")]
        power_levels = by_type[("m.room.power_levels", "")]
        return JoinedRoom(
            room_id=room_id,
            room_version=room_version,
            user_id=user_id,
            create_id=compute_event_id(dict(create), room_version),
            power_levels_id=compute_event_id(dict(power_levels), room_version),
            join_id=event_id,
            latest_id=event_id,
            depth=int(pdu["depth"]),
        )

    def message_pdus(self, room: JoinedRoom, bodies: Sequence[str]) -> list[dict[str, Any]]:
        """Signed ``m.room.message`` PDUs, a chain each after the last (updates ``room``)."""
        auth = [room.power_levels_id, room.join_id]
        if not room.room_version.hydra:  # v12: the create event is implied by the room ID
            auth.insert(0, room.create_id)
        pdus: list[dict[str, Any]] = []
        for text in bodies:
            room.depth += 1
            pdu: dict[str, Any] = {
                "type": "m.room.message",
                "room_id": room.room_id,
                "sender": room.user_id,
                "origin": self.server_name,
                "origin_server_ts": int(time.time() * 1000),
                "content": {"msgtype": "m.text", "body": text},
                "depth": room.depth,
                "prev_events": [room.latest_id],
                "auth_events": list(auth),
            }
            room.latest_id = sign_event_and_compute_id(
                pdu, self.server_name, self.signing_key, room.room_version
            )
            self.created[room.latest_id] = pdu
            pdus.append(pdu)
        return pdus

    async def send_transaction(self, destination: str, pdus: Sequence[Mapping[str, Any]]) -> Any:
        self._txn += 1
        body = {
            "origin": self.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": list(pdus),
        }
        path = f"/_matrix/federation/v1/send/{self._label}-{self._txn}-{int(time.time())}"
        return await self.request(destination, "PUT", path, body)


def client_session(ca: TestCA, connections: int = 100) -> aiohttp.ClientSession:
    """An HTTPS session trusting only the test CA (and checking names)."""
    context = ssl.create_default_context(cafile=str(ca.certificate_path))
    connector = aiohttp.TCPConnector(limit=connections, ssl=context, keepalive_timeout=120)
    return aiohttp.ClientSession(connector=connector)
