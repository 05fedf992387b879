"""Email addresses on the account (``/account/3pid...``) and the two pages mails link
to: the address validation link (the ``submit_url``) and one-click unsubscribe.

Identity-server binding is not built: ``/account/3pid/bind`` and the deprecated
``POST /account/3pid`` answer 400 ``M_SERVER_NOT_TRUSTED`` and ``/3pid/unbind``
``no-support``.  Phone numbers: 400 ``M_THREEPID_MEDIUM_NOT_SUPPORTED``.

spec: client-server-api/_index.md ("Adding Account Administrative Contact
Information"), data/api/client-server/administrative_contact.yaml,
identity-service-api (``/validate/email/submitToken``: GET for people, POST for
clients); RFC 8058 (one-click unsubscribe: only a POST unsubscribes)
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from homeserver import errors
from homeserver.auth.password_auth import PasswordAuthenticator
from homeserver.auth.uia import UserInteractiveAuth
from homeserver.errors import MatrixError
from homeserver.http.auth import RequestAuthenticator
from homeserver.http.pages import message_page
from homeserver.http.parsing import (
    optional_str,
    parse_json_object,
    query_str,
    require_str,
)
from homeserver.http.request import MatrixRequest
from homeserver.http.server import Router, client_paths
from homeserver.pushers.email.unsubscribe import UNSUBSCRIBE_PATH, Unsubscriber
from homeserver.threepids.handler import SUBMIT_TOKEN_PATH, ThreepidHandler, check_secret

MEDIUMS = ("email", "msisdn")


def _not_trusted() -> MatrixError:
    return MatrixError(
        HTTPStatus.BAD_REQUEST,
        "M_SERVER_NOT_TRUSTED",
        "This server does not bind addresses to identity servers",
    )


def register(
    router: Router,
    *,
    authenticator: RequestAuthenticator,
    threepids: ThreepidHandler,
    uia: UserInteractiveAuth,
    passwords: PasswordAuthenticator,
    unsubscriber: Unsubscriber,
) -> None:
    async def list_threepids(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        return 200, {"threepids": await threepids.list(requester.user_id)}

    async def request_email_token(request: MatrixRequest) -> tuple[int, Any]:
        body = parse_json_object(request)
        client_secret = require_str(body, "client_secret")
        address = require_str(body, "email")
        if "send_attempt" not in body:
            raise errors.missing_param("send_attempt")
        attempt = body["send_attempt"]
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
            raise errors.bad_json("'send_attempt' must be a non-negative integer")
        sid = await threepids.request_email_token(
            client_secret=client_secret,
            address=address,
            send_attempt=attempt,
            next_link=optional_str(body, "next_link"),
            client_ip=request.client_ip(),
        )
        return 200, {"sid": sid, "submit_url": threepids.submit_url}

    async def request_msisdn_token(request: MatrixRequest) -> tuple[int, Any]:
        raise MatrixError(
            HTTPStatus.BAD_REQUEST,
            "M_THREEPID_MEDIUM_NOT_SUPPORTED",
            "This server does not add phone numbers",
        )

    async def add_threepid(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        check_secret("client_secret", require_str(body, "client_secret"))
        check_secret("sid", require_str(body, "sid"))
        result = await uia.authenticate(
            body,
            operation="add_threepid",
            flows=await passwords.uia_flows(requester.user_id),
            requester_user_id=requester.user_id,
            client_ip=request.client_ip(),
        )
        await threepids.add(
            requester.user_id,
            sid=require_str(result.params, "sid"),
            client_secret=require_str(result.params, "client_secret"),
        )
        return 200, {}

    async def delete_threepid(request: MatrixRequest) -> tuple[int, Any]:
        requester = await authenticator.requester(request)
        body = parse_json_object(request)
        medium = require_str(body, "medium")
        if medium not in MEDIUMS:
            raise errors.invalid_param("'medium' must be 'email' or 'msisdn'")
        optional_str(body, "id_server")
        await threepids.delete(requester.user_id, medium, require_str(body, "address"))
        return 200, {"id_server_unbind_result": "no-support"}

    async def bind(request: MatrixRequest) -> tuple[int, Any]:
        await authenticator.requester(request)
        raise _not_trusted()

    async def unbind(request: MatrixRequest) -> tuple[int, Any]:
        await authenticator.requester(request)
        body = parse_json_object(request)
        if require_str(body, "medium") not in MEDIUMS:
            raise errors.invalid_param("'medium' must be 'email' or 'msisdn'")
        require_str(body, "address")
        return 200, {"id_server_unbind_result": "no-support"}

    async def submit_token_page(request: MatrixRequest) -> tuple[int, Any]:
        """The link in the validation mail: a page for people, or their ``next_link``."""
        values = [query_str(request, name) for name in ("sid", "client_secret", "token")]
        if any(value is None for value in values):
            return 400, message_page(
                request, "Link incomplete", "This link is missing a part; open it whole."
            )
        sid, client_secret, token = (str(value) for value in values)
        try:
            result = await threepids.submit_token(sid=sid, client_secret=client_secret, token=token)
        except MatrixError as refused:
            return refused.status, message_page(request, "Address not confirmed", refused.message)
        if result.next_link is not None:
            request.responseHeaders.setRawHeaders(b"Location", [result.next_link.encode()])
            return 302, message_page(request, "Address confirmed", "Continue in your app.")
        return 200, message_page(
            request,
            "Address confirmed",
            "Your email address is confirmed. Return to your app to finish.",
        )

    async def submit_token_json(request: MatrixRequest) -> tuple[int, Any]:
        body = parse_json_object(request)
        await threepids.submit_token(
            sid=require_str(body, "sid"),
            client_secret=require_str(body, "client_secret"),
            token=require_str(body, "token"),
        )
        return 200, {"success": True}

    def unsubscribe_link(request: MatrixRequest) -> tuple[str, str, str, str] | None:
        values = [query_str(request, name) for name in ("user_id", "app_id", "pushkey", "sig")]
        if any(value is None for value in values):
            return None
        user_id, app_id, pushkey, signature = (str(value) for value in values)
        return user_id, app_id, pushkey, signature

    async def unsubscribe_page(request: MatrixRequest) -> tuple[int, Any]:
        """The link in a mail: a page asking to confirm.  GET never unsubscribes, as
        mail scanners follow links (RFC 8058 section 1)."""
        link = unsubscribe_link(request)
        if link is None:
            return 400, message_page(request, "Link incomplete", "Open the link whole.")
        if not unsubscriber.genuine(*link):
            return 403, message_page(
                request, "Link not valid", "This unsubscribe link is not valid."
            )
        user_id, _, pushkey, _ = link
        return 200, message_page(
            request,
            "Unsubscribe",
            f"Stop notification emails to {pushkey} for {user_id}?",
            # The same URL: its query names the pusher and carries the signature.
            form_action=request.uri.decode("utf-8", "replace"),
            form_button="Unsubscribe",
        )

    async def unsubscribe(request: MatrixRequest) -> tuple[int, Any]:
        """A mail client's one-click POST (body ``List-Unsubscribe=One-Click``, RFC
        8058) or the page's button: the body is not needed, the signed query is."""
        link = unsubscribe_link(request)
        if link is None:
            return 400, message_page(request, "Link incomplete", "Open the link whole.")
        if not await unsubscriber.unsubscribe(*link):
            return 403, message_page(
                request, "Link not valid", "This unsubscribe link is not valid."
            )
        user_id, _, pushkey, _ = link
        return 200, message_page(
            request,
            "Unsubscribed",
            f"{pushkey} will get no more notification emails for {user_id}.",
        )

    for path in client_paths("/account/3pid"):
        router.register("GET", path, list_threepids)
        router.register("POST", path, bind)
    for path in client_paths("/account/3pid/email/requestToken"):
        router.register("POST", path, request_email_token)
    for path in client_paths("/account/3pid/msisdn/requestToken"):
        router.register("POST", path, request_msisdn_token)
    for path in client_paths("/account/3pid/add"):
        router.register("POST", path, add_threepid)
    for path in client_paths("/account/3pid/delete"):
        router.register("POST", path, delete_threepid)
    for path in client_paths("/account/3pid/bind"):
        router.register("POST", path, bind)
    for path in client_paths("/account/3pid/unbind"):
        router.register("POST", path, unbind)
    router.register("GET", SUBMIT_TOKEN_PATH, submit_token_page)
    router.register("POST", SUBMIT_TOKEN_PATH, submit_token_json)
    router.register("GET", UNSUBSCRIBE_PATH, unsubscribe_page)
    router.register("POST", UNSUBSCRIBE_PATH, unsubscribe)
