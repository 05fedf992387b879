"""Keys of users on other servers, for local clients' ``/keys/query`` and
``/keys/claim`` (implements ``homeserver.e2ee.device_keys.RemoteKeys``).

Query: users sharing a room with a local user are answered from the device-list
cache (remote_lists.py), fetched whole first when missing or stale; the others are
asked of their server (``POST /user/keys/query``), uncached — nobody sends us their
updates.  Claim: always their server (``POST /user/keys/claim``), as one-time keys
are handed out once.  One request per server (plus whole-list fetches), each within the
client's timeout; at most ten servers at once and ten whole-list fetches per
server (the rest of its users go in its one query); a server that fails or times out is listed in ``failures``
(``{"status": ..., "message": ...}``, as Synapse reports them).

spec: server-server-api.md#end-to-end-encryption (data/api/server-server/user_keys.yaml),
client-server-api/modules/end_to_end_encryption.md, #post_matrixclientv3keysquery
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from twisted.internet import defer

from federation.client.errors import FederationRequestError, FederationUnreachable
from federation.e2ee import checks
from federation.e2ee.remote_lists import BadDeviceList, RemoteDeviceLists
from federation.identifiers import server_of
from homeserver.e2ee.device_keys import RemoteKeysAnswer
from homeserver.storage.remote_device_lists import CachedDeviceList

logger = logging.getLogger(__name__)

QUERY_PATH = "/_matrix/federation/v1/user/keys/query"
CLAIM_PATH = "/_matrix/federation/v1/user/keys/claim"
#: Largest answer read from a server.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: The longest a client may make us wait for other servers, whatever it asks.
MAX_TIMEOUT_MS = 60_000
#: Servers one query or claim talks to at once (the others wait their turn).
MAX_CONCURRENT_SERVERS = 10
#: Whole device lists (``GET /user/devices``, one request per user) fetched from one
#: server per query; further users of that server are asked in its batched query.
MAX_FETCHES_PER_SERVER = 10

T = TypeVar("T")


class KeyClient(Protocol):
    """The outbound federation client (``FederationHttpClient.post_json``)."""

    async def post_json(
        self,
        destination: str,
        path: str,
        body: object,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a Twisted coroutine)
        max_size: int = ...,
    ) -> Any: ...


class FederatedKeys:
    def __init__(self, *, client: KeyClient, lists: RemoteDeviceLists) -> None:
        self._client = client
        self._lists = lists

    # --- /keys/query -------------------------------------------------------------------

    async def query_remote(
        self, device_keys: Mapping[str, Sequence[str]], timeout_ms: int
    ) -> RemoteKeysAnswer:
        timeout_s = _seconds(timeout_ms)
        answer = RemoteKeysAnswer({}, {}, {}, {})
        trusted = await self._lists.trusted_lists(list(device_keys))
        asked: dict[str, dict[str, Sequence[str]]] = {}
        to_fetch: list[str] = []
        #: Whole-list fetches per server so far (each is a request of its own).
        fetches: dict[str, int] = {}
        for user_id, device_ids in device_keys.items():
            if user_id not in trusted:
                asked.setdefault(server_of(user_id), {})[user_id] = device_ids
                continue
            cached = trusted[user_id]
            server = server_of(user_id)
            if cached is None and fetches.get(server, 0) < MAX_FETCHES_PER_SERVER:
                fetches[server] = fetches.get(server, 0) + 1
                to_fetch.append(user_id)
            elif cached is None:
                # Past the cap the user is asked in the server's one batched query.
                asked.setdefault(server, {})[user_id] = device_ids
            else:
                _add_cached(answer, cached, device_ids)

        async def fetch(user_id: str) -> None:
            cached = await self._lists.fetch(user_id, timeout_s)
            _add_cached(answer, cached, device_keys[user_id])

        async def ask(server: str, users: dict[str, Sequence[str]]) -> None:
            response = await self._client.post_json(
                server,
                QUERY_PATH,
                {"device_keys": {user: list(devices) for user, devices in users.items()}},
                timeout=timeout_s,
                max_size=MAX_RESPONSE_BYTES,
            )
            _add_queried(answer, server, users, response)

        work: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            (server_of(user_id), _bind(fetch, user_id)) for user_id in to_fetch
        ]
        work.extend((server, _bind2(ask, server, users)) for server, users in asked.items())
        await _all(work, answer.failures)
        return answer

    async def master_keys(self, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``RemoteMasterKeys``: what their servers (or the cache) say."""
        found = await self.query_remote({user_id: [] for user_id in user_ids}, 10_000)
        return found.master_keys

    # --- /keys/claim -------------------------------------------------------------------

    async def claim_remote(
        self, one_time_keys: Mapping[str, Mapping[str, str]], timeout_ms: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        timeout_s = _seconds(timeout_ms)
        claimed: dict[str, Any] = {}
        failures: dict[str, Any] = {}
        by_server: dict[str, dict[str, Mapping[str, str]]] = {}
        for user_id, devices in one_time_keys.items():
            by_server.setdefault(server_of(user_id), {})[user_id] = devices

        async def claim(server: str, users: dict[str, Mapping[str, str]]) -> None:
            response = await self._client.post_json(
                server,
                CLAIM_PATH,
                {"one_time_keys": {user: dict(devices) for user, devices in users.items()}},
                timeout=timeout_s,
                max_size=MAX_RESPONSE_BYTES,
            )
            found = response.get("one_time_keys") if isinstance(response, dict) else None
            if not isinstance(found, dict):
                raise BadDeviceList("the answer has no 'one_time_keys'")
            for user_id, devices in users.items():
                by_device = found.get(user_id)
                if not isinstance(by_device, dict):
                    continue
                for device_id in devices:
                    keys = by_device.get(device_id)
                    if isinstance(keys, dict) and keys and len(keys) <= 10:
                        claimed.setdefault(user_id, {})[device_id] = keys

        await _all(
            [(server, _bind2(claim, server, users)) for server, users in by_server.items()],
            failures,
        )
        return claimed, failures


def _seconds(timeout_ms: int) -> float:
    return max(1, min(timeout_ms, MAX_TIMEOUT_MS)) / 1000


def _bind(function: Callable[[str], Awaitable[None]], value: str) -> Callable[[], Awaitable[None]]:
    return lambda: function(value)


def _bind2(
    function: Callable[[str, T], Awaitable[None]], server: str, value: T
) -> Callable[[], Awaitable[None]]:
    return lambda: function(server, value)


async def _all(
    work: Sequence[tuple[str, Callable[[], Awaitable[None]]]], failures: dict[str, Any]
) -> None:
    """Run the work, grouped by server, :data:`MAX_CONCURRENT_SERVERS` servers at a
    time; each piece that fails is its server's failure."""

    async def one(server: str, run: Callable[[], Awaitable[None]]) -> None:
        try:
            await run()
        except FederationRequestError as error:
            failures[server] = {"status": error.status, "message": str(error)}
        except (FederationUnreachable, BadDeviceList) as error:
            failures[server] = {"status": 503, "message": str(error)}
        except Exception as error:  # a bug must not fail the other servers' answers
            logger.exception("key request to %s failed", server)
            failures[server] = {"status": 503, "message": type(error).__name__}

    by_server: dict[str, list[Callable[[], Awaitable[None]]]] = {}
    for server, run in work:
        by_server.setdefault(server, []).append(run)
    limit = defer.DeferredSemaphore(MAX_CONCURRENT_SERVERS)

    async def server_work(server: str, runs: list[Callable[[], Awaitable[None]]]) -> None:
        await limit.acquire()
        try:
            await defer.gatherResults([defer.ensureDeferred(one(server, run)) for run in runs])
        finally:
            limit.release()

    if by_server:
        await defer.gatherResults(
            [defer.ensureDeferred(server_work(s, runs)) for s, runs in by_server.items()]
        )


def _add_cached(answer: RemoteKeysAnswer, cached: CachedDeviceList, wanted: Sequence[str]) -> None:
    devices: dict[str, Any] = {}
    for device in cached.devices:
        if wanted and device.device_id not in wanted:
            continue
        keys = json.loads(device.key_json)
        if device.display_name is not None:
            keys["unsigned"] = {"device_display_name": device.display_name}
        devices[device.device_id] = keys
    answer.device_keys[cached.user_id] = devices
    for usage, field in (
        ("master", answer.master_keys),
        ("self_signing", answer.self_signing_keys),
    ):
        if usage in cached.signing_keys:
            field[cached.user_id] = json.loads(cached.signing_keys[usage])


def _add_queried(
    answer: RemoteKeysAnswer, server: str, users: Mapping[str, Sequence[str]], response: object
) -> None:
    """What a server answered to ``POST /user/keys/query``, checked: only users asked
    (all of ``server``), each device filed under its own ID."""
    if not isinstance(response, dict) or not isinstance(response.get("device_keys"), dict):
        raise BadDeviceList(f"{server} sent no 'device_keys'")
    found = response["device_keys"]
    for user_id, wanted in users.items():
        by_device = found.get(user_id)
        devices: dict[str, Any] = {}
        if isinstance(by_device, dict):
            for device_id, value in list(by_device.items())[: checks.MAX_DEVICES_PER_USER]:
                if wanted and device_id not in wanted:
                    continue
                keys = checks.device_keys(value, user_id, device_id)
                if keys is None:
                    continue
                unsigned = value.get("unsigned")
                name = checks.display_name(
                    unsigned.get("device_display_name") if isinstance(unsigned, dict) else None
                )
                if name is not None:
                    keys["unsigned"] = {"device_display_name": name}
                devices[device_id] = keys
        answer.device_keys[user_id] = devices
        for field, usage, target in (
            ("master_keys", "master", answer.master_keys),
            ("self_signing_keys", "self_signing", answer.self_signing_keys),
        ):
            keys_by_user = response.get(field)
            if isinstance(keys_by_user, dict):
                key = checks.cross_signing_key(keys_by_user.get(user_id), user_id, usage)
                if key is not None:
                    target[user_id] = key
