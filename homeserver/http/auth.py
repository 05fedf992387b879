"""Finding out who sent a request: the access token, resolved by the token handler.

spec: client-server-api/_index.md#using-access-tokens
"""

from __future__ import annotations

from homeserver.auth.tokens import AccessTokenHandler, Requester
from homeserver.http import errors
from homeserver.http.parsing import query_str
from homeserver.http.request import MatrixRequest


def extract_access_token(request: MatrixRequest) -> str | None:
    """The token from ``Authorization: Bearer``, or else the ``access_token`` query
    parameter, which the spec dropped in v1.20 but older clients and bridges still send."""
    header = request.getHeader("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.MatrixError(
                401, errors.Codes.MISSING_TOKEN, "Authorization header must be 'Bearer <token>'"
            )
        return token.strip()
    return query_str(request, "access_token")


class RequestAuthenticator:
    def __init__(self, tokens: AccessTokenHandler) -> None:
        self._tokens = tokens

    async def requester(self, request: MatrixRequest) -> Requester:
        """The authenticated requester; 401 ``M_MISSING_TOKEN``/``M_UNKNOWN_TOKEN`` if none."""
        token = extract_access_token(request)
        if token is None:
            raise errors.missing_token()
        requester = await self._tokens.requester_for_token(token)
        request.authenticated_user = requester.user_id
        self._tokens.note_request(requester, request.client_ip(), request.getHeader("user-agent"))
        return requester

    async def optional_requester(self, request: MatrixRequest) -> Requester | None:
        """The requester if the request carries an access token, else None."""
        if extract_access_token(request) is None:
            return None
        return await self.requester(request)
