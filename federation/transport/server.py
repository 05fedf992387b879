"""Authenticating inbound federation requests: the ``X-Matrix`` signature check.

Federation servlets call :meth:`FederationRequestAuthenticator.authenticate` before
anything else; it answers with the verified origin server name or raises a Matrix
error (401 ``M_UNAUTHORIZED``, 403 ``M_FORBIDDEN``).

spec: server-server-api.md#request-authentication
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from federation.keys.errors import KeyVerificationError
from federation.protocols import SignatureVerifier
from federation.transport.x_matrix import (
    SCHEME,
    XMatrixAuthorization,
    parse_x_matrix,
    signed_request_json,
)
from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError
from homeserver.http.request import MatrixRequest

logger = logging.getLogger(__name__)

UNAUTHORIZED = "M_UNAUTHORIZED"
#: A request carrying more X-Matrix headers than this is refused unread: each one
#: may cost a key fetch.
MAX_AUTHORIZATION_HEADERS = 4


#: The keyring, as the authenticator knows it (kept for importers of this name).
KeyVerifier = SignatureVerifier


def unauthorized(message: str) -> MatrixError:
    return MatrixError(HTTPStatus.UNAUTHORIZED, UNAUTHORIZED, message)


class FederationRequestAuthenticator:
    def __init__(
        self,
        *,
        server_name: str,
        keyring: KeyVerifier,
        domain_whitelist: frozenset[str] | None,
        clock: Clock,
    ) -> None:
        self._server_name = server_name
        self._keyring = keyring
        self._domain_whitelist = domain_whitelist
        self._clock = clock
        #: Called with the origin of each authenticated request (the sender wakes a
        #: destination that has just contacted us).  Must not raise.
        self.on_inbound_request: list[Callable[[str], None]] = []

    async def authenticate(self, request: MatrixRequest, content: object | None) -> str:
        """The origin server of ``request``, whose signature over its method, target
        and ``content`` (the parsed JSON body, None without one) verifies.

        Every X-Matrix header is tried in turn; the first that verifies wins.
        """
        headers = [
            raw
            for raw in request.requestHeaders.getRawHeaders(b"Authorization") or []
            if raw[: len(SCHEME)].lower() == SCHEME.lower().encode("ascii")
        ]
        if not headers:
            raise unauthorized("Missing X-Matrix Authorization header")
        if len(headers) > MAX_AUTHORIZATION_HEADERS:
            raise unauthorized("Too many X-Matrix Authorization headers")
        try:
            method = request.method.decode("ascii")
            uri = request.uri.decode("ascii")
        except UnicodeDecodeError:
            raise unauthorized("Request target is not ASCII") from None
        reason = "no X-Matrix header verified"
        for raw in headers:
            try:
                authorization = parse_x_matrix(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as error:
                reason = f"Invalid X-Matrix header: {error}"
                continue
            problem = await self._check(authorization, method, uri, content)
            if problem is None:
                request.authenticated_user = authorization.origin  # for the access log
                self._announce(authorization.origin)
                return authorization.origin
            reason = problem
        raise unauthorized(reason)

    async def _check(
        self, authorization: XMatrixAuthorization, method: str, uri: str, content: object | None
    ) -> str | None:
        """None if ``authorization`` authenticates the request, else why not.

        Raises 403 for an origin outside ``federation_domain_whitelist``.
        """
        if authorization.destination not in (None, self._server_name):
            return f"X-Matrix destination {authorization.destination!r} is not this server"
        origin = authorization.origin
        if self._domain_whitelist is not None and origin not in self._domain_whitelist:
            raise MatrixError(
                HTTPStatus.FORBIDDEN, Codes.FORBIDDEN, f"Federation denied with {origin}"
            )
        # Older senders sign without a destination parameter but still sign the
        # object with ours in it.
        signed = signed_request_json(method, uri, origin, self._server_name, content)
        signed["signatures"] = {origin: {authorization.key_id: authorization.signature}}
        try:
            await self._keyring.verify_json_for_server(origin, signed, self._clock.time_msec())
        except KeyVerificationError as error:
            return f"Signature of {origin} does not verify: {error.reason}"
        return None

    def _announce(self, origin: str) -> None:
        for callback in self.on_inbound_request:
            try:
                callback(origin)
            except Exception:
                logger.exception("on_inbound_request callback failed for %s", origin)
