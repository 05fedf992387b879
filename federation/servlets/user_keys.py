"""Our users' devices and keys, for other servers (authenticated):
``GET /v1/user/devices/{userId}``, ``POST /v1/user/keys/query``,
``POST /v1/user/keys/claim``.

spec: server-server-api.md#device-management, #end-to-end-encryption
(data/api/server-server/user_devices.yaml, user_keys.yaml)
"""

from __future__ import annotations

from typing import Any

from federation.e2ee.serving import UserKeysServing
from federation.transport.server import FederationRequestAuthenticator
from homeserver.http.parsing import parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router

_V1 = "/_matrix/federation/v1"


def register(
    router: Router,
    *,
    authenticator: FederationRequestAuthenticator,
    serving: UserKeysServing,
) -> None:
    async def user_devices(request: MatrixRequest, user_id: str) -> tuple[int, Any]:
        await authenticator.authenticate(request, None)
        return 200, await serving.user_devices(user_id)

    async def query(request: MatrixRequest) -> tuple[int, Any]:
        body = parse_json_object(request)
        await authenticator.authenticate(request, body)
        return 200, await serving.query(body)

    async def claim(request: MatrixRequest) -> tuple[int, Any]:
        body = parse_json_object(request)
        await authenticator.authenticate(request, body)
        return 200, await serving.claim(body)

    router.register("GET", f"{_V1}/user/devices/{{user_id}}", user_devices)
    router.register("POST", f"{_V1}/user/keys/query", query)
    router.register("POST", f"{_V1}/user/keys/claim", claim)
