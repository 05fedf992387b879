"""``GET /admin/whois/{userId}``.

spec: client-server-api/_index.md#get_matrixclientv3adminwhoisuserid
"""

from __future__ import annotations

from typing import Any

from homeserver.auth.whois import WhoisHandler
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def register(router: Router, *, authenticator: RequestAuthenticator, whois: WhoisHandler) -> None:
    async def get_whois(request: MatrixRequest, user_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, await whois.whois(requester, user_id)

    for path in client_paths("/admin/whois/{user_id}"):
        router.register("GET", path, get_whois)
