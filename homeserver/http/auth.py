"""Finding out who sent a request: the access token, resolved by the token handler.

Guest accounts are refused here, centrally, on every endpoint the spec does not open
to them (``auth/guests.py``), so no servlet can forget the check.

spec: client-server-api/_index.md#using-access-tokens, modules/guest_access.md
"""

from __future__ import annotations

from homeserver import errors
from homeserver.auth.guests import guest_access_forbidden, guest_may_use
from homeserver.auth.tokens import AccessTokenHandler, Requester
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

    async def requester(self, request: MatrixRequest, *, allow_guest: bool = False) -> Requester:
        """The authenticated requester; 401 ``M_MISSING_TOKEN``/``M_UNKNOWN_TOKEN`` if none.

        Guests get 403 ``M_GUEST_ACCESS_FORBIDDEN`` unless ``allow_guest`` or the
        endpoint is one the spec lists for guests.
        """
        token = extract_access_token(request)
        if token is None:
            raise errors.missing_token()
        requester = await self._tokens.requester_for_token(token)
        if requester.is_guest and not allow_guest:
            method = request.method.decode("ascii", "replace")
            if not guest_may_use(method, request.path.decode("ascii", "replace")):
                raise guest_access_forbidden()
        request.authenticated_user = requester.user_id
        self._tokens.note_request(requester, request.client_ip(), request.getHeader("user-agent"))
        return requester

    async def optional_requester(
        self, request: MatrixRequest, *, allow_guest: bool = False
    ) -> Requester | None:
        """The requester if the request carries an access token, else None."""
        if extract_access_token(request) is None:
            return None
        return await self.requester(request, allow_guest=allow_guest)
