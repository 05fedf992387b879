"""Account endpoints that need only the requester: ``/account/whoami``.

spec: client-server-api/_index.md#get_matrixclientv3accountwhoami
"""

from __future__ import annotations

from typing import Any

from homeserver.http.auth import RequestAuthenticator
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def register(router: Router, *, authenticator: RequestAuthenticator) -> None:
    async def whoami(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body: dict[str, Any] = {"user_id": requester.user_id, "is_guest": False}
        if requester.device_id is not None:
            body["device_id"] = requester.device_id
        return 200, body

    for path in client_paths("/account/whoami"):
        router.register("GET", path, whoami)
