"""``POST /_matrix/client/v3/user/{userId}/openid/request_token``: a token a third
party checks with this server's ``/_matrix/federation/v1/openid/userinfo``.

spec: client-server-api/_index.md#openid (data/api/client-server/openid.yaml)
"""

from __future__ import annotations

from typing import Any

from homeserver.auth.openid import OpenIdTokens
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_optional_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths


def register(router: Router, *, authenticator: RequestAuthenticator, tokens: OpenIdTokens) -> None:
    async def request_token(request: MatrixRequest, user_id: str) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        parse_optional_json_object(request)  # spec: an empty object
        return 200, (await tokens.issue(requester.user_id, user_id)).to_json()

    for path in client_paths("/user/{user_id}/openid/request_token"):
        router.register("POST", path, request_token)
