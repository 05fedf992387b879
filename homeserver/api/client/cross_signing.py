"""``POST /keys/device_signing/upload`` and ``POST /keys/signatures/upload``.

The request shapes are checked here; which keys and signatures are accepted, and
when replacing keys needs User-Interactive Authentication, are the handler's rules
(``e2ee/cross_signing.py``).

spec: client-server-api/modules/end_to_end_encryption.md#cross-signing,
#post_matrixclientv3keysdevice_signingupload, #post_matrixclientv3keyssignaturesupload
(data/api/client-server/cross_signing.yaml)
"""

from __future__ import annotations

from typing import Any, Protocol

from homeserver import errors
from homeserver.auth.password_auth import PasswordAuthenticator
from homeserver.auth.uia import UserInteractiveAuth
from homeserver.e2ee.cross_signing import FIELDS, CrossSigningHandler, ReplacementNeedsAuth
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.parsing import parse_json_object
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.identifiers import is_valid_user_id

#: Cross-signing came with v1.1: no r0 paths; early clients used the unstable prefix.
VERSIONS = ("v3", "unstable")


class _E2ee(Protocol):
    @property
    def cross_signing(self) -> CrossSigningHandler: ...


class CrossSigningServices(Protocol):
    """What these endpoints need of the server's handlers (``app.Handlers``)."""

    @property
    def e2ee(self) -> _E2ee: ...
    @property
    def uia(self) -> UserInteractiveAuth: ...
    @property
    def passwords(self) -> PasswordAuthenticator: ...


def register(
    router: Router, *, authenticator: RequestAuthenticator, handlers: CrossSigningServices
) -> None:
    cross_signing = handlers.e2ee.cross_signing
    uia = handlers.uia
    passwords = handlers.passwords

    async def upload_signing_keys(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        params = {key: value for key, value in body.items() if key != "auth"}
        # A client completing UIA may send only 'auth': the keys are the session's.
        if params.keys() & FIELDS.keys() or "auth" not in body:
            try:
                await cross_signing.upload_signing_keys(
                    requester.user_id, params, authenticated=False
                )
                return 200, {}
            except ReplacementNeedsAuth:
                pass
        result = await uia.authenticate(
            body,
            operation="device_signing_upload",
            flows=await passwords.uia_flows(requester.user_id),
            requester_user_id=requester.user_id,
            client_ip=request.client_ip(),
        )
        await cross_signing.upload_signing_keys(
            requester.user_id, result.params, authenticated=True
        )
        return 200, {}

    async def upload_signatures(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        for user_id, objects in body.items():
            if not is_valid_user_id(user_id):
                raise errors.invalid_param(f"{user_id!r} is not a valid user ID")
            if not isinstance(objects, dict):
                raise errors.bad_json(f"'{user_id}' must map key IDs to signed objects")
        return 200, await cross_signing.upload_signatures(requester.user_id, body)

    for path in client_paths("/keys/device_signing/upload", VERSIONS):
        router.register("POST", path, upload_signing_keys)
    for path in client_paths("/keys/signatures/upload", VERSIONS):
        router.register("POST", path, upload_signatures)
