"""``POST /keys/upload``, ``POST /keys/query``, ``POST /keys/claim`` and
``GET /keys/changes`` (answered by the device-list tracker, ``e2ee/device_lists.py``).

The request shapes are checked here; the rules (whose keys, signatures, which key a
claim gets) are the handler's (``e2ee/device_keys.py``).

spec: client-server-api/modules/end_to_end_encryption.md, #post_matrixclientv3keysupload,
#post_matrixclientv3keysquery, #post_matrixclientv3keysclaim
(data/api/client-server/keys.yaml)
"""

from __future__ import annotations

from typing import Any

from homeserver import errors
from homeserver.e2ee.device_keys import DEFAULT_REMOTE_TIMEOUT_MS, DeviceKeysHandler
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object, query_str
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.identifiers import is_valid_user_id
from homeserver.streams.token import StreamToken

#: Users one query or claim may name; a client asks about the members of its
#: encrypted rooms, batched (matrix-js-sdk and the Rust SDK use a few hundred).
MAX_USERS = 10_000
#: Devices one claim or query may name in total.
MAX_DEVICES = 100_000


def register(
    router: Router, *, authenticator: RequestAuthenticator, keys: DeviceKeysHandler
) -> None:
    async def upload(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        return 200, await keys.upload(requester.user_id, requester.device_id, body)

    async def query(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        timeout_ms = _check_timeout(body)
        wanted = body.get("device_keys")
        if wanted is None:
            raise errors.missing_param("device_keys")
        if not isinstance(wanted, dict):
            raise errors.bad_json("'device_keys' must be an object")
        _check_size(wanted)
        devices: dict[str, list[str]] = {}
        for user_id, device_ids in wanted.items():
            _check_user_id(user_id)
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise errors.bad_json(f"'device_keys.{user_id}' must be a list of device IDs")
            devices[user_id] = device_ids
        if sum(len(d) for d in devices.values()) > MAX_DEVICES:
            raise errors.invalid_param("Too many devices in one request")
        return 200, await keys.query(requester.user_id, devices, timeout_ms)

    async def claim(request: MatrixRequest) -> tuple[int, Any]:
        await authenticator.requester(request)
        body = parse_json_object(request)
        timeout_ms = _check_timeout(body)
        wanted = body.get("one_time_keys")
        if wanted is None:
            raise errors.missing_param("one_time_keys")
        if not isinstance(wanted, dict):
            raise errors.bad_json("'one_time_keys' must be an object")
        _check_size(wanted)
        for user_id, devices in wanted.items():
            _check_user_id(user_id)
            if not isinstance(devices, dict) or not all(
                isinstance(algorithm, str) for algorithm in devices.values()
            ):
                raise errors.bad_json(
                    f"'one_time_keys.{user_id}' must map device IDs to algorithm names"
                )
        if sum(len(d) for d in wanted.values()) > MAX_DEVICES:
            raise errors.invalid_param("Too many devices in one request")
        return 200, await keys.claim(wanted, timeout_ms)

    async def changes(request: MatrixRequest) -> tuple[int, Any]:
        """spec: #get_matrixclientv3keyschanges: both tokens are sync tokens."""
        requester = await authenticator.requester(request)
        from_token, to_token = (_required_token(request, name) for name in ("from", "to"))
        return 200, await keys.device_lists.changes_between(requester.user_id, from_token, to_token)

    for path in client_paths("/keys/upload"):
        router.register("POST", path, upload)
    for path in client_paths("/keys/query"):
        router.register("POST", path, query)
    for path in client_paths("/keys/claim"):
        router.register("POST", path, claim)
    for path in client_paths("/keys/changes"):
        router.register("GET", path, changes)


def _required_token(request: MatrixRequest, name: str) -> StreamToken:
    text = query_str(request, name)
    if text is None:
        raise errors.missing_param(name)
    return StreamToken.parse(text, param=name)


MAX_REMOTE_TIMEOUT_MS = 60_000


def _check_timeout(body: dict[str, Any]) -> int:
    """How long to wait for other servers (ms; the spec's default 10 s)."""
    timeout = body.get("timeout", DEFAULT_REMOTE_TIMEOUT_MS)
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        raise errors.bad_json("'timeout' must be an integer")
    # A client cannot hold the request (and its remote queries) open for longer.
    return max(0, min(timeout, MAX_REMOTE_TIMEOUT_MS))


def _check_size(wanted: dict[str, Any]) -> None:
    if len(wanted) > MAX_USERS:
        raise errors.invalid_param("Too many users in one request")


def _check_user_id(user_id: str) -> None:
    if not is_valid_user_id(user_id):
        raise errors.invalid_param(f"{user_id!r} is not a valid user ID")
